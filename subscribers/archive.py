"""The public archive: issue list, issue pages and chart images; the feed and search included.

Only public issues (``newsletter.published``) and papers data are shown, never
anything about readers. Pages are rendered on the server with autoescaped Jinja
templates (``newsletter/templates/web/archive_*.html``) and need no JavaScript.
An issue page in a language not built yet is built once by ``digest.build_digest``,
which stores it, so a language nobody asks for costs nothing.

``router`` carries every archive route: the Atom feed (``archive_feed``) and search
(``archive_search``) are added to it, the shared page plumbing is ``archive_pages``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from newsletter import published
from newsletter.models import Digest
from newsletter.render import section_context
from newsletter.richtext import clean_line, safe_url
from subscribers import archive_feed, archive_search
from subscribers.archive_pages import (
    PAGE_CACHE,
    Page,
    PageError,
    error_page,
    parse_date,
    parse_page,
    public_digest,
)

router = APIRouter()
# Added here rather than included as routers: the web app adds HEAD to, and lists the
# methods of, the APIRoutes it finds in ``router.routes``, which an included router hides.
router.add_api_route("/feed.xml", archive_feed.feed, response_model=None)
router.add_api_route("/search", archive_search.search_page, response_class=HTMLResponse)

#: Issues per page of the list.
PAGE_SIZE = 20
CHART_CACHE = "public, max-age=86400"


# -- the issue list -------------------------------------------------------------------------


@router.get("/issues", response_class=HTMLResponse)
def issue_list(request: Request, page: str = "1", lang: str | None = None) -> HTMLResponse:
    try:
        view = Page(request, lang)
        number = parse_page(view, page)
        total = published.count_public(view.svc.engine)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if number > pages:
            raise PageError(404, "archive_not_found", view.t["archive_bad_page"].format(value=page))
        summaries = published.list_public(view.svc.engine, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    except PageError as exc:
        return error_page(request, lang, exc)
    taxonomy = view.svc.taxonomy
    issues = [
        {
            "date": s.date.isoformat(),
            "url": view.href(f"/issues/{s.date.isoformat()}"),
            "paper_count": s.paper_count,
            "top": [
                {
                    "emoji": taxonomy.get(slug).emoji,
                    "name": taxonomy.get(slug).name(view.lang),
                    "count": count,
                    "url": view.href(f"/issues/{s.date.isoformat()}") + f"#{slug}",
                }
                for slug, count in s.top(taxonomy.slugs)
                if slug in taxonomy.slugs
            ],
        }
        for s in summaries
    ]
    return view.render(
        "archive_list.html",
        cache=PAGE_CACHE,
        title=view.t["archive_title"],
        issues=issues,
        page=number,
        pages=pages,
        newer_url=view.href("/issues", {"page": number - 1}) if number > 1 else "",
        older_url=view.href("/issues", {"page": number + 1}) if number < pages else "",
        languages=view.languages("/issues", {"page": number} if number > 1 else {}),
    )


# -- one issue ------------------------------------------------------------------------------


def _issue_context(view: Page, digest: Digest) -> dict[str, Any]:
    """Each section as the e-mail shows it (markdown, numbered citations), every source kept."""
    sections = []
    for section in digest.sections:
        context = section_context(section, view.svc.taxonomy, view.lang)
        for source, paper in zip(context["sources"], section.papers, strict=True):
            source["pdf_url"] = safe_url(paper.pdf_url)
        sections.append(context)
    made_with = (
        view.t["made_offline"]
        if digest.made_with in ("", "offline")
        else view.t["made_with"].format(model=clean_line(digest.made_with, 80))
    )
    return {"sections": sections, "made_with": made_with}


@router.get("/issues/{date}", response_class=HTMLResponse)
def issue_page(request: Request, date: str, lang: str | None = None) -> HTMLResponse:
    try:
        view = Page(request, lang)
        day = parse_date(view, date)
        digest = public_digest(view, day)
    except PageError as exc:
        return error_page(request, lang, exc)
    path = f"/issues/{day.isoformat()}"
    return view.render(
        "archive_issue.html",
        cache=PAGE_CACHE,
        title=view.t["archive_issue_heading"].format(date=day.isoformat()),
        date=day.isoformat(),
        paper_count=digest.paper_count,
        covers_from=digest.covers_from and digest.covers_from.isoformat(),
        chart_url=view.href(f"{path}/chart.png"),
        languages=view.languages(path),
        **_issue_context(view, digest),
    )


@router.get("/issues/{date}/chart.png", response_model=None)
def issue_chart(request: Request, date: str, lang: str | None = None) -> Response:
    try:
        view = Page(request, lang)
        day = parse_date(view, date)
        png = published.stored_chart(view.svc.engine, day, view.lang)
        if png is None:  # this language's edition was never built
            png = public_digest(view, day).chart_png
    except PageError as exc:
        return error_page(request, lang, exc)
    etag = '"' + hashlib.sha256(png).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CHART_CACHE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)

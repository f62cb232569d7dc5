"""The public archive: issue list, issue pages, chart images, the Atom feed and search.

Only public issues (``newsletter.published``) and papers data are shown, never
anything about readers. Pages are rendered on the server with autoescaped Jinja
templates (``newsletter/templates/web/archive_*.html``) and need no JavaScript.
An issue page in a language not built yet is built once by ``digest.build_digest``,
which stores it, so a language nobody asks for costs nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import threading
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from newsletter import published, search
from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.errors import NewsletterError
from newsletter.i18n import LANGUAGES, paper_count, texts
from newsletter.models import Digest, Paper
from newsletter.render import AUTHOR_CHARS, TITLE_CHARS, paper_url, section_context
from newsletter.richtext import clean_line, safe_url
from subscribers.templating import web_templates

log = logging.getLogger(__name__)

router = APIRouter()

#: Issues per page of the list, and in the feed.
PAGE_SIZE = 20
FEED_SIZE = 20
SEARCH_PAGE_SIZE = 20
#: Issue pages change only when a new language is built; charts never do.
PAGE_CACHE = "public, max-age=300"
CHART_CACHE = "public, max-age=86400"
FEED_CACHE = "public, max-age=900"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PAGE = re.compile(r"\d{1,6}")
#: One digest build at a time per process: a language is generated once, not once per
#: concurrent visitor (the LLM bill), and two builds never overwrite each other's stage.
_BUILD_LOCK = threading.Lock()


class _PageError(Exception):
    """Ends a request with an error page; raised inside handlers, rendered by ``_errors``."""

    def __init__(self, status: int, title_key: str, message: str) -> None:
        self.status = status
        self.title_key = title_key
        self.message = message
        super().__init__(message)


def _layout(env: jinja2.Environment) -> str:
    """The web app's shared layout when it exists, else the archive's own minimal one."""
    try:
        env.get_template("base.html")
    except jinja2.TemplateNotFound:
        return "archive_layout.html"
    return "base.html"


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


class _Page:
    """What every archive page needs: language, texts and links that keep the language."""

    def __init__(self, request: Request, lang: str | None) -> None:
        self.request = request
        self.svc = _services(request)
        self.default = self.svc.settings.language
        self.choices = tuple(dict.fromkeys((self.default, *LANGUAGES)))
        value = (lang or "").strip() or self.default
        # Texts for an error page about the language itself fall back to the default.
        self.lang = value if value in self.choices else self.default
        self.t = texts(self.lang)
        if value not in self.choices:
            raise _PageError(
                400,
                "archive_bad_request",
                self.t["archive_bad_language"].format(
                    value=value[:40], choices=", ".join(self.choices)
                ),
            )

    def href(
        self, path: str, params: dict[str, str | int] | None = None, lang: str | None = None
    ) -> str:
        """A path inside the app, keeping a non-default language."""
        chosen = lang or self.lang
        query = dict(params or {})
        if chosen != self.default:
            query["lang"] = chosen
        root = self.request.scope.get("root_path", "")
        return f"{root}{path}" + (f"?{urlencode(query)}" if query else "")

    def languages(
        self, path: str, params: dict[str, str | int] | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "code": code,
                "name": texts(code)["archive_language_name"],
                "url": self.href(path, params, code),
                "current": code == self.lang,
            }
            for code in self.choices
        ]

    def render(
        self, template: str, status: int = 200, cache: str = "", **context: Any
    ) -> HTMLResponse:
        env = web_templates()
        layout = _layout(env)
        html = env.get_template(template).render(
            layout=layout,
            own_layout=layout == "archive_layout.html",
            request=self.request,
            lang=self.lang,
            t=self.t,
            href=self.href,
            papers=lambda count: paper_count(count, self.lang),
            lang_param=self.lang if self.lang != self.default else "",
            feed_url=self.href("/feed.xml"),
            **context,
        )
        headers = {"Cache-Control": cache} if cache else {}
        return HTMLResponse(html, status_code=status, headers=headers)


def _error_page(request: Request, lang: str | None, error: _PageError) -> HTMLResponse:
    try:
        page = _Page(request, lang)
    except _PageError:
        page = _Page(request, None)
    return page.render(
        "archive_error.html",
        status=error.status,
        title=page.t[error.title_key],
        message=error.message,
        languages=[],
    )


def _parse_date(page: _Page, text: str) -> dt.date:
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise _PageError(404, "archive_not_found", page.t["archive_bad_date"].format(value=text[:40]))


def _parse_page(page: _Page, text: str) -> int:
    if _PAGE.fullmatch(text) and int(text) >= 1:
        return int(text)
    raise _PageError(400, "archive_bad_request", page.t["archive_bad_page"].format(value=text[:40]))


def _digest(page: _Page, date: dt.date) -> Digest:
    """The public issue of ``date`` in the page's language, built and stored if missing."""
    summary = published.get_public(page.svc.engine, date)
    if summary is None:
        raise _PageError(
            404, "archive_not_found", page.t["archive_issue_missing"].format(date=date)
        )
    try:
        if page.lang in summary.conclusions:
            digest = build_digest(page.svc, date, page.lang)
        else:
            with _BUILD_LOCK:
                digest = build_digest(page.svc, date, page.lang)
    except NewsletterError:
        log.exception("could not build the %s edition of %s for the archive", page.lang, date)
        raise _PageError(503, "archive_unavailable", page.t["archive_unavailable_text"]) from None
    if digest is None:
        raise _PageError(
            404, "archive_not_found", page.t["archive_issue_missing"].format(date=date)
        )
    return digest


# -- the issue list -------------------------------------------------------------------------


@router.get("/issues", response_class=HTMLResponse)
def issue_list(request: Request, page: str = "1", lang: str | None = None) -> HTMLResponse:
    try:
        view = _Page(request, lang)
        number = _parse_page(view, page)
        total = published.count_public(view.svc.engine)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if number > pages:
            raise _PageError(
                404, "archive_not_found", view.t["archive_bad_page"].format(value=page)
            )
        summaries = published.list_public(view.svc.engine, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    except _PageError as exc:
        return _error_page(request, lang, exc)
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


def _paper_context(paper: Paper) -> dict[str, Any]:
    """A search hit: feed text cleaned and cut like the e-mail's, links only if http(s)."""
    return {
        "arxiv_id": paper.arxiv_id,
        "title": clean_line(paper.title, TITLE_CHARS) or paper.arxiv_id,
        "url": paper_url(paper),
        "authors": clean_line(paper.short_authors, AUTHOR_CHARS),
    }


def _issue_context(view: _Page, digest: Digest) -> dict[str, Any]:
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
        view = _Page(request, lang)
        day = _parse_date(view, date)
        digest = _digest(view, day)
    except _PageError as exc:
        return _error_page(request, lang, exc)
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
        view = _Page(request, lang)
        day = _parse_date(view, date)
        png = published.stored_chart(view.svc.engine, day, view.lang)
        if png is None:  # this language's edition was never built
            png = _digest(view, day).chart_png
    except _PageError as exc:
        return _error_page(request, lang, exc)
    etag = '"' + hashlib.sha256(png).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CHART_CACHE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


# -- the feed -------------------------------------------------------------------------------


def _aware(moment: dt.datetime) -> dt.datetime:
    """Stored times are UTC; SQLite gives them back without a zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@router.get("/feed.xml", response_model=None)
def feed(request: Request, lang: str | None = None) -> Response:
    """An Atom feed of the latest issues, each with its categories and conclusions."""
    from feedgenerator import Atom1Feed

    try:
        view = _Page(request, lang)
    except _PageError as exc:
        return _error_page(request, lang, exc)
    svc, t = view.svc, view.t
    base = svc.settings.base_url
    suffix = f"?{urlencode({'lang': view.lang})}" if view.lang != view.default else ""
    atom = Atom1Feed(
        title=t["title"],
        link=f"{base}/issues{suffix}",
        description=t["archive_feed_subtitle"],
        subtitle=t["archive_feed_subtitle"],
        language=view.lang,
        feed_url=f"{base}/feed.xml{suffix}",
        author_name=svc.settings.from_name,
    )
    entry = web_templates().get_template("archive_feed_entry.html")
    for summary in published.list_public(svc.engine, FEED_SIZE):
        day = summary.date.isoformat()
        url = f"{base}/issues/{day}{suffix}"
        conclusions = summary.conclusions_in(view.lang)
        categories = [
            {
                "emoji": svc.taxonomy.get(slug).emoji,
                "name": svc.taxonomy.get(slug).name(view.lang),
                "count": count,
                "url": f"{url}#{slug}",
                "conclusion": conclusions.get(slug, ""),
            }
            for slug, count in summary.top(svc.taxonomy.slugs, n=len(summary.counts))
            if slug in svc.taxonomy.slugs
        ]
        atom.add_item(
            title=t["subject"].format(date=day, count=summary.paper_count),
            link=url,
            unique_id=url,
            description=entry.render(
                papers=lambda count: paper_count(count, view.lang),
                paper_count=summary.paper_count,
                categories=categories,
            ).strip(),
            pubdate=_aware(summary.updated),
            updateddate=_aware(summary.updated),
        )
    body = atom.writeString("utf-8")
    return Response(body, media_type=atom.content_type, headers={"Cache-Control": FEED_CACHE})


# -- search ---------------------------------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request, q: str = "", page: str = "1", lang: str | None = None
) -> HTMLResponse:
    try:
        view = _Page(request, lang)
        number = _parse_page(view, page)
    except _PageError as exc:
        return _error_page(request, lang, exc)
    query = search.parse_query(q)
    offset = (number - 1) * SEARCH_PAGE_SIZE
    found = search.search_papers(view.svc.engine, query, limit=SEARCH_PAGE_SIZE, offset=offset)
    results = [
        {
            **_paper_context(p),
            "date": p.announced.isoformat(),
            "issue_url": view.href(f"/issues/{p.announced.isoformat()}"),
            "abstract": clean_line(p.abstract, 300),
        }
        for p in found.papers
    ]
    params: dict[str, str | int] = {"q": query.text} if query.text else {}
    return view.render(
        "archive_search.html",
        title=view.t["archive_search"],
        q=query.text,
        searched=bool(q.strip()),
        query=query,
        max_chars=search.MAX_QUERY_CHARS,
        results=results,
        page=number,
        first=offset + 1,
        newer_url=view.href("/search", {**params, "page": number - 1}) if number > 1 else "",
        older_url=view.href("/search", {**params, "page": number + 1}) if found.has_more else "",
        languages=view.languages("/search", params),
    )

"""The archive's paper search page: a query box and paged hits, each linked to its issue.

Routed by ``archive.router``; the query language and the index are ``newsletter.search``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from newsletter import search
from newsletter.models import Paper
from newsletter.render import AUTHOR_CHARS, TITLE_CHARS, paper_url
from newsletter.richtext import clean_line
from subscribers.archive_pages import Page, PageError, error_page, parse_page

SEARCH_PAGE_SIZE = 20


def _paper_context(paper: Paper) -> dict[str, Any]:
    """A search hit: feed text cleaned and cut like the e-mail's, links only if http(s)."""
    return {
        "arxiv_id": paper.arxiv_id,
        "title": clean_line(paper.title, TITLE_CHARS) or paper.arxiv_id,
        "url": paper_url(paper),
        "authors": clean_line(paper.short_authors, AUTHOR_CHARS),
    }


def search_page(
    request: Request, q: str = "", page: str = "1", lang: str | None = None
) -> HTMLResponse:
    try:
        view = Page(request, lang)
        number = parse_page(view, page)
    except PageError as exc:
        return error_page(request, lang, exc)
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

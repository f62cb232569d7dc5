"""What every public archive page shares: language, texts, links, errors and issue builds.

Split from ``archive`` so the issue pages, the feed (``archive_feed``) and search
(``archive_search``) each read as their handlers alone. Pages are rendered on the server
with autoescaped Jinja templates (``newsletter/templates/web/archive_*.html``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from newsletter import published
from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.errors import NewsletterError
from newsletter.i18n import LANGUAGES, paper_count, texts
from newsletter.models import Digest
from subscribers.templating import web_templates

log = logging.getLogger(__name__)

#: Issue pages change only when a new language is built; charts never do.
PAGE_CACHE = "public, max-age=300"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PAGE = re.compile(r"\d{1,6}")
#: One digest build at a time per process: a language is generated once, not once per
#: concurrent visitor (the LLM bill), and two builds never overwrite each other's stage.
_BUILD_LOCK = threading.Lock()


class PageError(Exception):
    """Ends a request with an error page; raised inside handlers, rendered by ``error_page``."""

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


class Page:
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
            raise PageError(
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


def error_page(request: Request, lang: str | None, error: PageError) -> HTMLResponse:
    """The error page for ``error``, in ``lang`` when that language is valid."""
    try:
        page = Page(request, lang)
    except PageError:
        page = Page(request, None)
    return page.render(
        "archive_error.html",
        status=error.status,
        title=page.t[error.title_key],
        message=error.message,
        languages=[],
    )


def parse_date(page: Page, text: str) -> dt.date:
    """An issue date from a path, or a 404 page naming it."""
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise PageError(404, "archive_not_found", page.t["archive_bad_date"].format(value=text[:40]))


def parse_page(page: Page, text: str) -> int:
    """A page number from a query, or a 400 page naming it."""
    if _PAGE.fullmatch(text) and int(text) >= 1:
        return int(text)
    raise PageError(400, "archive_bad_request", page.t["archive_bad_page"].format(value=text[:40]))


def public_digest(page: Page, date: dt.date) -> Digest:
    """The public issue of ``date`` in the page's language, built and stored if missing."""
    summary = published.get_public(page.svc.engine, date)
    if summary is None:
        raise PageError(404, "archive_not_found", page.t["archive_issue_missing"].format(date=date))
    try:
        if page.lang in summary.conclusions:
            digest = build_digest(page.svc, date, page.lang)
        else:
            with _BUILD_LOCK:
                digest = build_digest(page.svc, date, page.lang)
    except NewsletterError:
        log.exception("could not build the %s edition of %s for the archive", page.lang, date)
        raise PageError(503, "archive_unavailable", page.t["archive_unavailable_text"]) from None
    if digest is None:
        raise PageError(404, "archive_not_found", page.t["archive_issue_missing"].format(date=date))
    return digest

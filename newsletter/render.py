"""Digest + reader view -> (subject, HTML, text): Jinja -> MJML -> HTML -> inlined CSS.

One rendering serves every reader with the same categories and language; their
signed links are left as unique placeholder strings (``RenderedIssue.placeholders``)
that the sender fills per recipient. All paper and LLM text is escaped by Jinja's
autoescape before it reaches the MJML compiler.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from newsletter.categories import Taxonomy
from newsletter.errors import RenderError
from newsletter.i18n import texts
from newsletter.models import (
    CategorySection,
    Digest,
    InlineImage,
    Paper,
    ReaderView,
    RenderedIssue,
)

log = logging.getLogger(__name__)

#: Gmail clips messages whose HTML exceeds ~102 KB; keep a margin.
MAX_HTML_BYTES = 100_000
#: Source-list lengths tried, longest first, until the HTML fits.
SOURCE_LIMITS: tuple[int | None, ...] = (None, 30, 15, 8, 4)
PLACEHOLDER_NAMES = ("manage_url", "unsubscribe_url")


@dataclass(frozen=True)
class Links:
    """Links that are the same for every reader of an issue."""

    archive_url: str
    chart_url: str = ""  # empty = embed the chart inline by Content-ID


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/email"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2",)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def chart_content_id(digest: Digest) -> str:
    return f"chart-{digest.date.isoformat()}@daily-ai-insights"


def subject_line(digest: Digest, view: ReaderView) -> str:
    count = _paper_count(digest, view)
    return texts(view.language)["subject"].format(date=digest.date.isoformat(), count=count)


def _paper_count(digest: Digest, view: ReaderView) -> int:
    seen: set[str] = set()
    for slug in view.categories:
        section = digest.section(slug)
        if section:
            seen.update(p.arxiv_id for p in section.papers)
    return len(seen)


def _section_context(
    section: CategorySection, taxonomy: Taxonomy, language: str, limit: int | None
) -> dict[str, Any]:
    category = taxonomy.get(section.slug)
    by_id = {p.arxiv_id: p for p in section.papers}
    notable = [
        {"title": by_id[n.arxiv_id].title, "url": by_id[n.arxiv_id].abs_url, "line": n.line}
        for n in section.report.notable
        if n.arxiv_id in by_id
    ]
    sources: tuple[Paper, ...] = section.papers if limit is None else section.papers[:limit]
    return {
        "slug": section.slug,
        "emoji": category.emoji,
        "name": category.name(language),
        "count": len(section.papers),
        "report": section.report,
        "notable": notable,
        "sources": sources,
        "more": len(section.papers) - len(sources),
    }


def _made_with(digest: Digest, language: str) -> str:
    t = texts(language)
    if digest.made_with in ("", "offline"):
        return t["made_offline"]
    return t["made_with"].format(model=digest.made_with)


def render_issue(
    digest: Digest, view: ReaderView, taxonomy: Taxonomy, links: Links
) -> RenderedIssue:
    """The e-mail for every reader of ``view``; sections are the view's non-empty categories."""
    sections = [s for s in (digest.section(slug) for slug in view.categories) if s]
    if not sections:
        raise RenderError(
            f"nothing to render for categories {', '.join(view.categories)} on {digest.date}"
        )
    t = texts(view.language)
    nonce = secrets.token_hex(8)
    placeholders = {
        name: f"NLPH{name.upper().replace('_', '')}{nonce}" for name in PLACEHOLDER_NAMES
    }
    top = ", ".join(
        taxonomy.get(s.slug).name(view.language)
        for s in sorted(sections, key=lambda s: -len(s.papers))[:3]
    )
    count = _paper_count(digest, view)
    base: dict[str, Any] = {
        "t": t,
        "language": view.language,
        "subject": subject_line(digest, view),
        "preheader": t["preheader"].format(count=count, top=top),
        "date_label": digest.date.isoformat(),
        "paper_count": count,
        "archive_url": links.archive_url,
        "chart_src": links.chart_url or f"cid:{chart_content_id(digest)}",
        "made_with": _made_with(digest, view.language),
        **placeholders,
    }
    html = ""
    for limit in SOURCE_LIMITS:
        context = {
            **base,
            "sections": [_section_context(s, taxonomy, view.language, limit) for s in sections],
        }
        html = compile_mjml(_env().get_template("issue.mjml.j2").render(context))
        if len(html.encode("utf-8")) <= MAX_HTML_BYTES:
            break
        log.info("issue %s: HTML over %d bytes, cutting source lists", digest.date, MAX_HTML_BYTES)
    text = _env().get_template("issue.txt.j2").render(context)
    images = (
        ()
        if links.chart_url
        else (InlineImage(chart_content_id(digest), digest.chart_png, f"chart-{digest.date}.png"),)
    )
    return RenderedIssue(base["subject"], html, text, images, placeholders)


def compile_mjml(mjml_source: str) -> str:
    """MJML -> HTML with CSS inlined; media queries stay in a <style> block."""
    from mjml import mjml2html

    try:
        html = mjml2html(mjml_source)
    except ValueError as exc:
        raise RenderError(f"the e-mail template did not compile: {exc}") from exc
    return inline_css(html)


@lru_cache(maxsize=1)
def _quiet_cssutils() -> None:
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)


def inline_css(html: str) -> str:
    """Inline CSS with premailer, keeping media queries and restoring the doctype it drops."""
    from premailer import Premailer

    _quiet_cssutils()
    inlined = Premailer(
        html,
        allow_network=False,
        keep_style_tags=True,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    inlined = str(inlined)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = "<!doctype html>\n" + inlined
    return inlined

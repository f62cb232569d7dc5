"""Digest + reader view -> (subject, HTML, text): Jinja -> MJML -> HTML -> inlined CSS.

One rendering serves every reader with the same categories and language; their
signed links are left as unique placeholder strings (``RenderedIssue.placeholders``)
that the sender fills per recipient. Nothing from a feed or a model reaches the
MJML compiler unescaped: feed text is cleaned and autoescaped by Jinja, report
markdown is converted by ``newsletter.richtext`` with raw HTML disabled.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from newsletter import i18n
from newsletter.categories import Taxonomy
from newsletter.errors import RenderError
from newsletter.html_build import compile_mjml
from newsletter.mailtext import encoded_size, plain_text
from newsletter.models import (
    CategorySection,
    Digest,
    InlineImage,
    Paper,
    ReaderView,
    RenderedIssue,
)
from newsletter.richtext import (
    Rich,
    clean_block,
    clean_line,
    markdown_block,
    markdown_inline,
    safe_colour,
    safe_url,
)

log = logging.getLogger(__name__)

#: Gmail clips messages whose HTML part, as sent (after its transfer encoding), exceeds
#: ~102 KB; keep a margin for the signed links that replace the placeholders.
MAX_HTML_BYTES = 100_000
#: Source-list lengths tried, longest first, until the HTML fits.
SOURCE_LIMITS: tuple[int | None, ...] = (None, 30, 20, 12, 8, 5, 3, 0)
PLACEHOLDER_NAMES = ("manage_url", "unsubscribe_url", "for_you_html", "for_you_text")
#: Every mail's own links; the "For you" block (``newsletter.foryou_block``) is in daily issues.
LINK_NAMES = PLACEHOLDER_NAMES[:2]
#: Display caps: real arXiv titles stay far below them, hostile ones cannot bloat the mail.
TITLE_CHARS = 300
AUTHOR_CHARS = 80
KEYWORD_CHARS = 40
#: Themes this short are shown as chips, longer ones (LLM sentences) as a list.
CHIP_CHARS = 32
UPDATED_TYPES = frozenset(("replace", "replace-cross"))
#: Invisible filler after the preheader so clients do not pull body text into the preview.
PREHEADER_FILLER = Markup("&zwnj;&nbsp;" * 40)
#: The chart's width in the mail, in CSS pixels (the PNG is drawn at twice that).
CHART_WIDTH = 480
_LATIN = re.compile(r"[A-Za-z]{2}")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})$")
_NEW_ID = r"(?:arXiv:\s*)?\d{4}\.\d{4,5}(?:v\d+)?"
#: "[2411.01234]" or "[2411.01234, arXiv:2411.05678v2]": how the report prompt asks models to cite.
_CITATION = re.compile(rf"\[({_NEW_ID}(?:\s*[,;]\s*{_NEW_ID})*)\]", re.IGNORECASE)
_CITED_ID = re.compile(r"\d{4}\.\d{4,5}")
#: Private-use characters that mark a citation number through the markdown conversion.
_OPEN, _CLOSE = "\ue000", "\ue001"
_SENTINELS = re.compile("[\ue000\ue001]")
_MARKED = re.compile("\ue000(\\d+)\ue001")


@dataclass(frozen=True)
class Links:
    """Links that are the same for every reader of an issue."""

    archive_url: str
    chart_url: str = ""  # empty = embed the chart inline by Content-ID


@lru_cache(maxsize=4)
def mail_templates(folder: str = "email") -> jinja2.Environment:
    """The Jinja environment of the MJML mail templates in ``newsletter/templates/<folder>``:
    shared by the issue and the subscribers' link mails so both escape the same way."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", f"templates/{folder}"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2",)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["lang_attr"] = _lang_attr
    return env


@jinja2.pass_context
def _lang_attr(context: jinja2.runtime.Context, text: object) -> Markup:
    """`` lang="en"`` on English text (an abstract, a title) inside an issue in another
    language, so screen readers and hyphenation treat it as English."""
    words = str(text)
    if context.get("language", "en") != "en" and _LATIN.search(words) and not _HANGUL.search(words):
        return Markup(' lang="en"')
    return Markup("")


def chart_size(png: bytes, width: int = CHART_WIDTH) -> tuple[int, int]:
    """(width, height) in CSS pixels of the chart shown ``width`` wide, from its PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return width, width // 2
    real_width, real_height = int.from_bytes(png[16:20]), int.from_bytes(png[20:24])
    return width, max(1, round(width * real_height / max(real_width, 1)))


def chart_content_id(digest: Digest) -> str:
    kind = "weekly-" if digest.period_start else ""
    return f"chart-{kind}{digest.date.isoformat()}@daily-ai-insights"


def subject_line(digest: Digest, view: ReaderView) -> str:
    count = _paper_count(digest, view)
    t = i18n.texts(view.language)
    if digest.period_start is not None:
        return t["weekly_subject"].format(
            start=digest.period_start.isoformat(), date=digest.date.isoformat(), count=count
        )
    return t["subject"].format(date=digest.date.isoformat(), count=count)


def _long_date(digest: Digest, language: str) -> str:
    """The issue's date, or the first and last day of a weekly or catch-up digest."""
    last = i18n.long_date(digest.date, language)
    first = digest.period_start or digest.covers_from
    if first is None:
        return last
    return f"{i18n.long_date(first, language)} – {last}"


def _paper_count(digest: Digest, view: ReaderView) -> int:
    seen: set[str] = set()
    for slug in view.categories:
        section = digest.section(slug)
        if section:
            seen.update(p.arxiv_id for p in section.papers)
    return len(seen)


def paper_url(paper: Paper) -> str:
    """The paper's abstract page: its feed link if http(s), else derived from an arXiv id."""
    url = safe_url(paper.abs_url)
    if not url and _ARXIV_ID.match(paper.arxiv_id):
        url = f"https://arxiv.org/abs/{paper.arxiv_id}"
    return url


def _cite(text: str, numbers: dict[str, int]) -> tuple[str, str]:
    """(plain, marked) ``text`` with each "[arXiv id]" citation of a paper of this section
    turned into "[n]", its number in the source list; ``marked`` holds the numbers
    between private-use sentinels that ``_link_citations`` turns into links after the
    markdown conversion. Citations of papers outside the section are left as written.
    """
    text = _SENTINELS.sub("", text)

    def replace(match: re.Match[str], marked: bool) -> str:
        ids = _CITED_ID.findall(match.group(1))
        if not all(i in numbers for i in ids):
            return match.group(0)
        refs = [f"{_OPEN}{numbers[i]}{_CLOSE}" if marked else str(numbers[i]) for i in ids]
        return "[" + ", ".join(refs) + "]"

    plain = _CITATION.sub(lambda m: replace(m, marked=False), text)
    marked = _CITATION.sub(lambda m: replace(m, marked=True), text)
    return plain, marked


def _link_citations(html: str, urls: dict[int, str]) -> str:
    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        url = urls.get(number, "")
        if not url:
            return str(number)
        return str(Markup('<a href="{}">{}</a>').format(url, number))

    return _MARKED.sub(link, html)


def _report_line(text: str, numbers: dict[str, int], urls: dict[int, str]) -> Rich:
    plain, marked = _cite(text, numbers)
    return Rich(clean_line(plain), _link_citations(markdown_inline(marked).html, urls))


def _report_block(text: str, numbers: dict[str, int], urls: dict[int, str]) -> Rich:
    plain, marked = _cite(text, numbers)
    return Rich(clean_block(plain).strip(), _link_citations(markdown_block(marked).html, urls))


def _source(paper: Paper) -> dict[str, Any]:
    return {
        "title": clean_line(paper.title, TITLE_CHARS) or paper.arxiv_id,
        "url": paper_url(paper),
        "authors": clean_line(paper.short_authors, AUTHOR_CHARS),
        "arxiv_id": paper.arxiv_id if _ARXIV_ID.match(paper.arxiv_id) else "",
        "updated": paper.announce_type in UPDATED_TYPES,
    }


def section_context(section: CategorySection, taxonomy: Taxonomy, language: str) -> dict[str, Any]:
    """Everything a template shows of one category, with every source (cut later if needed)."""
    category = taxonomy.get(section.slug)
    report = section.report
    by_id = {p.arxiv_id: p for p in section.papers}
    numbers = {p.arxiv_id: n for n, p in enumerate(section.papers, start=1)}
    urls = {n: paper_url(p) for n, p in enumerate(section.papers, start=1)}
    themes = [markdown_inline(item) for item in report.themes if item.strip()]
    return {
        "slug": section.slug,
        "emoji": category.emoji,
        "name": category.name(language),
        "color": safe_colour(category.color),
        "count": len(section.papers),
        "count_label": i18n.paper_count(len(section.papers), language),
        "covered": report.covered,
        "total": report.total,
        "themes": themes,
        "themes_as_chips": all(len(item.text) <= CHIP_CHARS for item in themes),
        "keywords": [clean_line(k, KEYWORD_CHARS) for k in report.keywords if k.strip()],
        "findings": [_report_line(item, numbers, urls) for item in report.findings if item.strip()],
        "notable": [
            {**_source(by_id[n.arxiv_id]), "line": _report_line(n.line, numbers, urls)}
            for n in report.notable
            if n.arxiv_id in by_id
        ],
        "conclusion": _report_block(report.conclusion, numbers, urls),
        "sources": [_source(p) for p in section.papers],
        "more": 0,
    }


def _cut(section: dict[str, Any], limit: int | None) -> dict[str, Any]:
    if limit is None or len(section["sources"]) <= limit:
        return section
    return {
        **section,
        "sources": section["sources"][:limit],
        "more": len(section["sources"]) - limit,
    }


def _made_with(digest: Digest, language: str) -> str:
    t = i18n.texts(language)
    if digest.made_note.startswith(t["made_offline"]):
        return digest.made_note
    if digest.made_note:  # the full statement of what the model did, never cut
        return f"{clean_line(digest.made_note, 2000)} {t['made_check']}"
    if digest.made_with in ("", "offline"):
        return t["made_offline"]
    return t["made_with"].format(model=clean_line(digest.made_with, 80))


@dataclass(frozen=True)
class _Context:
    base: dict[str, Any]
    sections: list[dict[str, Any]]
    placeholders: dict[str, str]


def _context(digest: Digest, view: ReaderView, taxonomy: Taxonomy, links: Links) -> _Context:
    chosen = [digest.section(slug) for slug in view.categories]
    sections = [s for s in chosen if s is not None and s.papers]
    if not sections:
        raise RenderError(
            f"none of the categories {', '.join(view.categories)} has a paper on {digest.date}; "
            "that reader gets no e-mail today"
        )
    language = view.language
    t = i18n.texts(language)
    nonce = secrets.token_hex(8)
    names = LINK_NAMES if digest.period_start else PLACEHOLDER_NAMES
    placeholders = {name: f"NLPH{name.upper().replace('_', '')}{nonce}" for name in names}
    top = ", ".join(
        taxonomy.get(s.slug).name(language)
        for s in sorted(sections, key=lambda s: -len(s.papers))[:3]
    )
    count = _paper_count(digest, view)
    base: dict[str, Any] = {
        "t": t,
        "language": language,
        "subject": subject_line(digest, view),
        "preheader": t["weekly_preheader" if digest.period_start else "preheader"].format(
            count=count, top=top
        ),
        "preheader_filler": PREHEADER_FILLER,
        "long_date": _long_date(digest, language),
        "summary": (
            f"{i18n.new_paper_count(count, language)} · "
            f"{i18n.category_count(len(sections), language)}"
        ),
        "top_line": t["top"].format(top=top),
        "paper_count": count,
        "archive_url": links.archive_url,
        "chart_src": links.chart_url or f"cid:{chart_content_id(digest)}",
        "chart_width": chart_size(digest.chart_png)[0],
        "chart_height": chart_size(digest.chart_png)[1],
        "made_with": _made_with(digest, language),
        "for_you_html": "",
        "for_you_text": "",
        **placeholders,
    }
    full = [section_context(s, taxonomy, language) for s in sections]
    return _Context(base, full, placeholders)


def _mjml(context: _Context, limit: int | None) -> str:
    sections = [_cut(s, limit) for s in context.sections]
    return (
        mail_templates()
        .get_template("issue.mjml.j2")
        .render({**context.base, "sections": sections})
    )


def issue_mjml(digest: Digest, view: ReaderView, taxonomy: Taxonomy, links: Links) -> str:
    """The MJML source of ``view``'s issue with every source (for benchmarks and debugging)."""
    return _mjml(_context(digest, view, taxonomy, links), None)


def render_issue(
    digest: Digest, view: ReaderView, taxonomy: Taxonomy, links: Links
) -> RenderedIssue:
    """The e-mail for every reader of ``view``; sections are the view's non-empty categories.

    Raises RenderError when none of the view's categories has a paper: such a
    reader gets no e-mail that day (``sending.send`` skips them before rendering).
    """
    context = _context(digest, view, taxonomy, links)
    longest = max(len(s["sources"]) for s in context.sections)
    html, limit, size = "", None, 0
    # A limit at or above the longest list would render the same HTML again.
    for limit in [n for n in SOURCE_LIMITS if n is None or n < longest]:
        html = compile_mjml(_mjml(context, limit))
        size = sent_html_bytes(html)
        if size <= MAX_HTML_BYTES:
            break
        log.info("issue %s: HTML is %d bytes as sent, cutting source lists", digest.date, size)
    else:
        log.warning(
            "issue %s: HTML is still %d bytes as sent with the shortest source lists; "
            "Gmail will clip it",
            digest.date,
            size,
        )
    # The text twin is cut like the HTML, with the same "N more on the web archive"
    # links: parts that differ in content are what spam filters score
    # (SpamAssassin's MPART_ALT_DIFF_COUNT).
    text = plain_text(
        mail_templates()
        .get_template("issue.txt.j2")
        .render({**context.base, "sections": [_cut(s, limit) for s in context.sections]})
    )
    images = (
        ()
        if links.chart_url
        else (InlineImage(chart_content_id(digest), digest.chart_png, f"chart-{digest.date}.png"),)
    )
    return RenderedIssue(
        context.base["subject"], html, text, images, context.placeholders, view.language
    )


def sent_html_bytes(html: str) -> int:
    """Bytes of ``html`` as the mail carries it: after the part's transfer encoding.

    Gmail judges the HTML part as sent, so the guard counts what ``delivery.mime``
    sends (``mailtext.transfer_encoding``), not the decoded UTF-8.
    """
    return encoded_size(html)


def render_empty_day(date: dt.date, language: str) -> RenderedIssue:
    """The short note of a day arXiv announced nothing (NEWSLETTER_EMPTY_DAY=note).

    No chart and no sections: the date, one sentence and the reader's own links,
    left as placeholders exactly like ``render_issue``.
    """
    from newsletter.i18n import texts

    t = texts(language)
    nonce = secrets.token_hex(8)
    placeholders = {name: f"NLPH{name.upper().replace('_', '')}{nonce}" for name in LINK_NAMES}
    message = t["no_papers"]
    subject = f"{date.isoformat()} · {message}"
    context = {
        "t": t,
        "language": language,
        "subject": subject,
        "message": message,
        "date_label": date.isoformat(),
        **placeholders,
    }
    html = compile_mjml(mail_templates().get_template("empty_day.mjml.j2").render(context))
    text = plain_text(
        f"{t['title']} | {date.isoformat()}\n\n{message}\n\n-- \n"
        f"{t['manage']}: {placeholders['manage_url']}\n"
        f"{t['unsubscribe']}: {placeholders['unsubscribe_url']}\n"
    )
    return RenderedIssue(subject, html, text, (), placeholders, language)

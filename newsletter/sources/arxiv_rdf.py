"""arXiv's old RSS 1.0 (RDF) feeds, as arXiv served them before 2024 and archives keep.

The format: the channel states its date once (``<dc:date>``, US Eastern); an item
has no date, no guid and no announce type of its own. The arXiv id is the item's
link (``http://arxiv.org/abs/<id>``); the title ends with a suffix
``(arXiv:<id>v<N> [<primary class>])``, plus ``CROSS LISTED`` for a cross-list or
``UPDATED`` for a replacement; the description is HTML; ``<dc:creator>`` lists the
authors as HTML links. Papers are dated by the channel's date: a feed that states
none is refused rather than dated by this machine's clock.
"""

from __future__ import annotations

import html
import re
from typing import Any

from newsletter.errors import SourceError
from newsletter.models import Paper
from newsletter.sources.arxiv_api import iso_date
from newsletter.sources.arxiv_rss import REPLACEMENT_TYPES, entry_id
from newsletter.sources.authors import split_authors
from newsletter.sources.base import (
    Document,
    EntryLog,
    EntryRejected,
    FeedContext,
    ParsedFeed,
    clean_abstract,
    clean_title,
    feed_result,
    fold,
    made_papers,
    whole_entries,
)

KIND = "arxiv-rdf"
_SUFFIX = re.compile(
    r"\.?\s*\(arXiv:(?P<id>\S+?)\s*\[(?P<cls>[^\]]*)\](?:\s*(?P<flag>[A-Z][A-Z ]*?))?\s*\)\s*$"
)
_ABS_LINK = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/abs/", re.I)
_TAGS = re.compile(r"<[^>]*>")
_FLAGS = {"": "new", "CROSS LISTED": "cross", "UPDATED": "replace"}


def recognises(doc: Document) -> bool:
    """RSS 1.0 whose items link to arXiv abstracts or carry arXiv's title suffix."""
    if doc.feed_problem() is not None or doc.feed.get("version") != "rss10":
        return False
    entries = doc.feed.entries[:5]
    return bool(entries) and any(
        _ABS_LINK.match(str(e.get("link", ""))) or _SUFFIX.search(str(e.get("title", "")))
        for e in entries
    )


def _paper(entry: Any, label: str, ctx: FeedContext, log: EntryLog, date: Any) -> Paper:
    raw_title = fold(entry.get("title", ""))
    suffix = _SUFFIX.search(raw_title)
    ident = fold(entry.get("link", "")) or fold(entry.get("id", ""))
    if not ident and suffix:
        ident = suffix.group("id")
    if not ident:
        raise EntryRejected(f"{label}: no link and no arXiv id in the title")
    arxiv_id, version = entry_id(ident, label)
    if version is None and suffix:
        version = entry_id(suffix.group("id"), label)[1]
    label = f"{label} ({arxiv_id})"
    title = clean_title(raw_title[: suffix.start()] if suffix else raw_title, label, log)
    if not title:
        raise EntryRejected(f"{label}: no title")
    summary = html.unescape(_TAGS.sub(" ", str(entry.get("summary", "") or "")))
    abstract = clean_abstract(summary, label, log)
    if not abstract:
        raise EntryRejected(f"{label}: no abstract")
    flag = fold(suffix.group("flag")) if suffix and suffix.group("flag") else ""
    kind = _FLAGS.get(flag)
    if kind is None:
        log.notes.append(f"{label}: unknown title flag {flag!r}; treated as new")
        kind = "new"
    primary = fold(suffix.group("cls")) if suffix else ""
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        abstract=abstract,
        authors=split_authors(entry.get("author", "")),
        announced=date,
        primary_class=primary,
        classes=(primary,) if primary else (),
        announce_type=kind,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        source=ctx.url,
    )


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    """Papers of an RSS 1.0 arXiv feed; ``UPDATED`` items are replacements."""
    parsed = doc.feed
    date = iso_date(parsed.feed.get("updated")) or iso_date(parsed.feed.get("published"))
    if date is None:
        raise SourceError(
            ctx.url,
            "an arXiv RSS 1.0 feed without a channel date (dc:date): its papers cannot be "
            "dated, so none were stored",
        )
    log = EntryLog()
    papers: dict[str, Paper] = {}
    for paper in made_papers(
        whole_entries(doc, log), log, lambda entry, label: _paper(entry, label, ctx, log, date)
    ):
        if paper.announce_type in REPLACEMENT_TYPES and not ctx.include_replacements:
            log.skipped_replacements += 1
            continue
        log.merged += paper.arxiv_id in papers
        papers.setdefault(paper.arxiv_id, paper)
    return feed_result(doc, ctx, KIND, log, papers.values(), date)

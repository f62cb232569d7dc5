"""arXiv's API answers (``export.arxiv.org/api/query?...``): Atom, one entry per paper.

Recognised by content: an Atom document whose entry ids are arXiv abstract URLs
(``http://arxiv.org/abs/<id>v<N>``). Each entry carries every author as its own
``<author>``, the primary class in ``<arxiv:primary_category>``, all classes as
``<category>`` and ``<published>`` (the first version's date, which dates the
paper here: an API answer is a search, not a day's announcement, so a later
version is the same paper, not a replacement to skip).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from newsletter.models import Paper
from newsletter.sources.arxiv_rss import entry_id
from newsletter.sources.authors import entry_authors
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
    merge_classes,
    whole_entries,
)

KIND = "arxiv-api"
_ABS_ID = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/abs/", re.I)


def recognises(doc: Document) -> bool:
    """Atom whose first entries are identified by arXiv abstract URLs."""
    if doc.feed_problem() is not None:
        return False
    parsed = doc.feed
    if not str(parsed.get("version", "")).startswith("atom"):
        return False
    entries = parsed.entries[:5]
    return bool(entries) and all(_ABS_ID.match(str(e.get("id", ""))) for e in entries)


def iso_date(value: Any) -> dt.date | None:
    """The calendar date an ISO 8601 timestamp states, in its own time zone."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _paper(entry: Any, label: str, ctx: FeedContext, log: EntryLog) -> Paper:
    arxiv_id, version = entry_id(str(entry.get("id", "")), label)
    label = f"{label} ({arxiv_id})"
    # The API wraps long titles over lines: folding them is expected, not worth a note.
    title = clean_title(fold(entry.get("title", "")), label, log)
    if not title:
        raise EntryRejected(f"{label}: no title")
    abstract = clean_abstract(entry.get("summary", ""), label, log)
    if not abstract:
        raise EntryRejected(f"{label}: no abstract")
    date = iso_date(entry.get("published"))
    if date is None:
        raise EntryRejected(f"{label}: no published date")
    primary = fold((entry.get("arxiv_primary_category") or {}).get("term"))
    tags = tuple(fold(t.get("term")) for t in entry.get("tags", []) or [])
    classes = merge_classes((primary,) if primary else (), tuple(t for t in tags if t))
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        abstract=abstract,
        authors=entry_authors(entry, atom=True),
        announced=date,
        primary_class=classes[0] if classes else "",
        classes=classes,
        announce_type="new",
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        source=ctx.url,
    )


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    """Papers from an API answer; an entry without id or date is reported, not guessed."""
    log = EntryLog()
    papers: dict[str, Paper] = {}
    for paper in made_papers(
        whole_entries(doc, log), log, lambda entry, label: _paper(entry, label, ctx, log)
    ):
        log.merged += paper.arxiv_id in papers
        papers.setdefault(paper.arxiv_id, paper)
    announced = max((p.announced for p in papers.values()), default=None)
    return feed_result(doc, ctx, KIND, log, papers.values(), announced)

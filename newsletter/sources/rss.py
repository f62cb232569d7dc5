"""Any RSS 2.0 or Atom feed (a blog, a conference): each entry becomes a Paper.

Such entries have no arXiv id, so the identity is the entry's id (or link),
hashed into a stable ``web:<hash>`` key; a re-run or a later day never repeats it.
An entry is dated by its own published/updated date, else by the date the
channel states. An entry with neither id nor link, or with no date anywhere, is
reported and not stored: a made-up key or this machine's date would be a guess.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from typing import Any

from newsletter.models import Paper
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
    whole_entries,
)

KIND = "rss"
_TAGS = re.compile(r"<[^>]+>")


def recognises(doc: Document) -> bool:
    """Any usable RSS or Atom document (arXiv's are claimed by ``arxiv_rss`` first)."""
    return doc.feed_problem() is None


def paper_key(ident: str) -> str:
    return "web:" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:20]


def _date(entry: Any) -> dt.date | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return dt.date(value.tm_year, value.tm_mon, value.tm_mday)
    return None


def _text(detail: Any, raw: Any) -> str:
    """Plain text of a field that may be declared HTML (Atom type="html")."""
    text = raw if isinstance(raw, str) else ""
    kind = (detail or {}).get("type", "text/plain")
    if "html" in kind:
        text = html.unescape(_TAGS.sub(" ", text))
    return text


def _paper(
    entry: Any, label: str, ctx: FeedContext, log: EntryLog, atom: bool, channel: dt.date | None
) -> Paper:
    link = fold(entry.get("link", ""))
    ident = fold(entry.get("id", "")) or link
    if not ident:
        raise EntryRejected(f"{label}: no id and no link")
    title = clean_title(_text(entry.get("title_detail"), entry.get("title")), label, log)
    if not title:
        raise EntryRejected(f"{label} ({ident}): no title")
    date = _date(entry) or channel
    if date is None:
        raise EntryRejected(f"{label} ({ident}): no date in the entry or the channel")
    summary = _text(entry.get("summary_detail"), entry.get("summary", ""))
    tags = tuple(
        t for t in dict.fromkeys(fold(t.get("term")) for t in entry.get("tags", []) or []) if t
    )
    return Paper(
        arxiv_id=paper_key(ident),
        title=title,
        abstract=clean_abstract(summary, label, log),
        authors=entry_authors(entry, atom),
        announced=date,
        primary_class=tags[0] if tags else "",
        classes=tags,
        announce_type="new",
        abs_url=link,
        source=ctx.url,
    )


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    """Papers of any feed; an entry seen twice (same id) counts as merged, the last kept."""
    atom = str(doc.feed.get("version", "")).startswith("atom")
    channel = _date(doc.feed.feed)
    log = EntryLog()
    papers: dict[str, Paper] = {}
    for paper in made_papers(
        whole_entries(doc, log),
        log,
        lambda entry, label: _paper(entry, label, ctx, log, atom, channel),
    ):
        log.merged += paper.arxiv_id in papers
        papers[paper.arxiv_id] = paper
    announced = max((p.announced for p in papers.values()), default=None)
    return feed_result(doc, ctx, KIND, log, papers.values(), announced)

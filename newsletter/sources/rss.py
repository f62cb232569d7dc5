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
    FeedContext,
    ParsedFeed,
    bozo_problem,
    clean_abstract,
    clean_title,
    fold,
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


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    parsed = doc.feed
    atom = str(parsed.get("version", "")).startswith("atom")
    channel_date = _date(parsed.feed)
    log = EntryLog()
    papers: dict[str, Paper] = {}
    merged = 0
    for entry, label in whole_entries(doc, log):
        link = fold(entry.get("link", ""))
        ident = fold(entry.get("id", "")) or link
        if not ident:
            log.failed.append(f"{label}: no id and no link")
            continue
        title = clean_title(_text(entry.get("title_detail"), entry.get("title")), label, log)
        if not title:
            log.failed.append(f"{label} ({ident}): no title")
            continue
        date = _date(entry) or channel_date
        if date is None:
            log.failed.append(f"{label} ({ident}): no date in the entry or the channel")
            continue
        key = paper_key(ident)
        if key in papers:
            merged += 1
        summary = _text(entry.get("summary_detail"), entry.get("summary", ""))
        authors = entry_authors(entry, atom)
        tags = tuple(
            t for t in dict.fromkeys(fold(t.get("term")) for t in entry.get("tags", []) or []) if t
        )
        papers[key] = Paper(
            arxiv_id=key,
            title=title,
            abstract=clean_abstract(summary, label, log),
            authors=authors,
            announced=date,
            primary_class=tags[0] if tags else "",
            classes=tags,
            announce_type="new",
            abs_url=link,
            source=ctx.url,
        )
    announced = max((p.announced for p in papers.values()), default=None)
    return ParsedFeed(
        url=ctx.url,
        kind=KIND,
        announced=announced,
        papers=tuple(papers.values()),
        seen=len(parsed.entries),
        merged=merged,
        failed=tuple(log.failed),
        problems=bozo_problem(doc, doc.complete_entries()),
        notes=tuple(log.notes),
    )

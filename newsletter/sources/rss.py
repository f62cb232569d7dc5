"""Any RSS 2.0 or Atom feed (a blog, a conference): each entry becomes a Paper.

Entries have no arXiv id, so the identity is the entry's id or link, prefixed with
``web:`` and hashed to a stable short key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from newsletter.models import Paper
from newsletter.sources.arxiv_rss import MAX_ABSTRACT, MAX_TITLE, clean_text
from newsletter.sources.base import ParsedFeed

_TAGS = re.compile(r"<[^>]+>")


def _date(entry: Any) -> dt.date | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return dt.date(value.tm_year, value.tm_mon, value.tm_mday)
    return None


def parse(parsed: Any, url: str) -> ParsedFeed:
    papers: dict[str, Paper] = {}
    problems: list[str] = []
    feed_date: dt.date | None = None
    for index, entry in enumerate(parsed.entries):
        link = entry.get("link", "")
        ident = entry.get("id") or link
        title = clean_text(entry.get("title", ""), MAX_TITLE)
        if not ident or not title:
            problems.append(f"entry {index + 1} has no {'id' if not ident else 'title'}")
            continue
        date = _date(entry)
        if date is None:
            problems.append(f"entry {index + 1} has no date")
            continue
        feed_date = max(feed_date or date, date)
        key = "web:" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:20]
        summary = clean_text(_TAGS.sub(" ", entry.get("summary", "")), MAX_ABSTRACT)
        authors = tuple(a.get("name", "") for a in entry.get("authors", []) if a.get("name"))
        tags = tuple(t["term"] for t in entry.get("tags", []) if t.get("term"))
        papers[key] = Paper(
            arxiv_id=key,
            title=title,
            abstract=summary,
            authors=authors,
            announced=date,
            primary_class=tags[0] if tags else "",
            classes=tags,
            announce_type="new",
            abs_url=link,
            source=url,
        )
    return ParsedFeed(url, feed_date, tuple(papers.values()), 0, tuple(problems))

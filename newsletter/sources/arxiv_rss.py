"""arXiv's RSS feeds (rss.arxiv.org), recognised by their content, not their host."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import re
from typing import Any

from newsletter.models import Paper
from newsletter.sources.base import ParsedFeed

_ID = re.compile(r"(?:oai:arXiv\.org:|arxiv\.org/abs/)?(?P<id>[\w.\-/]+?)(?:v(?P<v>\d+))?$", re.I)
_PREFIX = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?\s*", re.I | re.S
)
_SPACE = re.compile(r"\s+")
MAX_TITLE = 1000
MAX_ABSTRACT = 20000
NEW_TYPES = ("new", "cross")


def is_arxiv(parsed: Any) -> bool:
    """True when the feed carries arXiv's own fields (announce type or oai ids)."""
    namespaces = " ".join(getattr(parsed, "namespaces", {}).values())
    if "arxiv.org" in namespaces:
        return True
    return any(
        "arxiv_announce_type" in e or str(e.get("id", "")).startswith("oai:arXiv.org:")
        for e in parsed.entries[:5]
    )


def clean_text(value: str, limit: int) -> str:
    """Whitespace folded to single spaces (kills CRLF tricks) and length capped."""
    text = _SPACE.sub(" ", value or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def split_id(raw: str) -> tuple[str, int]:
    match = _ID.search(raw.strip())
    if not match:
        raise ValueError(f"not an arXiv id: {raw!r}")
    return match.group("id"), int(match.group("v") or 1)


def feed_date(parsed: Any) -> dt.date | None:
    """The announcement date as the feed states it, in the feed's own time zone."""
    for source in (parsed.feed, *(parsed.entries[:1])):
        for key in ("published", "updated"):
            value = source.get(key)
            if value:
                try:
                    return email.utils.parsedate_to_datetime(value).date()
                except (TypeError, ValueError):
                    continue
    return None


def parse(parsed: Any, url: str, include_replacements: bool = False) -> ParsedFeed:
    """Papers from an already feedparser-parsed arXiv feed.

    Entries missing an id or a title are reported in ``problems`` and skipped; the
    complete ones are kept.
    """
    announced = feed_date(parsed)
    papers: dict[str, Paper] = {}
    problems: list[str] = []
    replacements = 0
    for index, entry in enumerate(parsed.entries):
        raw_id = entry.get("id") or entry.get("link") or ""
        title = clean_text(entry.get("title", ""), MAX_TITLE)
        if not raw_id or not title:
            problems.append(f"entry {index + 1} has no {'id' if not raw_id else 'title'}")
            continue
        try:
            arxiv_id, version = split_id(raw_id)
        except ValueError as exc:
            problems.append(f"entry {index + 1}: {exc}")
            continue
        summary = entry.get("summary", "")
        match = _PREFIX.match(summary)
        kind = entry.get("arxiv_announce_type") or (match.group("type") if match else "new")
        kind = kind.strip().lower()
        if kind not in NEW_TYPES and not include_replacements:
            replacements += 1
            continue
        abstract = clean_text(summary[match.end() :] if match else summary, MAX_ABSTRACT)
        classes = tuple(t["term"] for t in entry.get("tags", []) if t.get("term"))
        authors_raw = entry.get("author", "") or ""
        authors = tuple(a for a in (clean_text(x, 200) for x in authors_raw.split(",")) if a)
        entry_date = announced
        if entry.get("published"):
            with contextlib.suppress(TypeError, ValueError):
                entry_date = email.utils.parsedate_to_datetime(entry["published"]).date()
        if entry_date is None:
            problems.append(f"entry {index + 1} ({arxiv_id}) has no announcement date")
            continue
        previous = papers.get(arxiv_id)
        if previous is not None:
            classes = tuple(dict.fromkeys(previous.classes + classes))
        papers[arxiv_id] = Paper(
            arxiv_id=arxiv_id,
            version=version,
            title=title,
            abstract=abstract,
            authors=authors,
            announced=entry_date,
            primary_class=classes[0] if classes else "",
            classes=classes,
            announce_type=kind,
            abs_url=f"https://arxiv.org/abs/{arxiv_id}",
            pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
            source=url,
        )
    return ParsedFeed(url, announced, tuple(papers.values()), replacements, tuple(problems))

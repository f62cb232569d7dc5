"""What every source kind shares: the fetched document, the run's context, the result.

A source kind is a module with ``KIND`` (its name), ``recognises(doc)`` and
``parse(doc, ctx) -> ParsedFeed``. The kind is chosen by the document's content,
never by the URL's host, so a recorded feed served from anywhere is read the same.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from newsletter.models import Paper

_DROP_CONTROL = dict.fromkeys([*range(0x09), *range(0x0E, 0x20), 0x7F])
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
_CLOSED_ENTRY = re.compile(rb"</(?:[\w-]+:)?(?:item|entry)\s*>")
_HTML_START = re.compile(rb"^\s*(?:<!doctype\s+html|<html)", re.I)

#: Longer titles are cut (and the cut is reported): no real paper title comes close.
MAX_TITLE = 500
MAX_ABSTRACT = 20_000
MAX_AUTHOR = 200


@dataclass(frozen=True)
class FeedContext:
    """What a parser may need beyond the document itself."""

    url: str
    include_replacements: bool = False
    #: The date this collection run is for; used where a source states none itself.
    issue_date: dt.date | None = None


@dataclass
class Document:
    """A fetched response body; the feedparser and JSON views are computed once, lazily."""

    url: str
    content: bytes
    content_type: str = ""

    @cached_property
    def feed(self) -> Any:
        import feedparser

        # Escaping is the renderer's job; feedparser's sanitiser would alter titles.
        return feedparser.parse(self.content, sanitize_html=False)

    @cached_property
    def json(self) -> Any:
        """The decoded JSON value, or None when the body is not JSON."""
        head = self.content.lstrip()[:1]
        if head not in (b"[", b"{"):
            return None
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def looks_like_html(self) -> bool:
        return bool(_HTML_START.match(self.content[:512])) or "html" in self.content_type

    def feed_problem(self) -> str | None:
        """Why this document is not a usable RSS/Atom feed, or None when it is one."""
        if not self.content.strip():
            return "empty response body"
        parsed = self.feed
        if parsed.entries:
            return None
        version = parsed.get("version", "")
        if self.looks_like_html and not version:
            shown = self.content_type or "an HTML page"
            return f"the server sent {shown}, not an RSS or Atom feed"
        if not self.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return "not an RSS or Atom feed (the body is not XML)"
        if parsed.get("bozo"):
            return f"malformed XML with no entries ({parsed.get('bozo_exception')})"
        if not version:
            return "not an RSS or Atom feed"
        return None

    def complete_entries(self) -> int:
        """How many leading entries are whole: all of them unless the XML is broken.

        feedparser's lenient parser still yields the entry that a truncated feed cut in
        half; counting closing tags in the raw bytes tells the whole ones apart.
        """
        total = len(self.feed.entries)
        if not self.feed.get("bozo"):
            return total
        return min(total, len(_CLOSED_ENTRY.findall(self.content)))


class SourceKind(Protocol):
    """The interface each source module implements (modules satisfy protocols in mypy)."""

    KIND: str

    def recognises(self, doc: Document) -> bool: ...

    def parse(self, doc: Document, ctx: FeedContext) -> ParsedFeed: ...


@dataclass(frozen=True)
class ParsedFeed:
    """The papers of one feed, with a count of every entry that did not become one."""

    url: str
    kind: str
    announced: dt.date | None
    papers: tuple[Paper, ...]
    seen: int = 0
    skipped_replacements: int = 0
    #: Entries that repeated a paper already earlier in the same feed (merged into it).
    merged: int = 0
    #: One reason per rejected entry.
    failed: tuple[str, ...] = ()
    #: Feed-level faults (malformed XML); the complete entries were still kept.
    problems: tuple[str, ...] = ()
    #: Entries kept after cleaning (a cut title, markup kept as text).
    notes: tuple[str, ...] = ()


class EntryRejected(Exception):
    """An entry that cannot become a paper; the message is the reason, for the report."""


def bozo_problem(doc: Document, complete: int) -> tuple[str, ...]:
    """The feed-level report of broken XML whose complete entries were still read."""
    if not doc.feed.get("bozo"):
        return ()
    reason = doc.feed.get("bozo_exception")
    return (f"malformed XML ({reason}); read the {complete} complete entries before the fault",)


@dataclass
class EntryLog:
    """Collects per-entry outcomes while a parser walks a feed."""

    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Entries that repeated a paper earlier in the feed, and replacements left out.
    merged: int = 0
    skipped_replacements: int = 0


def whole_entries(doc: Document, log: EntryLog) -> Iterator[tuple[Any, str]]:
    """Each whole entry with its label (``entry N``); one a broken feed cut off is logged.

    Every parser walks its feed through this, so a truncated feed is reported the same way
    whatever its format.
    """
    complete = doc.complete_entries()
    for index, entry in enumerate(doc.feed.entries, start=1):
        label = f"entry {index}"
        if index > complete:
            log.failed.append(f"{label}: cut off (the feed is truncated)")
            continue
        yield entry, label


def made_papers(
    entries: Iterable[tuple[Any, str]], log: EntryLog, make: Callable[[Any, str], Paper]
) -> Iterator[Paper]:
    """The paper ``make`` builds of each labelled entry; one it rejects is logged instead.

    Every parser's loop: a bad entry is reported with its reason and never holds back
    the rest of the feed.
    """
    for entry, label in entries:
        try:
            paper = make(entry, label)
        except EntryRejected as exc:
            log.failed.append(str(exc))
            continue
        yield paper


def feed_result(
    doc: Document,
    ctx: FeedContext,
    kind: str,
    log: EntryLog,
    papers: Iterable[Paper],
    announced: dt.date | None,
) -> ParsedFeed:
    """The ``ParsedFeed`` of an RSS/Atom document walked by ``whole_entries``.

    Every entry of the document counts as seen, and a broken document's fault is
    reported beside its papers.
    """
    return ParsedFeed(
        url=ctx.url,
        kind=kind,
        announced=announced,
        papers=tuple(papers),
        seen=len(doc.feed.entries),
        failed=tuple(log.failed),
        problems=bozo_problem(doc, doc.complete_entries()),
        notes=tuple(log.notes),
        merged=log.merged,
        skipped_replacements=log.skipped_replacements,
    )


def fold(value: Any) -> str:
    """Whitespace (CR/LF included) folded to single spaces, control characters removed."""
    if not isinstance(value, str):
        return ""
    # str.split() is several times faster than a regex on 2,000-item feeds.
    return " ".join(value.translate(_DROP_CONTROL).split())


def cap(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters with an ellipsis; True when it was cut."""
    if len(text) <= limit:
        return text, False
    return text[: limit - 1].rstrip() + "…", True


def has_markup(text: str) -> bool:
    return bool(_MARKUP.search(text))


def clean_title(raw: Any, label: str, log: EntryLog) -> str:
    """A display title: folded, capped, markup kept as text (escaped at render time)."""
    title = fold(raw)
    if isinstance(raw, str) and ("\r" in raw.strip() or "\n" in raw.strip()):
        log.notes.append(f"{label}: line breaks in the title folded into one line")
    if has_markup(title):
        log.notes.append(f"{label}: title contains markup; kept as plain text")
    title, cut = cap(title, MAX_TITLE)
    if cut:
        log.notes.append(f"{label}: title of {len(fold(raw))} characters cut to {MAX_TITLE}")
    return title


def clean_abstract(raw: Any, label: str, log: EntryLog) -> str:
    abstract, cut = cap(fold(raw), MAX_ABSTRACT)
    if cut:
        log.notes.append(f"{label}: abstract cut to {MAX_ABSTRACT} characters")
    return abstract


def merge_classes(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """Union in first-seen order (the primary class stays first)."""
    return tuple(dict.fromkeys(first + second))

"""arXiv's RSS feeds (rss.arxiv.org), recognised by their content, not their host.

The real format: ``<guid>`` is ``oai:arXiv.org:<id>`` (version suffix present or
not), ``<arxiv:announce_type>`` is new, cross, replace or replace-cross, the
description starts ``arXiv:<id>v<N> Announce Type: <type> \\nAbstract: ...``, the
authors are one comma-separated ``<dc:creator>`` and the first ``<category>`` is the
primary class. An empty channel (weekends, holidays) still states the date.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import functools
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
    cap,
    clean_abstract,
    clean_title,
    feed_result,
    fold,
    made_papers,
    merge_classes,
    whole_entries,
)

KIND = "arxiv"
ARXIV_NAMESPACE = "arxiv.org/schemas/atom"
NEW_TYPES = ("new", "cross")
REPLACEMENT_TYPES = ("replace", "replace-cross")
#: Lower sorts first when the same paper comes with two announce types in one day.
TYPE_RANK = {"new": 0, "cross": 1, "replace": 2, "replace-cross": 3}

_ID = re.compile(
    r"^(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?$",
)
_ID_PREFIXES = re.compile(
    r"^(?:oai:arxiv\.org:|https?://(?:www\.|export\.)?arxiv\.org/abs/|arxiv:)", re.I
)
_PREFIX = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?\s*", re.I
)


def split_id(raw: str) -> tuple[str, int | None]:
    """``oai:arXiv.org:2411.13676v2`` -> (``2411.13676``, 2); the version may be absent."""
    text = _ID_PREFIXES.sub("", raw.strip())
    match = _ID.match(text)
    if not match:
        raise ValueError(f"{raw!r} is not an arXiv id")
    version = match.group("v")
    return match.group("id"), int(version) if version else None


def entry_id(raw: str, label: str) -> tuple[str, int | None]:
    """``split_id`` for a parser: an entry whose id is not arXiv's is rejected, labelled."""
    try:
        return split_id(raw)
    except ValueError as exc:
        raise EntryRejected(f"{label}: {exc}") from exc


def recognises(doc: Document) -> bool:
    """A usable feed carrying arXiv's namespace, announce types or oai ids."""
    if doc.feed_problem() is not None:
        return False
    parsed = doc.feed
    if any(ARXIV_NAMESPACE in uri for uri in parsed.get("namespaces", {}).values()):
        return True
    return any(
        "arxiv_announce_type" in e or str(e.get("id", "")).lower().startswith("oai:arxiv.org:")
        for e in parsed.entries[:5]
    )


@functools.lru_cache(maxsize=64)
def _rfc822_date(value: str) -> dt.date | None:
    """Cached: every item of a day's feed carries the same pubDate string."""
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


def stated_date(source: Any) -> dt.date | None:
    """The date a channel or item states, in its own time zone (arXiv's is US Eastern)."""
    for key in ("published", "updated"):
        value = source.get(key)
        if not value or not isinstance(value, str):
            continue
        date = _rfc822_date(value)
        if date is not None:
            return date
        parsed = source.get(f"{key}_parsed")
        if parsed:
            return dt.date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
    return None


def _entry(
    entry: Any, label: str, announced: dt.date | None, ctx: FeedContext, log: EntryLog
) -> Paper:
    raw_id = entry.get("id") or entry.get("link") or ""
    summary = entry.get("summary", "") or ""
    prefix = _PREFIX.match(summary)
    if not raw_id and prefix:
        raw_id = prefix.group("id")
    if not raw_id:
        title = cap(fold(entry.get("title", "")), 60)[0]
        raise EntryRejected(f"{label}{f' ({title!r})' if title else ''}: no id")
    arxiv_id, version = entry_id(raw_id, label)
    label = f"{label} ({arxiv_id})"
    if version is None and prefix:
        with contextlib.suppress(ValueError):
            version = split_id(prefix.group("id"))[1]
    title = clean_title(entry.get("title", ""), label, log)
    if not title:
        raise EntryRejected(f"{label}: no title")
    abstract = clean_abstract(summary[prefix.end() :] if prefix else summary, label, log)
    if not abstract:
        raise EntryRejected(f"{label}: no abstract")
    kind = fold(entry.get("arxiv_announce_type") or (prefix.group("type") if prefix else "new"))
    kind = kind.lower()
    if kind not in TYPE_RANK:
        log.notes.append(f"{label}: unknown announce type {kind!r}; treated as new")
        kind = "new"
    date = stated_date(entry) or announced
    if date is None:
        raise EntryRejected(f"{label}: no announcement date in the item or the channel")
    classes = tuple(dict.fromkeys(fold(t.get("term")) for t in entry.get("tags", []) or []))
    classes = tuple(c for c in classes if c)
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        abstract=abstract,
        authors=entry_authors(entry),
        announced=date,
        primary_class=classes[0] if classes else "",
        classes=classes,
        announce_type=kind,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        source=ctx.url,
    )


def merge(first: Paper, second: Paper) -> Paper:
    """The same paper twice (cross-lists): one paper with both class lists.

    The announcement that ranks first (new before cross) keeps its primary class.
    """
    lead, other = sorted((first, second), key=lambda p: TYPE_RANK.get(p.announce_type, 9))
    classes = merge_classes(lead.classes, other.classes)
    return dataclasses.replace(
        lead,
        classes=classes,
        primary_class=lead.primary_class or (classes[0] if classes else ""),
        version=max(first.version, second.version),
    )


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    """Papers from an arXiv feed; incomplete entries are reported and the rest kept.

    ``new`` and ``cross`` entries are kept; ``replace`` and ``replace-cross`` only when
    ``ctx.include_replacements`` (they keep their announce type so the e-mail can
    mark them as updated).
    """
    parsed = doc.feed
    announced = stated_date(parsed.feed)
    if announced is None and not parsed.entries:
        announced = ctx.issue_date
    log = EntryLog()
    papers: dict[str, Paper] = {}
    for paper in made_papers(
        whole_entries(doc, log),
        log,
        lambda entry, label: _entry(entry, label, announced, ctx, log),
    ):
        if paper.announce_type in REPLACEMENT_TYPES and not ctx.include_replacements:
            log.skipped_replacements += 1
            continue
        previous = papers.get(paper.arxiv_id)
        if previous is not None:
            log.merged += 1
            paper = merge(previous, paper)
        papers[paper.arxiv_id] = paper
    if announced is None and papers:
        announced = max(p.announced for p in papers.values())
    return feed_result(doc, ctx, KIND, log, papers.values(), announced)

"""Collect every configured source: fetch, parse, store, and count what happened.

One failing source never stops the others; its URL and reason go in the report.
Papers are stored per source as soon as it is parsed, so a crash loses nothing and
a re-run inserts nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from newsletter import store
from newsletter.db import FeedStateRow, session_scope, utcnow
from newsletter.errors import SourceError
from newsletter.sources import arxiv_rss
from newsletter.sources.base import ParsedFeed
from newsletter.sources.fetch import Fetched, Fetcher

log = logging.getLogger(__name__)


@dataclass
class SourceStats:
    url: str
    seen: int = 0
    new: int = 0
    duplicate: int = 0
    replacements: int = 0
    failed: int = 0
    not_modified: bool = False
    announced: dt.date | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class CollectReport:
    sources: list[SourceStats]

    @property
    def ok(self) -> bool:
        return all(not s.error for s in self.sources)

    @property
    def new(self) -> int:
        return sum(s.new for s in self.sources)

    @property
    def dates(self) -> set[dt.date]:
        return {s.announced for s in self.sources if s.announced}


def parse_feed(content: bytes, url: str, include_replacements: bool) -> ParsedFeed:
    """Dispatch on the feed's content: arXiv's fields mean arXiv, whatever the host."""
    import feedparser

    parsed = feedparser.parse(content, sanitize_html=False)
    if parsed.bozo and not parsed.entries:
        reason = getattr(parsed, "bozo_exception", "malformed feed")
        raise SourceError(url, f"not a readable feed ({reason})")
    if not parsed.entries and not parsed.feed:
        raise SourceError(url, "not a feed (no channel and no entries)")
    if arxiv_rss.is_arxiv(parsed) or not parsed.entries:
        return arxiv_rss.parse(parsed, url, include_replacements)
    from newsletter.sources import rss

    return rss.parse(parsed, url)


def _load_state(engine: Engine, url: str) -> tuple[str, str]:
    with session_scope(engine) as session:
        row = session.get(FeedStateRow, url)
        return (row.etag, row.last_modified) if row else ("", "")


def _save_state(engine: Engine, fetched: Fetched) -> None:
    with session_scope(engine) as session:
        row = session.get(FeedStateRow, fetched.url) or FeedStateRow(url=fetched.url)
        row.etag, row.last_modified, row.fetched_at = fetched.etag, fetched.last_modified, utcnow()
        session.add(row)


def collect_one(
    engine: Engine, fetcher: Fetcher, url: str, include_replacements: bool = False
) -> SourceStats:
    stats = SourceStats(url)
    try:
        etag, modified = _load_state(engine, url)
        fetched = fetcher.fetch(url, etag, modified)
        if fetched.not_modified:
            stats.not_modified = True
            log.info("%s: not modified since the last fetch", url)
            return stats
        feed = parse_feed(fetched.content, url, include_replacements)
    except SourceError as exc:
        stats.error = exc.reason
        stats.failed = 1
        log.warning("source failed: %s", exc)
        return stats
    stats.announced = feed.announced
    stats.seen = len(feed.papers) + feed.skipped_replacements + len(feed.problems)
    stats.replacements = feed.skipped_replacements
    stats.failed = len(feed.problems)
    stats.problems = list(feed.problems)
    stats.new = store.upsert_papers(engine, feed.papers)
    stats.duplicate = len(feed.papers) - stats.new
    _save_state(engine, fetched)
    for problem in feed.problems:
        log.warning("%s: %s", url, problem)
    return stats


def collect_all(
    engine: Engine,
    urls: Sequence[str],
    *,
    include_replacements: bool = False,
    fetcher: Fetcher | None = None,
    on_source: Callable[[SourceStats], None] | None = None,
) -> CollectReport:
    own = fetcher is None
    fetcher = fetcher or Fetcher()
    report = CollectReport([])
    try:
        for url in urls:
            stats = collect_one(engine, fetcher, url, include_replacements)
            report.sources.append(stats)
            if on_source:
                on_source(stats)
    finally:
        if own:
            fetcher.close()
    return report

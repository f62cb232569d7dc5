"""Collect every configured source: fetch, parse, store, and count what happened.

One failing source never stops the others; its URL and reason go in the report.
Papers are stored per source as soon as it is parsed, so a crash loses nothing and
a re-run inserts nothing twice. ETag/Last-Modified are kept per URL, so an
unchanged feed costs one 304.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from newsletter.db import FeedStateRow, session_scope, utcnow
from newsletter.errors import DatabaseError, SourceError
from newsletter.sources import arxiv_api, arxiv_rdf, arxiv_rss, hf_daily, rss
from newsletter.sources.base import Document, FeedContext, ParsedFeed, SourceKind
from newsletter.sources.dedup import store_papers
from newsletter.sources.fetch import Fetched, Fetcher, host_key

log = logging.getLogger(__name__)

DATE_PLACEHOLDER = "{date}"
#: Hosts fetched at the same time; more sources than this wait for a free worker.
MAX_HOSTS_AT_ONCE = 8


@dataclass
class SourceStats:
    """What happened to one source; ``seen = new + duplicate + replacements + failed``."""

    url: str
    kind: str = ""
    seen: int = 0
    new: int = 0
    duplicate: int = 0
    replacements: int = 0
    failed: int = 0
    not_modified: bool = False
    announced: dt.date | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.error or self.failed or self.problems)

    @property
    def status(self) -> str:
        if self.error:
            return f"FAILED ({self.error})"
        if self.failed and self.failed == self.seen:
            return "refused (no item was usable; the reasons follow)"
        if not self.ok:
            return "partly failed"
        return "not modified (HTTP 304)" if self.not_modified else "ok"

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        announced = f", announced {self.announced}" if self.announced else ""
        return (
            f"{self.url}: {self.status}; seen {self.seen}, new {self.new}, "
            f"duplicate {self.duplicate}, skipped as replacement {self.replacements}, "
            f"failed {self.failed}{announced}"
        )


@dataclass
class CollectReport:
    sources: list[SourceStats]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources)

    @property
    def new(self) -> int:
        return sum(s.new for s in self.sources)

    @property
    def dates(self) -> set[dt.date]:
        return {s.announced for s in self.sources if s.announced}


class CollectProgress(Protocol):
    """Hooks for a progress display (see ``sources.progress``); all optional to act on."""

    def started(self, url: str) -> None: ...

    def parsed(self, url: str, total: int) -> None: ...

    def stored(self, url: str, count: int) -> None: ...

    def finished(self, stats: SourceStats) -> None: ...


#: Kinds whose date is arXiv's announcement day (an API answer's dates are submissions).
ANNOUNCING_KINDS = frozenset((arxiv_rss.KIND, arxiv_rdf.KIND))

#: In order: JSON first, then arXiv's formats (also valid RSS/Atom; the API's Atom
#: carries the same namespace as the RSS, so it is tried first), then any RSS/Atom.
SOURCE_KINDS: tuple[SourceKind, ...] = (hf_daily, arxiv_api, arxiv_rdf, arxiv_rss, rss)


def parse_document(doc: Document, ctx: FeedContext) -> ParsedFeed:
    """Dispatch on content: the first kind that recognises the document parses it."""
    for kind in SOURCE_KINDS:
        if kind.recognises(doc):
            return kind.parse(doc, ctx)
    reason = hf_daily.json_problem(doc) or doc.feed_problem() or "unrecognised document"
    raise SourceError(ctx.url, reason)


def parse_feed(
    content: bytes,
    url: str,
    include_replacements: bool = False,
    issue_date: dt.date | None = None,
    content_type: str = "",
) -> ParsedFeed:
    """Parse a feed body already in hand (the demo's bundled sample, the benchmark)."""
    return parse_document(
        Document(url, content, content_type), FeedContext(url, include_replacements, issue_date)
    )


def expand_url(url: str, date: dt.date) -> str:
    """``{date}`` in a feed URL becomes the issue date (e.g. Hugging Face daily papers)."""
    return url.replace(DATE_PLACEHOLDER, date.isoformat())


def _load_state(engine: Engine, url: str) -> tuple[str, str]:
    with session_scope(engine) as session:
        row = session.get(FeedStateRow, url)
        return (row.etag, row.last_modified) if row else ("", "")


def _save_state(engine: Engine, fetched: Fetched) -> None:
    with session_scope(engine) as session:
        row = session.get(FeedStateRow, fetched.url) or FeedStateRow(url=fetched.url)
        row.etag, row.last_modified, row.fetched_at = fetched.etag, fetched.last_modified, utcnow()
        session.add(row)


@dataclass
class _Outcome:
    """What a worker thread brings back for one source: a parsed feed, a 304, or a reason."""

    index: int
    ctx: FeedContext
    fetched: Fetched | None = None
    feed: ParsedFeed | None = None
    error: str = ""


def _fetch_and_parse(fetcher: Fetcher, ctx: FeedContext, state: tuple[str, str]) -> _Outcome:
    """Network and parsing only (no database): safe to run in a worker thread."""
    outcome = _Outcome(-1, ctx)
    try:
        outcome.fetched = fetcher.fetch(ctx.url, *state)
        if not outcome.fetched.not_modified:
            doc = Document(ctx.url, outcome.fetched.content, outcome.fetched.content_type)
            outcome.feed = parse_document(doc, ctx)
    except SourceError as exc:
        outcome.error = exc.reason
        log.warning("source failed: %s", exc)
    except Exception as exc:
        # A parser bug on one odd feed must not cost the other sources their papers.
        outcome.error = f"unexpected {type(exc).__name__}: {exc}"
        log.exception("source failed unexpectedly: %s", ctx.url)
    return outcome


def _settle(engine: Engine, outcome: _Outcome, progress: CollectProgress | None) -> SourceStats:
    """Store what one source brought (in the calling thread); every failure ends up in the stats."""
    stats = SourceStats(outcome.ctx.url)
    if outcome.error:
        stats.error = outcome.error
    elif outcome.feed is None:
        stats.not_modified = True
        log.info("%s: not modified since the last fetch", outcome.ctx.url)
    else:
        _store(engine, outcome.feed, stats, progress)
        assert outcome.fetched is not None
        _save_state(engine, outcome.fetched)
    if progress:
        progress.finished(stats)
    return stats


def collect_sources(
    engine: Engine,
    fetcher: Fetcher,
    contexts: Sequence[FeedContext],
    progress: CollectProgress | None = None,
) -> list[SourceStats]:
    """Fetch ``contexts`` concurrently, one thread per host, and store each as it arrives.

    Sources on one host are fetched one after the other (arXiv's pacing is kept by the
    fetcher's shared pacer); a source that hangs delays only its own host's queue, by
    at most the fetcher's deadline. Storing happens in this thread, one source at a
    time, so the database sees no concurrent writers. Stats come back in input order.
    """
    groups: dict[str, list[int]] = {}
    for index, ctx in enumerate(contexts):
        groups.setdefault(host_key(ctx.url), []).append(index)
    states = [_load_state(engine, ctx.url) for ctx in contexts]
    results: queue.Queue[_Outcome] = queue.Queue()

    def work(indexes: list[int]) -> None:
        for index in indexes:
            outcome = _fetch_and_parse(fetcher, contexts[index], states[index])
            outcome.index = index
            results.put(outcome)

    for ctx in contexts:
        if progress:
            progress.started(ctx.url)
    stats: dict[int, SourceStats] = {}
    workers = min(MAX_HOSTS_AT_ONCE, len(groups)) or 1
    with ThreadPoolExecutor(workers, thread_name_prefix="collect") as pool:
        futures = [pool.submit(work, indexes) for indexes in groups.values()]
        for _ in contexts:
            outcome = results.get()
            stats[outcome.index] = _settle(engine, outcome, progress)
        for future in futures:
            future.result()
    return [stats[index] for index in range(len(contexts))]


def collect_one(
    engine: Engine,
    fetcher: Fetcher,
    ctx: FeedContext,
    progress: CollectProgress | None = None,
) -> SourceStats:
    """Fetch, parse and store one source; every failure ends up in the stats."""
    return collect_sources(engine, fetcher, [ctx], progress)[0]


def _store(
    engine: Engine, feed: ParsedFeed, stats: SourceStats, progress: CollectProgress | None
) -> None:
    stats.kind = feed.kind
    stats.announced = feed.announced
    stats.seen = feed.seen
    stats.replacements = feed.skipped_replacements
    stats.failed = len(feed.failed)
    stats.problems = [*feed.problems, *feed.failed]
    stats.notes = list(feed.notes)
    if progress:
        progress.parsed(feed.url, len(feed.papers))
    on_chunk = (lambda n: progress.stored(feed.url, n)) if progress else None
    try:
        stored = store_papers(engine, feed.papers, on_chunk)
    except OperationalError as exc:
        raise DatabaseError(f"database error: {exc.orig}; is the database reachable?") from exc
    stats.new = stored.new
    stats.duplicate = stored.duplicate + feed.merged
    for problem in stats.problems:
        log.warning("%s: %s", feed.url, problem)
    for note in feed.notes:
        log.info("%s: %s", feed.url, note)
    if feed.seen == 0:
        log.info("%s: the feed is empty (announced %s)", feed.url, feed.announced or "no date")


def _templated_date(
    run_date: dt.date | None, stats: Sequence[SourceStats], today: dt.date
) -> dt.date:
    """The date for ``{date}`` URLs: the requested one, else arXiv's announcement of this
    run (current or old RSS format), else today."""
    if run_date is not None:
        return run_date
    arxiv_dates = [s.announced for s in stats if s.kind in ANNOUNCING_KINDS and s.announced]
    return max(arxiv_dates, default=today)


def collect_all(
    engine: Engine,
    urls: Sequence[str],
    *,
    include_replacements: bool = False,
    fetcher: Fetcher | None = None,
    progress: CollectProgress | None = None,
    run_date: dt.date | None = None,
    today: dt.date | None = None,
) -> CollectReport:
    """Collect ``urls``, those with ``{date}`` last (they need the issue date).

    Sources on different hosts are fetched concurrently; the report keeps ``urls``' order.

    ``run_date`` is the date asked for (``--date``); ``today`` the local date, used when
    neither it nor an arXiv feed gives one.
    """
    own = fetcher is None
    active = fetcher or Fetcher()
    report = CollectReport([])
    plain = [u for u in urls if DATE_PLACEHOLDER not in u]
    templated = [u for u in urls if DATE_PLACEHOLDER in u]
    try:
        contexts = [FeedContext(url, include_replacements, run_date or today) for url in plain]
        report.sources.extend(collect_sources(engine, active, contexts, progress))
        if templated:
            date = _templated_date(run_date, report.sources, today or dt.date.today())
            contexts = [
                FeedContext(expand_url(url, date), include_replacements, date) for url in templated
            ]
            report.sources.extend(collect_sources(engine, active, contexts, progress))
    finally:
        if own:
            active.close()
    return report

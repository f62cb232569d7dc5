"""Who gets which rendering of an issue, streamed in batches for lists of a million.

The active readers are read in keyset pages (``subscribers.recipients``); each page
is checked against the ledger (``delivery.ledger.settled_among``) and every reader
is routed to the view they get (their categories that have papers today, and their
language). A view's readers leave as soon as a batch of them is full, so memory
holds one page plus one part-filled batch per view, never the list: the number of
views is small (category sets x languages), the number of readers is not.

Weekly readers are streamed the same way: for each page, the ledger is asked once
when its weekly readers were last mailed (``ledger.last_mailed``); those due today
get the week's digest, which is built when the first of them turns up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from newsletter import weekly
from newsletter.app import Services
from newsletter.delivery import ledger
from newsletter.digest import build_weekly_digest
from newsletter.models import Digest, ReaderView
from newsletter.statuses import Cadence
from subscribers import recipients

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
#: Readers as the dispatcher takes them: (subscriber id, address).
Readers = list[tuple[int, str]]


@dataclass
class Counts:
    """What the stream saw besides the readers it yielded (set when it is exhausted)."""

    already: int = 0
    skipped: int = 0
    views: set[Hashable] = field(default_factory=set)


@dataclass
class _Buffers(Generic[K]):
    """Part-filled batches per key; a batch leaves as soon as it holds ``size`` readers."""

    size: int
    held: dict[K, Readers] = field(default_factory=dict)

    def add(self, key: K, reader: tuple[int, str]) -> Readers | None:
        batch = self.held.setdefault(key, [])
        batch.append(reader)
        if len(batch) >= self.size:
            return self.held.pop(key)
        return None

    def rest(self) -> Iterator[tuple[K, Readers]]:
        while self.held:
            key = next(iter(self.held))
            yield key, self.held.pop(key)


def _pages(
    svc: Services, issue_id: int, retry: Sequence[str]
) -> Iterator[tuple[list[recipients.Recipient], set[int]]]:
    """Pages of active readers with the ids of those the ledger already settled."""
    for page in recipients.recipient_pages(svc.engine):
        ids = [r.subscriber_id for r in page]
        yield page, ledger.settled_among(svc.engine, issue_id, ids, retry)


class _Views:
    """Each (categories, language) pair's view of one digest, worked out once."""

    def __init__(self, svc: Services, digest: Digest | None) -> None:
        self.svc = svc
        self.available = set(digest.slugs) if digest else set()
        self.known: dict[tuple[tuple[str, ...], str], ReaderView | None] = {}

    def of(self, reader: recipients.Recipient) -> ReaderView | None:
        """The reader's view, or None when their categories have no paper in the digest."""
        key = (reader.categories, reader.language)
        if key not in self.known:
            chosen = tuple(s for s in reader.categories if s in self.available)
            order = self.svc.taxonomy.order
            self.known[key] = ReaderView(order(chosen), reader.language) if chosen else None
        return self.known[key]


def _due_weekly(
    svc: Services, date: dt.date, page: Sequence[recipients.Recipient], settled: set[int]
) -> set[int]:
    """The weekly readers of ``page`` not yet settled who are due on ``date`` (one query)."""
    waiting = [r for r in page if r.cadence == Cadence.WEEKLY and r.subscriber_id not in settled]
    if not waiting:
        return set()
    last = ledger.last_mailed(svc.engine, (r.subscriber_id for r in waiting), date)
    return {
        r.subscriber_id
        for r in waiting
        if weekly.is_due(date, r.weekday, last.get(r.subscriber_id))
    }


def reader_batches(
    svc: Services,
    digest: Digest,
    issue_id: int,
    retry: Sequence[str],
    counts: Counts,
    size: int,
    on_skip: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, ReaderView, Readers]]:
    """("daily" or "weekly", view, readers) batches of at most ``size`` still to mail.

    Daily readers get the issue of ``digest``; weekly readers due on its date get the
    weekly digest (see ``newsletter.weekly``). ``counts`` receives the readers skipped
    (suppressed, no paper in their categories, weekly readers not due) and those the
    ledger already settled; ``on_skip`` hears of each of them as they pass.
    """
    daily = _Views(svc, digest)
    week: _Views | None = None  # built when the first weekly reader is due
    buffers: _Buffers[tuple[str, ReaderView]] = _Buffers(size)
    no_paper = not_today = 0
    for page, settled in _pages(svc, issue_id, retry):
        due = _due_weekly(svc, digest.date, page, settled)
        passed = 0
        for reader in page:
            sid = reader.subscriber_id
            if reader.cadence == Cadence.WEEKLY:
                kind, view = "weekly", None
                if sid in settled:
                    counts.already += 1
                elif sid not in due:
                    not_today += 1
                else:
                    if week is None:
                        week = _Views(svc, build_weekly_digest(svc, digest.date))
                    view = week.of(reader)
                    if view is None:
                        no_paper += 1
            else:
                kind, view = "daily", daily.of(reader)
                if view is None:
                    no_paper += 1
                elif sid in settled:
                    counts.already += 1
                    view = None
            if view is None:
                passed += 1
                continue
            counts.views.add((kind, view))
            full = buffers.add((kind, view), (sid, reader.email))
            if full is not None:
                yield kind, view, full
        if on_skip and passed:
            on_skip(passed)
    for (kind, view), rest in buffers.rest():
        yield kind, view, rest
    if no_paper:
        log.info("%d readers have no paper in their categories on %s", no_paper, digest.date)
    if not_today:
        log.info("%d weekly readers are not due on %s (not their day)", not_today, digest.date)
    counts.skipped = no_paper + not_today + recipients.count_not_mailable(svc.engine)


def batches_by_language(
    svc: Services, issue_id: int, retry: Sequence[str], counts: Counts, size: int
) -> Iterator[tuple[str, Readers]]:
    """Daily readers not yet settled, in batches of one language (the empty-day note)."""
    buffers: _Buffers[str] = _Buffers(size)
    for page, settled in _pages(svc, issue_id, retry):
        for reader in page:
            # A weekly reader's digest comes on an announcement day.
            if reader.cadence != Cadence.DAILY:
                continue
            if reader.subscriber_id in settled:
                counts.already += 1
                continue
            counts.views.add(reader.language)
            full = buffers.add(reader.language, (reader.subscriber_id, reader.email))
            if full is not None:
                yield reader.language, full
    yield from buffers.rest()

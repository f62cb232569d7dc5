"""Who gets which rendering of an issue, streamed in batches for lists of a million.

The active readers are read in keyset pages (``subscribers.recipients``); each page
is checked against the ledger (``delivery.ledger.settled_among``) and every reader
is routed to the view they get (their categories that have papers today, and their
language). A view's readers leave as soon as a batch of them is full, so memory
holds one page plus one part-filled batch per view, never the list: the number of
views is small (category sets x languages), the number of readers is not.

Weekly readers due today are gathered apart (the week's digest and who is due need
the ledger's last mail per reader); a list of weekly readers is held whole.
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
    available = set(digest.slugs)
    views: dict[tuple[tuple[str, ...], str], ReaderView | None] = {}
    buffers: _Buffers[ReaderView] = _Buffers(size)
    weekly_readers: list[recipients.Recipient] = []
    weekly_settled: set[int] = set()
    no_paper = 0
    for page, settled in _pages(svc, issue_id, retry):
        passed = 0
        for reader in page:
            if reader.cadence == Cadence.WEEKLY:
                weekly_readers.append(reader)
                if reader.subscriber_id in settled:
                    weekly_settled.add(reader.subscriber_id)
                continue
            key = (reader.categories, reader.language)
            if key not in views:
                chosen = tuple(s for s in reader.categories if s in available)
                views[key] = (
                    ReaderView(svc.taxonomy.order(chosen), reader.language) if chosen else None
                )
            view = views[key]
            if view is None:
                no_paper += 1
                passed += 1
            elif reader.subscriber_id in settled:
                counts.already += 1
                passed += 1
            else:
                counts.views.add(("daily", view))
                full = buffers.add(view, (reader.subscriber_id, reader.email))
                if full is not None:
                    yield "daily", view, full
        if on_skip and passed:
            on_skip(passed)
    for view, rest in buffers.rest():
        yield "daily", view, rest
    if no_paper:
        log.info("%d readers have no paper in their categories on %s", no_paper, digest.date)
    groups, weekly_skipped = _weekly_groups(
        svc, digest.date, weekly_readers, weekly_settled, counts
    )
    if on_skip:
        on_skip(weekly_skipped + len(weekly_settled))
    for view, readers in groups.items():
        counts.views.add(("weekly", view))
        yield "weekly", view, readers
    counts.skipped = no_paper + weekly_skipped + recipients.count_not_mailable(svc.engine)


def _weekly_groups(
    svc: Services,
    date: dt.date,
    readers: Sequence[recipients.Recipient],
    settled: set[int],
    counts: Counts,
) -> tuple[dict[ReaderView, Readers], int]:
    """Weekly readers due on ``date``, grouped by their view of the week's digest, and
    how many were skipped (not their day, or no paper this week in their categories)."""
    last = ledger.last_mailed(svc.engine, (r.subscriber_id for r in readers), date)
    due: list[recipients.Recipient] = []
    not_today = 0
    for reader in readers:
        if reader.subscriber_id in settled:
            counts.already += 1
        elif weekly.is_due(date, reader.weekday, last.get(reader.subscriber_id)):
            due.append(reader)
        else:
            not_today += 1
    if not_today:
        log.info("%d weekly readers are not due on %s (not their day)", not_today, date)
    week = build_weekly_digest(svc, date) if due else None
    if week is None:
        return {}, not_today
    available = set(week.slugs)
    groups: dict[ReaderView, Readers] = {}
    no_paper = 0
    for reader in due:
        chosen = tuple(s for s in reader.categories if s in available)
        if not chosen:
            no_paper += 1
            continue
        view = ReaderView(svc.taxonomy.order(chosen), reader.language)
        groups.setdefault(view, []).append((reader.subscriber_id, reader.email))
    return groups, not_today + no_paper


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

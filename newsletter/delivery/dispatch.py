"""Mail renderings to their readers: claim, send, record, several batches in flight.

The order inside a batch is what makes a crash harmless: the readers are claimed
in the ledger (committed) before the backend is called, and the backend's answer
is recorded right after. A kill between the two leaves the batch ``sending``,
which the next run reports as ``unknown`` instead of mailing it again. Up to
NEWSLETTER_SEND_CONCURRENCY batches are with the provider at once (a real answer
takes a few hundred milliseconds), so a kill leaves at most that many batches unknown.

The caller's thread prepares each batch (envelopes with signed links), waits for a
free slot and the send rate, and hands the batch to a worker thread, which claims,
sends and records it. So the ledger's round trips of several batches overlap with
each other, with the provider's answers and with the next batch's preparation.

The dispatcher speaks to the ledger through the ``Ledger`` protocol (claim, record,
beat), as listmonk's manager takes a ``DataSource``: ``delivery.ledger.RunLedger``
is the SQL one, and a test may hand it a list.

The pace is kept with the ``limits`` library (NEWSLETTER_SEND_RATE), and the run
stops with ``FailureBudgetExceeded`` when too many messages fail permanently
(NEWSLETTER_SEND_MAX_FAILURE_RATIO): a bad sender address or a blocked domain
should cost one batch, not the whole list.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.errors import DeliveryError, FailureBudgetExceeded
from newsletter.models import RenderedIssue, SendResult
from newsletter.statuses import SendOutcome

log = logging.getLogger(__name__)

#: The failure ratio is judged only once this many messages were attempted in the run,
#: so that one bad address among the first three readers does not stop a send.
BUDGET_MIN_SAMPLE = 20
_ADDRESS = re.compile(r"[^\s<>\"']+@[^\s<>\"']+")


class Ledger(Protocol):
    """What the dispatcher needs of the delivery ledger, for one issue and one send run.

    Its methods are called from the worker threads, several at once."""

    def claim(self, readers: Sequence[tuple[int, str]]) -> set[int]:
        """Claim (subscriber_id, categories) pairs; returns the ids now owned by this run."""
        ...

    def record(self, outcomes: Sequence[tuple[int, SendResult]]) -> None:
        """Store the backend's answer for readers this run claimed."""
        ...

    def beat(self) -> None:
        """Show that the run is alive (called after every piece sent)."""
        ...


class Progress(Protocol):
    """What the sender tells a progress display (the CLI's bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


@dataclass
class Tally:
    """What happened to the readers this run handled."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    unknown: int = 0
    already: int = 0

    def add(self, results: Sequence[SendResult]) -> None:
        for result in results:
            if result.status == SendOutcome.SENT:
                self.sent += 1
            elif result.status == SendOutcome.REJECTED:
                self.failed += 1
            elif result.status == SendOutcome.UNKNOWN:
                self.unknown += 1
            else:
                self.deferred += 1


class Throttle:
    """At most ``rate`` messages per second, kept by a moving window from ``limits``.

    A batch is never larger than one window's worth (``batch_size``), and the
    dispatcher asks ``admit`` before it claims the batch: a reader waiting on the
    limiter is not yet claimed, so a kill while waiting leaves nobody ``unknown``.
    """

    def __init__(self, rate: float | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self.piece: int | None = None
        if not rate:
            return
        if rate >= 1:
            amount, seconds = round(rate), 1
        else:
            amount, seconds = 1, max(1, round(1 / rate))
        self.piece = max(1, amount)
        self._item = RateLimitItemPerSecond(self.piece, seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def batch_size(self, largest: int) -> int:
        """Readers per batch: the backend's ``largest``, cut to one window of the rate."""
        return max(1, min(largest, self.piece) if self.piece else largest)

    def admit(self, count: int) -> None:
        """Wait until ``count`` (at most ``batch_size``) more messages fit in the rate."""
        if self.piece is None:
            return
        cost = max(1, min(count, self.piece))
        while not self._limiter.hit(self._item, "send", cost=cost):
            reset = self._limiter.get_window_stats(self._item, "send").reset_time
            self._sleep(max(0.005, reset - time.time()))


class FailureBudget:
    """Stops the run once permanent failures exceed ``ratio`` of the messages attempted."""

    def __init__(self, ratio: float, min_sample: int = BUDGET_MIN_SAMPLE) -> None:
        self.ratio = ratio
        self.min_sample = min_sample
        self.attempted = 0
        self.failed = 0
        self.first_reason = ""

    def add(self, results: Sequence[SendResult]) -> None:
        self.attempted += len(results)
        for result in results:
            if result.status == SendOutcome.REJECTED:
                self.failed += 1
                # Server replies often quote the address; the message is logged, so drop it.
                self.first_reason = self.first_reason or _ADDRESS.sub("<address>", result.error)
        if self.attempted >= self.min_sample and self.failed > self.ratio * self.attempted:
            raise FailureBudgetExceeded(
                f"{self.failed} of {self.attempted} messages were rejected "
                f"permanently (over NEWSLETTER_SEND_MAX_FAILURE_RATIO={self.ratio:g}); "
                f"first reason: {self.first_reason or 'none given'}; fix the cause and run "
                "`newsletter send` again: readers not yet mailed are still waiting",
                permanent=True,
            )


#: The envelopes of one chunk of (subscriber id, address) readers of a rendering (with the
#: rendering's categories): made a chunk at a time, so what is read per reader (their
#: interests) is read in one query per chunk.
EnvelopeMaker = Callable[
    [RenderedIssue, tuple[str, ...], Sequence[tuple[int, str]]], Sequence[Envelope]
]


@dataclass
class _Done:
    """What a worker did with one batch."""

    size: int  # readers handed to the worker
    owned: int = 0  # of them claimed by this run (the others were settled already)
    given_back: int = 0  # claimed, then deferred: the backend accepted nothing
    results: Sequence[SendResult] = ()  # the recorded answers
    error: BaseException | None = None  # raised in the caller's thread


def _chunks(readers: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    """``readers`` in lists of ``size``, read lazily (the readers may be streamed)."""
    it = iter(readers)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class Dispatcher:
    """Sends renderings to readers through one backend, claiming and recording in ``ledger``.

    Up to ``concurrency`` batches are in flight at once, each in a worker thread that
    claims it, sends it and records the answer; a batch is handed to a worker only
    when a slot is free and the throttle admitted it. So a crash at any moment leaves
    at most ``concurrency`` batches ``sending`` (``unknown`` for the next run). The
    ledger must take calls from several threads (``RunLedger`` does).

    Inside ``with``, the batches of successive ``send`` calls (one per rendering)
    overlap, and leaving the block waits for every batch in flight. Used alone,
    ``send`` does that itself before it returns.
    """

    def __init__(
        self,
        ledger: Ledger,
        backend: MailBackend,
        *,
        make_envelopes: EnvelopeMaker,
        throttle: Throttle,
        budget: FailureBudget,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.make_envelopes = make_envelopes
        self.throttle = throttle
        self.budget = budget
        self.progress = progress
        self.should_stop = should_stop
        self.concurrency = max(1, concurrency)
        self.tally = Tally()
        self._flights: list[Future[_Done]] = []
        self._error: BaseException | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._backends: queue.SimpleQueue[MailBackend] = queue.SimpleQueue()
        self._copies: list[MailBackend] = []

    # -- life ----------------------------------------------------------------------------

    def __enter__(self) -> Dispatcher:
        """Start the workers; a backend that cannot be shared gets one copy per worker."""
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mail-send")
        self._backends.put(self.backend)
        for _ in range(self.concurrency - 1):
            if self.backend.thread_safe:
                self._backends.put(self.backend)
                continue
            copy = self.backend.worker_copy()
            copy.open()
            self._copies.append(copy)
            self._backends.put(copy)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._drain()
        finally:
            assert self._pool is not None
            self._pool.shutdown(wait=True)
            self._pool = None
            for copy in self._copies:
                copy.close()
            self._copies.clear()
            self._backends = queue.SimpleQueue()
        if exc is None:
            self._raise_failure()

    # -- the caller's thread -------------------------------------------------------------

    def send(
        self,
        rendered: RenderedIssue,
        categories: tuple[str, ...],
        readers: Iterable[tuple[int, str]],
    ) -> bool:
        """Mail ``rendered`` to (subscriber_id, email) ``readers`` who are not yet claimed.

        Each batch's envelopes (signed links, "For you" blocks) are prepared while
        earlier batches are in flight. Returns False when ``should_stop`` said so
        between two batches (the batches in flight are still recorded).
        """
        if self._pool is None:
            with self:
                return self.send(rendered, categories, readers)
        size = self.throttle.batch_size(self.backend.max_batch)
        for chunk in _chunks(readers, size):
            made = self.make_envelopes(rendered, categories, chunk)
            prepared = list(zip((sid for sid, _ in chunk), made, strict=True))
            self._free_slot()
            # Asked once a slot is free: with one batch in flight, after the previous
            # batch was recorded, so a stop sees everything mailed so far.
            if self.should_stop is not None and self.should_stop():
                return False
            self.throttle.admit(len(chunk))
            self._flights.append(self._pool.submit(self._run, rendered, categories, prepared))
        return True

    def _free_slot(self) -> None:
        """Take in the batches that are done; wait while every slot is taken."""
        self._collect()
        while len(self._flights) >= self.concurrency:
            wait(self._flights, return_when=FIRST_COMPLETED)
            self._collect()
        if self._error is not None:
            self._drain()
            self._raise_failure()

    def _collect(self) -> None:
        """Count the batches that are done, leaving the others in flight."""
        for flight in [f for f in self._flights if f.done()]:
            self._flights.remove(flight)
            self._count(flight.result())

    def _drain(self) -> None:
        """Wait for every batch in flight and count it."""
        while self._flights:
            self._count(self._flights.pop(0).result())

    def _count(self, done: _Done) -> None:
        """Tally one batch, tell the progress bar, and judge the failure budget."""
        self.tally.already += done.size - done.owned
        self.tally.deferred += done.given_back
        self.tally.add(done.results)
        if self.progress:
            self.progress.advance(done.size - done.owned + len(done.results))
        if done.error is not None:
            self._error = self._error or done.error
        try:
            self.budget.add(done.results)
        except FailureBudgetExceeded as exc:
            self._error = self._error or exc

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # -- a worker thread -----------------------------------------------------------------

    def _run(
        self,
        rendered: RenderedIssue,
        categories: tuple[str, ...],
        prepared: list[tuple[int, Envelope]],
    ) -> _Done:
        """Claim, send and record one batch; its slot is taken until this returns."""
        done = _Done(len(prepared))
        try:
            self._claim_send_record(rendered, categories, prepared, done)
        except BaseException as exc:  # a bug or a lost database: the claimed stay "sending"
            done.error = exc
        return done

    def _claim_send_record(
        self,
        rendered: RenderedIssue,
        categories: tuple[str, ...],
        prepared: list[tuple[int, Envelope]],
        done: _Done,
    ) -> None:
        cats = ",".join(categories)
        owned = self.ledger.claim([(sid, cats) for sid, _ in prepared])
        mine = [(sid, env) for sid, env in prepared if sid in owned]
        done.owned = len(mine)
        if not mine:
            return
        backend = self._backends.get()
        try:
            results = backend.send(MessageBatch(rendered, tuple(e for _, e in mine), categories))
            if len(results) != len(mine):
                raise DeliveryError(
                    f"the mail backend answered for {len(results)} of {len(mine)} readers"
                )
        except DeliveryError as exc:
            # The backend accepted nothing of this batch: give the readers back for a
            # later run rather than leaving them "sending" (which would read as unknown).
            reason = str(exc)[:500]
            self.ledger.record(
                [(sid, SendResult(env.to, SendOutcome.DEFERRED, error=reason)) for sid, env in mine]
            )
            done.given_back, done.error = len(mine), exc
            return
        finally:
            self._backends.put(backend)
        self.ledger.record([(sid, result) for (sid, _), result in zip(mine, results, strict=True)])
        done.results = results
        self.ledger.beat()


def rate_for(setting: float | None, backend: MailBackend) -> float | None:
    """NEWSLETTER_SEND_RATE if set (0 = no limit), else the backend's default."""
    if setting is None:
        return backend.default_rate
    return setting or None


def concurrency_for(setting: int | None, backend: MailBackend) -> int:
    """NEWSLETTER_SEND_CONCURRENCY if set, else the backend's default."""
    return max(1, setting or backend.default_concurrency)

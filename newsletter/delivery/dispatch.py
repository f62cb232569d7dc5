"""Mail one rendering to its readers: claim, send, record, one batch at a time.

The order inside a batch is what makes a crash harmless: the readers are claimed
in the ledger (committed) before the backend is called, and the backend's answer
is recorded right after. A kill between the two leaves the batch ``sending``,
which the next run reports as ``unknown`` instead of mailing it again.

The dispatcher speaks to the ledger through the ``Ledger`` protocol (claim, record,
beat), as listmonk's manager takes a ``DataSource``: ``delivery.ledger.RunLedger``
is the SQL one, and a test may hand it a list.

The pace is kept with the ``limits`` library (NEWSLETTER_SEND_RATE), and the run
stops with ``FailureBudgetExceeded`` when too many messages fail permanently
(NEWSLETTER_SEND_MAX_FAILURE_RATIO): a bad sender address or a blocked domain
should cost one batch, not the whole list.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    """What the dispatcher needs of the delivery ledger, for one issue and one send run."""

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
    """At most ``rate`` messages per second, kept by a moving window from ``limits``."""

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

    def pieces(self, items: Sequence[Envelope]) -> Iterator[Sequence[Envelope]]:
        """``items`` cut into runs of at most one window's worth, each waited for."""
        if self.piece is None:
            yield items
            return
        for start in range(0, len(items), self.piece):
            piece = items[start : start + self.piece]
            while not self._limiter.hit(self._item, "send", cost=len(piece)):
                reset = self._limiter.get_window_stats(self._item, "send").reset_time
                self._sleep(max(0.005, reset - time.time()))
            yield piece


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


class Dispatcher:
    """Sends renderings to readers through one backend, claiming and recording in ``ledger``."""

    def __init__(
        self,
        ledger: Ledger,
        backend: MailBackend,
        *,
        make_envelope: Callable[[int, str], Envelope],
        throttle: Throttle,
        budget: FailureBudget,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.make_envelope = make_envelope
        self.throttle = throttle
        self.budget = budget
        self.progress = progress
        self.should_stop = should_stop
        self.tally = Tally()

    def send(
        self,
        rendered: RenderedIssue,
        categories: tuple[str, ...],
        readers: Sequence[tuple[int, str]],
    ) -> bool:
        """Mail ``rendered`` to (subscriber_id, email) ``readers`` who are not yet claimed.

        While one batch is with the provider (a worker thread), the next batch's
        envelopes (signed links) are prepared here; it is claimed only after the
        previous one was recorded, so at most one batch is ever ``sending``.
        Returns False when ``should_stop`` said so between two batches.
        """
        size = max(1, self.backend.max_batch)
        cats = ",".join(categories)
        chunks = [readers[start : start + size] for start in range(0, len(readers), size)]
        if not chunks:
            return True
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-send") as worker:
            prepared = self._envelopes(chunks[0])
            for number, chunk in enumerate(chunks):
                if self.should_stop is not None and self.should_stop():
                    return False
                owned = self.ledger.claim([(sid, cats) for sid, _ in chunk])
                self.tally.already += len(chunk) - len(owned)
                mine = [(sid, env) for sid, env in prepared if sid in owned]
                if self.progress and len(mine) < len(chunk):
                    self.progress.advance(len(chunk) - len(mine))
                sending = worker.submit(self._send_claimed, rendered, categories, mine)
                if number + 1 < len(chunks):
                    prepared = self._envelopes(chunks[number + 1])
                sending.result()
        return True

    def _envelopes(self, chunk: Sequence[tuple[int, str]]) -> list[tuple[int, Envelope]]:
        return [(sid, self.make_envelope(sid, email)) for sid, email in chunk]

    def _send_claimed(
        self,
        rendered: RenderedIssue,
        categories: tuple[str, ...],
        mine: Sequence[tuple[int, Envelope]],
    ) -> None:
        if not mine:
            return
        ids = [sid for sid, _ in mine]
        envelopes = [env for _, env in mine]
        done = 0
        try:
            for piece in self.throttle.pieces(envelopes):
                batch = MessageBatch(rendered, tuple(piece), categories)
                results = self.backend.send(batch)
                if len(results) != len(piece):
                    raise DeliveryError(
                        f"the mail backend answered for {len(results)} of {len(piece)} readers"
                    )
                self.ledger.record(list(zip(ids[done : done + len(piece)], results, strict=True)))
                done += len(piece)
                self.ledger.beat()
                self.tally.add(results)
                if self.progress:
                    self.progress.advance(len(piece))
                self.budget.add(results)
        except DeliveryError as exc:
            if isinstance(exc, FailureBudgetExceeded):
                raise
            # The backend accepted nothing of this piece: give the readers back for a
            # later run rather than leaving them "sending" (which would read as unknown).
            rest = list(zip(ids[done:], envelopes[done:], strict=True))
            self.ledger.record(
                [
                    (sid, SendResult(env.to, SendOutcome.DEFERRED, error=str(exc)[:500]))
                    for sid, env in rest
                ]
            )
            self.tally.deferred += len(rest)
            raise


def rate_for(setting: float | None, backend: MailBackend) -> float | None:
    """NEWSLETTER_SEND_RATE if set (0 = no limit), else the backend's default."""
    if setting is None:
        return backend.default_rate
    return setting or None

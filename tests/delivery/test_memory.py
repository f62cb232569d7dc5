"""The memory backend answers as a test scripts it, so rejections need no server.

Its scripting drives the dispatcher here through a ledger held in a dict (the
``dispatch.Ledger`` protocol), and ``pipeline.send`` on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from newsletter.app import Services
from newsletter.delivery import dispatch, ledger
from newsletter.delivery.memory import MemoryBackend
from newsletter.errors import DeliveryError, FailureBudgetExceeded
from newsletter.models import RenderedIssue, SendResult
from newsletter.sending import send
from newsletter.statuses import DeliveryStatus, SendOutcome
from tests.delivery.conftest import SAMPLE_DATE, add_readers, batch_of, envelope


def test_each_recipient_gets_the_scripted_answer(rendered: RenderedIssue) -> None:
    backend = MemoryBackend()
    backend.script("Gone@Example.com", SendOutcome.REJECTED, "550 5.1.1 no such user")
    backend.script("*@slow.example", SendOutcome.DEFERRED, "451 4.7.1 try again later")
    backend.script("lost@example.com", SendOutcome.UNKNOWN, "timed out after DATA")
    to = ["a@example.com", "gone@example.com", "b@slow.example", "lost@example.com"]
    results = backend.send(batch_of(rendered, [envelope(n, a) for n, a in enumerate(to)]))
    assert [(r.to, r.status, r.error) for r in results] == [
        ("a@example.com", SendOutcome.SENT, ""),
        ("gone@example.com", SendOutcome.REJECTED, "550 5.1.1 no such user"),
        ("b@slow.example", SendOutcome.DEFERRED, "451 4.7.1 try again later"),
        ("lost@example.com", SendOutcome.UNKNOWN, "timed out after DATA"),
    ]
    # The provider took the accepted message and the one whose answer was lost.
    assert [m["To"] for m in backend.outbox] == ["a@example.com", "lost@example.com"]
    assert results[0].message_id == backend.outbox[0]["Message-ID"]
    assert not results[1].message_id and not results[2].message_id


def test_the_first_matching_script_wins(rendered: RenderedIssue) -> None:
    backend = MemoryBackend()
    backend.script("vip@example.com", SendOutcome.SENT)
    backend.script("*@example.com", SendOutcome.REJECTED, "550 blocked domain")
    results = backend.send(batch_of(rendered, [envelope(0, "vip@example.com"), envelope(1)]))
    assert [r.status for r in results] == [SendOutcome.SENT, SendOutcome.REJECTED]


def test_a_scripted_error_refuses_the_whole_batch(rendered: RenderedIssue) -> None:
    backend = MemoryBackend()
    backend.script("*@down.example", DeliveryError("the provider is down", status=503))
    batch = batch_of(rendered, [envelope(0), envelope(1, "x@down.example")])
    with pytest.raises(DeliveryError, match="the provider is down"):
        backend.send(batch)
    assert backend.outbox == []  # nothing of the batch was accepted


@dataclass
class DictLedger:
    """The dispatcher's ledger kept in a dict (subscriber id -> status): no database."""

    rows: dict[int, str] = field(default_factory=dict)
    beats: int = 0

    def claim(self, readers: Sequence[tuple[int, str]]) -> set[int]:
        owned = {sid for sid, _ in readers if self.rows.get(sid, "deferred") == "deferred"}
        self.rows.update(dict.fromkeys(owned, DeliveryStatus.SENDING))
        return owned

    def record(self, outcomes: Sequence[tuple[int, SendResult]]) -> None:
        for sid, result in outcomes:
            assert self.rows[sid] == DeliveryStatus.SENDING, "recorded a reader never claimed"
            self.rows[sid] = ledger.RESULT_STATUS[result.status]

    def beat(self) -> None:
        self.beats += 1


def dispatcher(backend: MemoryBackend, book: DictLedger, ratio: float = 1.0) -> dispatch.Dispatcher:
    return dispatch.Dispatcher(
        book,
        backend,
        make_envelopes=lambda _r, _c, chunk: [envelope(sid, email) for sid, email in chunk],
        throttle=dispatch.Throttle(None),
        budget=dispatch.FailureBudget(ratio, min_sample=20),
    )


def readers(count: int, start: int = 0, domain: str = "example.com") -> list[tuple[int, str]]:
    return [(n, f"reader{n}@{domain}") for n in range(start, start + count)]


def test_the_dispatcher_records_each_scripted_answer(rendered: RenderedIssue) -> None:
    backend = MemoryBackend()
    backend.script("reader1@example.com", SendOutcome.REJECTED, "550 no such user")
    backend.script("reader2@example.com", SendOutcome.DEFERRED, "452 mailbox full")
    backend.script("reader3@example.com", SendOutcome.UNKNOWN, "connection lost")
    book = DictLedger({4: DeliveryStatus.SENT})  # already mailed by an earlier run
    sender = dispatcher(backend, book)
    assert sender.send(rendered, ("nlp",), readers(5))
    assert book.rows == {0: "sent", 1: "failed", 2: "deferred", 3: "unknown", 4: "sent"}
    tally = sender.tally
    assert (tally.sent, tally.failed, tally.deferred, tally.unknown) == (1, 1, 1, 1)
    assert tally.already == 1 and book.beats >= 1


def test_too_many_rejections_stop_the_dispatcher_and_the_rest_waits(
    rendered: RenderedIssue,
) -> None:
    backend = MemoryBackend()
    backend.max_batch = 10
    backend.script("*@dead.example", SendOutcome.REJECTED, "550 5.1.1 <x@dead.example>: unknown")
    book = DictLedger()
    sender = dispatcher(backend, book, ratio=0.1)
    waiting = readers(10, start=100)
    with pytest.raises(FailureBudgetExceeded, match=r"reason: 550 5\.1\.1 <<address>>") as exc:
        sender.send(rendered, ("nlp",), readers(10) + readers(10, 50, "dead.example") + waiting)
    assert "dead.example" not in str(exc.value)  # the message is logged: no addresses
    assert not {sid for sid, _ in waiting} & set(book.rows)  # never claimed: still waiting


def test_a_refused_batch_gives_its_readers_back(rendered: RenderedIssue) -> None:
    backend = MemoryBackend()
    backend.script("reader1@example.com", DeliveryError("401 bad key", status=401))
    book = DictLedger()
    with pytest.raises(DeliveryError, match="401 bad key"):
        dispatcher(backend, book).send(rendered, ("nlp",), readers(3))
    assert book.rows == dict.fromkeys(range(3), "deferred")  # the next run mails them
    assert backend.outbox == []


def test_a_send_records_rejections_deferrals_and_lost_answers(
    delivery_services: Services,
) -> None:
    svc = delivery_services
    add_readers(svc, 6, (("nlp",),))
    backend = MemoryBackend()
    backend.script("reader1@example.com", SendOutcome.REJECTED, "550 5.1.1 no such user")
    backend.script("reader2@example.com", SendOutcome.DEFERRED, "452 4.2.2 mailbox full")
    backend.script("reader3@example.com", SendOutcome.UNKNOWN, "connection lost during DATA")
    first = send(svc, SAMPLE_DATE, backend)
    assert (first.sent, first.failed, first.deferred, first.unknown) == (3, 1, 1, 1)
    issue_rows = ledger.latest_issue(svc.engine)
    assert issue_rows is not None
    rows = {r.email: r for r in ledger.list_deliveries(svc.engine, issue_rows[0])}
    assert rows["reader1@example.com"].status == "failed"
    assert rows["reader1@example.com"].error == "550 5.1.1 no such user"
    assert rows["reader2@example.com"].status == "deferred"
    assert rows["reader3@example.com"].status == "unknown"

    retry = MemoryBackend()  # the mailbox has room again
    second = send(svc, SAMPLE_DATE, retry)
    assert [m["To"] for m in retry.outbox] == ["reader2@example.com"]  # not 1, not 3
    assert (second.sent, second.failed, second.unknown) == (1, 0, 1)

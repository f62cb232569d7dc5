"""``sending.send`` end to end through real backends, on SQLite and PostgreSQL.

Every bad input of the issue is here with what must hold afterwards: who got the
issue (read back from the SendGrid double or the SMTP sink), what the ledger
says, and that nobody is mailed twice or forgotten.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.db import table_of
from newsletter.delivery import dispatch, ledger
from newsletter.delivery.base import MailBackend
from newsletter.delivery.memory import MemoryBackend
from newsletter.delivery.sendgrid import RetryPolicy, SendGridBackend
from newsletter.delivery.smtp import SMTPBackend
from newsletter.errors import FailureBudgetExceeded
from newsletter.issues import get_issue
from newsletter.models import SendResult
from newsletter.sending import SendReport, send
from newsletter.statuses import SendOutcome
from subscribers.models import Subscriber
from tests.delivery.conftest import SAMPLE_DATE, add_readers
from tests.fakes.sendgrid_double import API_KEY, SendGridDouble, Step
from tests.fakes.smtp_server import SMTPSink

SETS = (("nlp",), ("llm", "reasoning"), ("computer-vision",))


def sendgrid_backend(
    double: SendGridDouble, key: str = API_KEY, timeout: float = 10
) -> SendGridBackend:
    return SendGridBackend(
        key,
        "news@example.org",
        "Daily AI Insights",
        host=double.url,
        timeout=timeout,
        retry=RetryPolicy(attempts=2, backoff=0),
        sleep=lambda _: None,
    )


def issue_id(svc: Services) -> int:
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    return issue.id


def statuses(svc: Services) -> dict[str, str]:
    """Each reader's ledger status, by address."""
    rows = ledger.list_deliveries(svc.engine, issue_id(svc))
    return {r.email: r.status for r in rows}


def run(svc: Services, backend: MailBackend, **options: Any) -> SendReport:
    """Send the sample day; ``options`` are ``send``'s keyword arguments."""
    return send(svc, SAMPLE_DATE, backend, **options)


def test_every_reader_gets_the_issue_once(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 30, SETS)
    add_readers(svc, 1, ((),), start=100)  # no category: nothing for them today
    add_readers(svc, 1, SETS, start=200, status="unsubscribed")
    first = run(svc, sendgrid_backend(sendgrid))
    assert (first.sent, first.skipped, first.failed, first.unknown) == (30, 2, 0, 0)
    assert first.ok and first.line() == "sent: 30, skipped: 2, failed: 0, unknown: 0"
    assert [s.personalizations for s in sendgrid.seen] == [10, 10, 10]  # one request per set
    assert sorted(sendgrid.recipients.values()) == [1] * 30
    second = run(svc, sendgrid_backend(sendgrid))
    assert (second.sent, second.already) == (0, 30)
    assert len(sendgrid.seen) == 3
    assert set(statuses(svc).values()) == {"sent"}
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.status == "sent"


def test_each_reader_gets_only_their_categories_and_own_links(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    nlp, vision = add_readers(svc, 2, (("nlp",), ("computer-vision",)))
    run(svc, sendgrid_backend(sendgrid))
    by_to = {d.to: d for d in sendgrid.delivered}
    assert by_to["reader0@example.com"].custom_args["subscriber_id"] == str(nlp)
    assert 'id="nlp"' in by_to["reader0@example.com"].html
    assert 'id="nlp"' not in by_to["reader1@example.com"].html
    unsubscribe = by_to["reader1@example.com"].headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://news.example.org/unsubscribe/")
    assert svc.signer.unsign(unsubscribe.rsplit("/", 1)[1], "unsubscribe") == vision
    assert unsubscribe in by_to["reader1@example.com"].html
    assert "NLPH" not in by_to["reader1@example.com"].html


def test_a_rejected_address_fails_alone_and_is_not_retried(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 25, SETS)
    add_readers(svc, 1, SETS, start=99, domain="gone.invalid")
    report = run(svc, sendgrid_backend(sendgrid))
    assert (report.sent, report.failed) == (25, 1) and not report.ok and not report.error
    ledger_status = statuses(svc)
    assert ledger_status["reader99@gone.invalid"] == "failed"
    assert "reader99@gone.invalid" not in sendgrid.recipients
    # A rejection is final (the address is suppressed), so the issue is done, not left
    # "sending" for a later run to resume.
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.status == "sent"
    requests = len(sendgrid.seen)
    again = run(svc, sendgrid_backend(sendgrid))
    assert (again.sent, again.failed) == (0, 0) and again.ok
    assert len(sendgrid.seen) == requests


def test_too_many_rejections_stop_the_run_and_the_rest_waits(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 30, (("nlp",),))
    add_readers(svc, 10, (("nlp",),), start=500, domain="dead.invalid")
    add_readers(svc, 30, (("computer-vision",),), start=1000)
    backend = sendgrid_backend(sendgrid)
    # One batch in flight, so the budget stops the run at the first answer (with several,
    # the batches already with the provider are still sent and recorded).
    backend.default_concurrency = 1
    report = run(svc, backend)
    assert "NEWSLETTER_SEND_MAX_FAILURE_RATIO" in report.error and not report.ok
    assert (report.sent, report.failed) == (30, 10)
    assert report.error in report.notes
    rows = statuses(svc)
    assert not {f"reader{1000 + i}@example.com" for i in range(30)} & set(rows)  # untouched
    assert sum(sendgrid.recipients.values()) == 30
    resumed = run(svc, sendgrid_backend(sendgrid))
    assert (resumed.sent, resumed.failed) == (30, 0) and not resumed.error
    assert sorted(sendgrid.recipients.values()) == [1] * 60


def test_a_refused_api_key_mails_nobody_and_loses_nobody(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 12, SETS)
    report = run(svc, sendgrid_backend(sendgrid, key="SG.revoked"))
    assert "NEWSLETTER_SENDGRID_API_KEY" in report.error and not report.ok
    assert report.sent == 0 and sendgrid.recipients == {}
    assert set(statuses(svc).values()) <= {"deferred"}  # given back, not "unknown"
    fixed = run(svc, sendgrid_backend(sendgrid))
    assert fixed.sent == 12 and fixed.ok
    assert sorted(sendgrid.recipients.values()) == [1] * 12


def test_a_hang_leaves_readers_unknown_until_the_operator_says_resend(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 9, SETS)
    sendgrid.script(Step(hang=30))  # the first group's request gets no answer
    report = run(svc, sendgrid_backend(sendgrid, timeout=0.5))
    assert (report.sent, report.unknown) == (6, 3) and not report.ok
    assert any("--resend-unknown" in note for note in report.notes)
    again = run(svc, sendgrid_backend(sendgrid))
    assert (again.sent, again.unknown) == (0, 3)
    unknown = sorted(a for a, s in statuses(svc).items() if s == "unknown")
    assert all(a not in sendgrid.recipients for a in unknown)
    resent = run(svc, sendgrid_backend(sendgrid), resend_unknown=True)
    assert (resent.sent, resent.unknown) == (3, 0) and resent.ok
    assert sorted(sendgrid.recipients.values()) == [1] * 9


def test_a_dry_run_renders_and_counts_but_sends_and_claims_nothing(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, 7, SETS)
    report = run(svc, sendgrid_backend(sendgrid), dry_run=True)
    assert report.sent == 7 and report.dry_run
    assert sendgrid.seen == [] and statuses(svc) == {}


class Recorder:
    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, count: int) -> None:
        self.done += count


def test_progress_counts_every_reader(delivery_services: Services) -> None:
    svc = delivery_services
    add_readers(svc, 11, SETS)
    progress = Recorder()
    run(svc, MemoryBackend(), progress=progress)
    assert progress.total == progress.done == 11


def test_smtp_deferrals_are_retried_by_the_next_run(
    delivery_services: Services, smtp_sink: SMTPSink
) -> None:
    svc = delivery_services.__class__(
        delivery_services.settings.model_copy(update={"send_rate": 0}),
        delivery_services.engine,
        delivery_services.taxonomy,
        delivery_services.signer,
    )
    add_readers(svc, 6, SETS)
    smtp_sink.behaviour.rcpt_replies["reader1@example.com"] = "452 4.2.2 mailbox full"
    smtp_sink.behaviour.rcpt_replies["reader2@example.com"] = "550 5.1.1 no such user"
    smtp_sink.behaviour.drop_at_rcpt.add("reader4@example.com")
    backend = SMTPBackend("127.0.0.1", smtp_sink.port, "news@example.org", timeout=10)
    first = run(svc, backend)
    assert (first.sent, first.deferred, first.failed) == (4, 1, 1)
    assert first.line().endswith("failed: 2, unknown: 0")
    del smtp_sink.behaviour.rcpt_replies["reader1@example.com"]
    second = run(svc, backend)
    assert (second.sent, second.deferred) == (1, 0)
    tos = sorted(r.rcpt_tos[0] for r in smtp_sink.received)
    assert tos == [f"reader{n}@example.com" for n in (0, 1, 3, 4, 5)]


def test_an_smtp_server_that_vanishes_gives_the_readers_back(
    delivery_services: Services,
) -> None:
    svc = delivery_services
    add_readers(svc, 3, SETS)
    sink = SMTPSink().start()
    sink.stop()
    report = run(svc, SMTPBackend("127.0.0.1", sink.port, "news@example.org", timeout=2))
    assert "cannot connect" in report.error and report.sent == 0
    assert set(statuses(svc).values()) <= {"deferred"}


# -- pace and budget, without a clock ----------------------------------------------------


class Waited(Exception):
    """Raised by the fake sleep: the throttle asked to wait, which is all we check."""


def test_the_throttle_cuts_batches_to_the_rate_and_waits_between() -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise Waited

    assert dispatch.Throttle(10, sleep=sleep).batch_size(1000) == 10
    slow = dispatch.Throttle(0.1, sleep=sleep)  # one message per 10 s
    assert slow.batch_size(1000) == 1
    slow.admit(1)
    with pytest.raises(Waited):
        slow.admit(1)
    assert 0 < waits[0] <= 10
    unlimited = dispatch.Throttle(None, sleep=sleep)
    assert unlimited.batch_size(25) == 25
    unlimited.admit(25)
    assert len(waits) == 1


def test_backend_defaults_for_the_rate() -> None:
    smtp = SMTPBackend("127.0.0.1", 25, "a@example.org")
    assert dispatch.rate_for(None, smtp) == 10.0
    # Several requests in flight for an HTTP API, one connection for an SMTP relay.
    assert dispatch.concurrency_for(None, smtp) == 1
    assert dispatch.concurrency_for(3, smtp) == 3
    assert dispatch.rate_for(0, smtp) is None
    assert dispatch.rate_for(3.5, MemoryBackend()) == 3.5
    assert dispatch.rate_for(None, MemoryBackend()) is None


def test_the_budget_waits_for_a_sample_then_stops() -> None:
    budget = dispatch.FailureBudget(0.05, min_sample=20)
    bounce = SendResult(
        "dead@x.org", SendOutcome.REJECTED, error="550 5.1.1 <dead@x.org>: user unknown"
    )
    budget.add([bounce] * 3)  # 3 of 3, but too few to judge
    with pytest.raises(FailureBudgetExceeded, match="3 of 20") as caught:
        budget.add([SendResult("b@x.org", SendOutcome.SENT)] * 17)
    assert "550 5.1.1 <<address>>: user unknown" in str(caught.value)
    assert "dead@x.org" not in str(caught.value)  # the message is logged: no addresses


def test_readers_of_a_crashed_run_are_never_mailed_twice(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    """A run that dies after claiming: its rows read as unknown, nobody gets it again."""
    svc = delivery_services
    ids = add_readers(svc, 6, SETS)
    table = table_of(Subscriber)
    with svc.engine.connect() as conn:
        emails = {row.id: row.email for row in conn.execute(sa.select(table.c.id, table.c.email))}
    ledger.claim(svc.engine, issue_id(svc), [(i, "nlp") for i in ids[:2]])  # no live run owns them
    report = run(svc, sendgrid_backend(sendgrid))
    assert (report.sent, report.unknown) == (4, 2)
    assert all(emails[i] not in sendgrid.recipients for i in ids[:2])

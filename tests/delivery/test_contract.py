"""One contract, every backend: what a batch must turn into, whoever carries it.

Each backend runs against a real sink: a directory (file), a list (memory), an
aiosmtpd server on a free loopback port (smtp), the validating SendGrid double
(sendgrid). What each reader received is read back from that sink and checked the
same way for all four.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.delivery.base import MailBackend
from newsletter.delivery.file import FileBackend
from newsletter.delivery.memory import MemoryBackend
from newsletter.delivery.sendgrid import RetryPolicy, SendGridBackend
from newsletter.delivery.smtp import SMTPBackend
from newsletter.models import RenderedIssue
from newsletter.statuses import SendOutcome
from tests.delivery.conftest import CHART_CID, MANAGE, UNSUB, batch_of, envelope
from tests.fakes.sendgrid_double import API_KEY, SendGridDouble
from tests.fakes.smtp_server import SMTPSink

FROM = "news@example.org"


@dataclass(frozen=True)
class Got:
    """One message as its reader got it, whatever carried it."""

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    inline_ids: frozenset[str]


def from_mime(msg: EmailMessage) -> Got:
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    inline = frozenset(
        str(part["Content-ID"]).strip("<>")
        for part in msg.walk()
        if part.get_content_maintype() == "image" and part["Content-ID"]
    )
    headers = {k: str(v) for k, v in msg.items()}
    return Got(
        str(msg["To"]),
        str(msg["Subject"]),
        str(html_part.get_content()),
        str(text_part.get_content()),
        headers,
        inline,
    )


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, _class=EmailMessage, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@dataclass
class Harness:
    backend: MailBackend
    received: Callable[[], list[Got]]


@pytest.fixture(params=["file", "memory", "smtp", "sendgrid"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind = request.param
    if kind == "file":
        outbox = tmp_path / "outbox"
        backend: MailBackend = FileBackend(outbox, FROM, "News")
        yield Harness(
            backend, lambda: [from_mime(parse(p.read_bytes())) for p in outbox.glob("*.eml")]
        )
    elif kind == "memory":
        memory = MemoryBackend(FROM, "News")
        yield Harness(memory, lambda: [from_mime(m) for m in memory.outbox])
    elif kind == "smtp":
        with SMTPSink() as sink:
            backend = SMTPBackend("127.0.0.1", sink.port, FROM, "News", timeout=10)
            yield Harness(backend, lambda: [from_mime(r.message) for r in sink.received])
    else:
        with SendGridDouble() as double:
            backend = SendGridBackend(
                API_KEY, FROM, "News", host=double.url, timeout=10, retry=RetryPolicy(backoff=0)
            )
            yield Harness(
                backend,
                lambda: [
                    Got(
                        d.to,
                        d.subject,
                        d.html,
                        d.text,
                        d.headers,
                        frozenset(
                            a["content_id"] for a in d.attachments if a["disposition"] == "inline"
                        ),
                    )
                    for d in double.delivered
                ],
            )


def test_every_reader_gets_one_result_in_order(harness: Harness, rendered: RenderedIssue) -> None:
    envelopes = [envelope(n) for n in range(5)]
    with harness.backend as backend:
        results = backend.send(batch_of(rendered, envelopes))
    assert [r.to for r in results] == [e.to for e in envelopes]
    assert all(r.status == SendOutcome.SENT and r.message_id and not r.error for r in results)


def test_each_reader_gets_exactly_their_own_message(
    harness: Harness, rendered: RenderedIssue
) -> None:
    envelopes = [envelope(n) for n in range(4)]
    with harness.backend as backend:
        backend.send(batch_of(rendered, envelopes))
    got = harness.received()
    assert sorted(g.to for g in got) == sorted(e.to for e in envelopes)
    for message in got:
        n = int(message.to.removeprefix("reader").split("@")[0])
        own = envelope(n).values
        assert message.subject == rendered.subject
        for body in (message.html, message.text):
            assert own["manage_url"] in body and own["unsubscribe_url"] in body
            assert MANAGE not in body and UNSUB not in body
            others = [e.to for e in envelopes if e.to != message.to]
            assert not any(address in body for address in others)
        assert ".a line starting with a dot" in message.text


def test_list_unsubscribe_is_the_readers_own_one_click_link(
    harness: Harness, rendered: RenderedIssue
) -> None:
    with harness.backend as backend:
        backend.send(batch_of(rendered, [envelope(1), envelope(2)]))
    by_to = {g.to: g for g in harness.received()}
    for n in (1, 2):
        headers = by_to[f"reader{n}@example.com"].headers
        assert headers["List-Unsubscribe"] == f"<https://news.example.org/unsubscribe/tok{n}>"
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_chart_travels_inline_by_content_id(harness: Harness, rendered: RenderedIssue) -> None:
    with harness.backend as backend:
        backend.send(batch_of(rendered, [envelope(1)]))
    (message,) = harness.received()
    assert CHART_CID in message.inline_ids
    assert f"cid:{CHART_CID}" in message.html


def test_an_empty_batch_sends_nothing(harness: Harness, rendered: RenderedIssue) -> None:
    with harness.backend as backend:
        assert backend.send(batch_of(rendered, [])) == []
    assert harness.received() == []


def test_a_backend_can_be_opened_again_after_closing(
    harness: Harness, rendered: RenderedIssue
) -> None:
    for n in range(2):
        with harness.backend as backend:
            assert backend.send(batch_of(rendered, [envelope(n)]))[0].status == SendOutcome.SENT
    assert len(harness.received()) == 2

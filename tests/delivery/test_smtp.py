"""The SMTP backend against a real aiosmtpd server: TLS, auth, reuse, drops and reply codes."""

from __future__ import annotations

import base64
import email.utils
import re
from pathlib import Path
from typing import Any

import pytest

from newsletter.delivery.smtp import SMTPBackend
from newsletter.errors import ConfigurationError, DeliveryError
from newsletter.models import RenderedIssue
from newsletter.settings import load_settings
from newsletter.statuses import SendOutcome
from tests.delivery.conftest import TLSFiles, batch_of, envelope
from tests.fakes.smtp_server import SMTPSink, free_port

SENT, REJECTED = SendOutcome.SENT, SendOutcome.REJECTED
DEFERRED, UNKNOWN = SendOutcome.DEFERRED, SendOutcome.UNKNOWN


def backend_for(sink: SMTPSink, **options: Any) -> SMTPBackend:
    """A backend on ``sink``; ``options`` are SMTPBackend's keyword arguments."""
    return SMTPBackend("127.0.0.1", sink.port, "news@example.org", "News", timeout=10, **options)


def test_one_connection_serves_many_messages(smtp_sink: SMTPSink, rendered: RenderedIssue) -> None:
    backend = backend_for(smtp_sink)
    with backend:
        backend.send(batch_of(rendered, [envelope(n) for n in range(3)]))
        backend.send(batch_of(rendered, [envelope(n) for n in range(3, 6)]))
    assert backend.connections == 1 and smtp_sink.handler.connections == 1
    assert len(smtp_sink.received) == 6


def test_message_id_date_and_envelope(smtp_sink: SMTPSink, rendered: RenderedIssue) -> None:
    with backend_for(smtp_sink) as backend:
        (result,) = backend.send(batch_of(rendered, [envelope(1)]))
    (received,) = smtp_sink.received
    msg = received.message
    assert result.message_id == msg["Message-ID"]
    assert msg["Message-ID"].endswith("@example.org>")
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    assert received.mail_from == "news@example.org"
    assert received.rcpt_tos == ("reader1@example.com",)
    assert msg.get_content_type() == "multipart/alternative"


def test_starttls_with_login(tls_files: TLSFiles, rendered: RenderedIssue) -> None:
    with SMTPSink(tls=tls_files.server_context(), credentials=("mailer", "s3cret")) as sink:
        backend = backend_for(
            sink,
            starttls=True,
            username="mailer",
            password="s3cret",
            context=tls_files.client_context(),
        )
        with backend:
            results = backend.send(batch_of(rendered, [envelope(1)]))
        assert results[0].status == SendOutcome.SENT
        assert len(sink.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login(tls_files: TLSFiles, rendered: RenderedIssue) -> None:
    with SMTPSink(
        tls=tls_files.server_context(), implicit_tls=True, credentials=("mailer", "s3cret")
    ) as sink:
        backend = backend_for(
            sink,
            use_ssl=True,
            username="mailer",
            password="s3cret",
            context=tls_files.client_context(),
        )
        with backend:
            assert backend.send(batch_of(rendered, [envelope(1)]))[0].status == SendOutcome.SENT


def test_a_wrong_password_is_a_clear_error(tls_files: TLSFiles, rendered: RenderedIssue) -> None:
    with SMTPSink(tls=tls_files.server_context(), credentials=("mailer", "s3cret")) as sink:
        backend = backend_for(
            sink,
            starttls=True,
            username="mailer",
            password="nope",
            context=tls_files.client_context(),
        )
        with pytest.raises(DeliveryError, match="NEWSLETTER_SMTP_PASSWORD"), backend:
            backend.send(batch_of(rendered, [envelope(1)]))
        assert sink.received == []


def test_an_untrusted_certificate_is_refused(tls_files: TLSFiles, rendered: RenderedIssue) -> None:
    with SMTPSink(tls=tls_files.server_context()) as sink:
        backend = backend_for(sink, starttls=True)  # the system's CAs do not know this one
        with pytest.raises(DeliveryError, match="cannot connect"), backend:
            pass
        assert sink.received == []


def test_starttls_and_ssl_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        SMTPBackend("127.0.0.1", 25, "news@example.org", starttls=True, use_ssl=True)


def test_no_server_is_a_clear_error(rendered: RenderedIssue) -> None:
    backend = SMTPBackend("127.0.0.1", free_port(), "news@example.org", timeout=2)
    with pytest.raises(DeliveryError, match="NEWSLETTER_SMTP_HOST"):
        backend.send(batch_of(rendered, [envelope(1)]))


def test_reply_codes_decide_each_readers_result(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    smtp_sink.behaviour.rcpt_replies["reader1@example.com"] = "550 5.1.1 no such user"
    smtp_sink.behaviour.rcpt_replies["reader2@example.com"] = "451 4.3.0 mailbox busy, try later"
    with backend_for(smtp_sink) as backend:
        results = backend.send(batch_of(rendered, [envelope(n) for n in range(4)]))
    assert [r.status for r in results] == [
        SendOutcome.SENT,
        SendOutcome.REJECTED,
        SendOutcome.DEFERRED,
        SendOutcome.SENT,
    ]
    assert results[1].error.startswith("550") and results[2].error.startswith("451")
    assert [r.rcpt_tos for r in smtp_sink.received] == [
        ("reader0@example.com",),
        ("reader3@example.com",),
    ]


def test_a_drop_before_data_reconnects_and_mails_once(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    smtp_sink.behaviour.drop_at_rcpt.add("reader2@example.com")
    backend = backend_for(smtp_sink)
    with backend:
        results = backend.send(batch_of(rendered, [envelope(n) for n in range(5)]))
    assert all(r.status == SendOutcome.SENT for r in results)
    assert backend.connections == 2
    tos = [r.rcpt_tos[0] for r in smtp_sink.received]
    assert sorted(tos) == sorted(f"reader{n}@example.com" for n in range(5))


def test_a_drop_during_data_is_unknown_not_resent(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    smtp_sink.behaviour.drop_in_data.add("reader1@example.com")
    smtp_sink.behaviour.lose_in_data.add("reader3@example.com")
    with backend_for(smtp_sink) as backend:
        results = backend.send(batch_of(rendered, [envelope(n) for n in range(5)]))
    assert [r.status for r in results] == [
        SendOutcome.SENT,
        SendOutcome.UNKNOWN,
        SendOutcome.SENT,
        SendOutcome.UNKNOWN,
        SendOutcome.SENT,
    ]
    assert "may have queued it" in results[1].error
    tos = [r.rcpt_tos[0] for r in smtp_sink.received]
    # reader1's message arrived once (its answer was lost); reader3's never did; none twice.
    assert sorted(tos) == [f"reader{n}@example.com" for n in (0, 1, 2, 4)]


def test_a_server_gone_between_batches_is_a_clear_error(rendered: RenderedIssue) -> None:
    sink = SMTPSink().start()
    backend = SMTPBackend("127.0.0.1", sink.port, "news@example.org", timeout=5)
    with backend:
        assert backend.send(batch_of(rendered, [envelope(0)]))[0].status == SendOutcome.SENT
        sink.stop()
        # Nothing of the next batch can be handed over: the caller gets the error (and the
        # sender gives those readers back to the next run, see test_send).
        with pytest.raises(DeliveryError, match="cannot connect"):
            backend.send(batch_of(rendered, [envelope(1), envelope(2)]))
    assert len(sink.received) == 1


def test_international_domain_is_sent_idna_encoded(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    """As found: ``user@bücher.example`` became ``To: user@=?utf-8?q?b=C3=BCcher?=.example``."""
    with backend_for(smtp_sink) as backend:
        (result,) = backend.send(batch_of(rendered, [envelope(1, "user@bücher.example")]))
    assert result.status == SENT and result.to == "user@bücher.example"
    (received,) = smtp_sink.received
    assert received.rcpt_tos == ("user@xn--bcher-kva.example",)
    assert b"\r\nTo: user@xn--bcher-kva.example\r\n" in received.data
    assert b"=?utf-8?" not in received.data.split(b"\r\n\r\n")[0]


def test_utf8_local_part_needs_a_server_announcing_smtputf8(rendered: RenderedIssue) -> None:
    for smtputf8 in (True, False):
        with SMTPSink(smtputf8=smtputf8) as sink:
            backend = backend_for(sink)
            assert backend.accepts_utf8_local_parts() is smtputf8
            with backend:
                (result,) = backend.send(batch_of(rendered, [envelope(1, "jörg@bücher.example")]))
            if smtputf8:
                assert result.status == SENT
                (received,) = sink.received
                assert received.rcpt_tos == ("jörg@xn--bcher-kva.example",)
                assert "\r\nTo: jörg@xn--bcher-kva.example\r\n".encode() in received.data
            else:
                assert result.status == REJECTED and "non-ASCII" in result.error
                assert sink.received == []


def test_date_is_utc_as_plus_0000_and_the_list_has_an_id(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    with backend_for(smtp_sink) as backend:
        backend.send(batch_of(rendered, [envelope(1)]))
    (received,) = smtp_sink.received
    head = received.data.split(b"\r\n\r\n")[0].decode()
    assert re.search(r"^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$", head, re.M)
    assert '\r\nList-Id: "News" <news.example.org>\r\n' in head


def _dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A PEM RSA key file and the DNS TXT record that publishes its public half."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies_against_the_published_key(
    smtp_sink: SMTPSink, rendered: RenderedIssue, tmp_path: Path
) -> None:
    import dkim

    key_file, record = _dkim_key(tmp_path)
    settings = load_settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        from_email="news@example.org",
        dkim_domain="example.org",
        dkim_selector="news2026",
        dkim_key_file=key_file,
    )
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record if name == b"news2026._domainkey.example.org." else b""

    with SMTPBackend.from_settings(settings) as backend:
        backend.send(batch_of(rendered, [envelope(1)]))
    (received,) = smtp_sink.received
    assert received.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(received.data, dnsfunc=dns)
    assert looked_up == [b"news2026._domainkey.example.org."]
    header = re.search(rb"h=([^;]+);", received.data.replace(b"\r\n ", b""))
    assert header is not None, "the DKIM-Signature names no signed headers"
    signed = header.group(1)
    assert {b"list-unsubscribe", b"list-unsubscribe-post", b"list-id"} <= set(
        signed.replace(b" ", b"").lower().split(b":")
    )
    # A changed body no longer verifies.
    assert not dkim.verify(received.data.replace(b"reader1", b"reader2"), dnsfunc=dns)


def test_dkim_settings_are_all_three_or_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NEWSLETTER_DKIM_SELECTOR"):
        SMTPBackend.from_settings(load_settings(dkim_domain="example.org"))
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigurationError, match="NEWSLETTER_DKIM_KEY_FILE"):
        SMTPBackend.from_settings(
            load_settings(dkim_domain="example.org", dkim_selector="s", dkim_key_file=bad)
        )
    with pytest.raises(ConfigurationError, match="cannot read"):
        SMTPBackend.from_settings(
            load_settings(
                dkim_domain="example.org", dkim_selector="s", dkim_key_file=tmp_path / "none"
            )
        )


def test_several_workers_each_send_on_their_own_connection(
    smtp_sink: SMTPSink, rendered: RenderedIssue
) -> None:
    from newsletter.delivery import dispatch
    from tests.delivery.test_memory import DictLedger

    backend = backend_for(smtp_sink)
    backend.max_batch = 5
    book = DictLedger()
    sender = dispatch.Dispatcher(
        book,
        backend,
        make_envelopes=lambda _r, _c, chunk: [envelope(sid) for sid, _ in chunk],
        throttle=dispatch.Throttle(None),
        budget=dispatch.FailureBudget(1.0),
        concurrency=2,
    )
    with backend, sender:
        assert sender.send(rendered, ("nlp",), [(n, f"r{n}@example.com") for n in range(20)])
    assert len(book.rows) == 20 and set(book.rows.values()) == {"sent"}
    assert len(smtp_sink.received) == 20
    # The second worker got a copy of the backend with its own connection, closed after.
    assert backend.connections == 1 and smtp_sink.handler.connections <= 2

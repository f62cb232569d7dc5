"""POST /webhooks/sendgrid: signed with the test's own key pair, on SQLite and PostgreSQL.

The router is mounted the way the web app mounts it (``app.state.services``), and
every refused post is checked to have changed nothing.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.delivery import ledger
from newsletter.issues import get_issue
from newsletter.models import SendResult
from newsletter.statuses import DeliveryStatus, SendOutcome
from subscribers import webhooks
from subscribers.readers import events as reader_events
from subscribers.readers import get_by_id, list_subscribers
from tests.delivery.conftest import SAMPLE_DATE, add_readers

PATH = "/webhooks/sendgrid"


class Signer:
    """SendGrid's side: an ECDSA P-256 key; the public half goes into the settings."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            webhooks.SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            webhooks.TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json",
        }


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app_services(ledger_services: Services, signer: Signer) -> Services:
    svc = ledger_services
    svc.settings = svc.settings.model_copy(update={"sendgrid_webhook_public_key": signer.public})
    return svc


@pytest.fixture
def client(app_services: Services) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.services = app_services
    app.include_router(webhooks.router)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def sent(app_services: Services) -> tuple[int, list[int]]:
    """Three readers with the sample issue recorded as sent to them."""
    svc = app_services
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    ids = add_readers(svc, 3)
    ledger.claim(svc.engine, issue.id, [(i, "nlp") for i in ids])
    ledger.record(
        svc.engine, issue.id, [(i, SendResult("x", SendOutcome.SENT, "sg-1")) for i in ids]
    )
    return issue.id, ids


def event(kind: str, reader: int, issue: int, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": "not-used-when-the-id-is-known@example.com",
        "timestamp": 1732270000 + n,
        "event": kind,
        "sg_event_id": f"evt-{kind}-{reader}-{n}",
        "sg_message_id": "sg-1.filter0001",
        "issue_id": str(issue),
        "subscriber_id": str(reader),
        **extra,
    }


def post(client: TestClient, signer: Signer, payload: Any, **kw: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(PATH, content=body, headers=signer.headers(body, **kw))


def snapshot(
    svc: Services, issue: int
) -> tuple[list[str], list[tuple[str, DeliveryStatus, bool, bool]]]:
    readers = [i.status for i in list_subscribers(svc.engine)]
    rows = [
        (r.email, r.status, r.delivered_at is not None, r.opened_at is not None)
        for r in ledger.list_deliveries(svc.engine, issue)
    ]
    return readers, rows


def email_of(svc: Services, subscriber_id: int) -> str:
    info = get_by_id(svc.engine, subscriber_id)
    assert info is not None
    return info.email


def status_of(svc: Services, subscriber_id: int) -> str:
    info = get_by_id(svc.engine, subscriber_id)
    assert info is not None
    return info.status


def test_events_change_readers_and_the_ledger(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    svc = app_services
    issue, (a, b, c) = sent
    events = [
        event("delivered", a, issue, 1),
        event("open", a, issue, 2),
        event("bounce", b, issue, 3, type="bounce", reason="550 5.1.1 user unknown"),
        event("spamreport", c, issue, 4),
    ]
    answer = post(client, signer, events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"applied": 4, "duplicates": 0, "ignored": 0, "skipped": 0}
    assert (status_of(svc, a), status_of(svc, b), status_of(svc, c)) == (
        "active",
        "bounced",
        "complained",
    )
    rows = {r.email: r for r in ledger.list_deliveries(svc.engine, issue)}
    row_a, row_b = rows[email_of(svc, a)], rows[email_of(svc, b)]
    assert row_a.status == "sent" and row_a.delivered_at and row_a.opened_at
    assert row_b.status == "failed" and "550 5.1.1" in row_b.error
    events_of_b = reader_events(svc.engine, b)
    assert any(e.source == "webhook" for e in events_of_b)


def test_unsubscribe_and_drops_map_to_statuses(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    svc = app_services
    issue, (a, b, c) = sent
    answer = post(
        client,
        signer,
        [
            event("unsubscribe", a, issue, 1),
            event("dropped", b, issue, 2, reason="Bounced Address"),
            event("bounce", c, issue, 3, type="blocked", reason="try later"),  # soft
        ],
    )
    assert answer.status_code == 200
    assert (status_of(svc, a), status_of(svc, b), status_of(svc, c)) == (
        "unsubscribed",
        "bounced",
        "active",
    )


def test_a_replayed_event_changes_nothing(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    svc = app_services
    issue, (a, _, _) = sent
    unsubscribe = event("unsubscribe", a, issue, 1)
    assert post(client, signer, [unsubscribe]).json()["applied"] == 1
    # The reader subscribes again and confirms; then the old event is replayed.
    with svc.engine.begin() as conn:
        from newsletter.db import table_of
        from subscribers.models import Subscriber

        table = table_of(Subscriber)
        conn.execute(table.update().where(table.c.id == a).values(status="active"))
    answer = post(client, signer, [unsubscribe])
    assert answer.json() == {"applied": 0, "duplicates": 1, "ignored": 0, "skipped": 0}
    assert status_of(svc, a) == "active"


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("bad signature", 401, "signature does not match"),
        ("old timestamp", 401, "too old"),
        ("future timestamp", 401, "too old"),
        ("no headers", 401, "missing"),
        ("garbage signature", 401, "signature does not match"),
        ("invalid JSON", 400, "not a SendGrid event list"),
        ("not a list", 400, "not a SendGrid event list"),
    ],
)
def test_refused_posts_change_nothing(
    case: str,
    code: int,
    message: str,
    client: TestClient,
    signer: Signer,
    app_services: Services,
    sent: tuple[int, list[int]],
) -> None:
    svc = app_services
    issue, (a, _, _) = sent
    before = snapshot(svc, issue)
    payload = [event("spamreport", a, issue, 1)]
    body = json.dumps(payload).encode()
    now = int(time.time())
    if case == "bad signature":
        headers = Signer().headers(body)  # someone else's key
    elif case == "old timestamp":
        headers = signer.headers(body, now - 3600)
    elif case == "future timestamp":
        headers = signer.headers(body, now + 3600)
    elif case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "garbage signature":
        headers = {**signer.headers(body), webhooks.SIGNATURE_HEADER: "!!not base64!!"}
    else:
        body = {
            "invalid JSON": b"[{not json",
            "not a list": json.dumps({"event": "spamreport"}).encode(),
        }[case]
        headers = signer.headers(body)
    answer = client.post(PATH, content=body, headers=headers)
    assert answer.status_code == code
    assert message in answer.json()["error"]
    assert snapshot(svc, issue) == before
    # A refused event is not remembered: the genuine post, signed right, still applies.
    if code == 401:
        assert post(client, signer, payload).json()["applied"] == 1


def test_a_signed_replay_of_a_tampered_body_is_refused(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    issue, (a, _, _) = sent
    genuine = json.dumps([event("delivered", a, issue, 1)]).encode()
    headers = signer.headers(genuine)
    forged = genuine.replace(b"delivered", b"spamreport")
    assert client.post(PATH, content=forged, headers=headers).status_code == 401
    assert status_of(app_services, a) == "active"


def test_without_a_configured_key_every_post_is_refused(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    issue, (a, _, _) = sent
    app_services.settings = app_services.settings.model_copy(
        update={"sendgrid_webhook_public_key": ""}
    )
    answer = post(client, signer, [event("spamreport", a, issue, 1)])
    assert answer.status_code == 503
    assert "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.json()["error"]
    assert status_of(app_services, a) == "active"


def test_events_for_strangers_are_ignored(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    issue, _ = sent
    stranger = event("bounce", 999_999, issue, 1, type="bounce")
    stranger["email"] = "nobody@example.net"
    answer = post(client, signer, [stranger])
    assert answer.json() == {"applied": 0, "duplicates": 0, "ignored": 1, "skipped": 0}


def test_the_web_app_mounts_the_webhook(
    signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    from newsletter.delivery.memory import MemoryBackend
    from subscribers.web_app import create_app

    issue, (a, _, _) = sent
    with TestClient(create_app(app_services, MemoryBackend())) as web:
        answer = post(web, signer, [event("spamreport", a, issue, 1)])
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    assert status_of(app_services, a) == "complained"


def test_bad_events_are_skipped_and_the_good_ones_beside_them_applied(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    """As found: deep nesting or an id beyond 64 bits answered 500, so nothing ever landed."""
    svc = app_services
    issue, (a, b, c) = sent
    deep_event = json.dumps(event("spamreport", c, issue, 3))[:-1] + ', "x": '
    deep_event += "[" * 100_000 + "]" * 100_000 + "}"
    body = (
        "["
        + ",".join(
            [
                json.dumps(event("spamreport", a, issue, 1)),
                "[" * 100_000 + "]" * 100_000,
                deep_event,
                json.dumps(event("spamreport", c, issue, 4, subscriber_id=str(2**64))),
                json.dumps(event("spamreport", c, issue, 5, issue_id=2**64)),
                json.dumps(event("bounce", c, issue, 6, timestamp=10**30, type="bounce")),
                json.dumps({"event": "spamreport", "email": email_of(svc, c)}),
                json.dumps(event("unsubscribe", b, issue, 2)),
            ]
        )
        + "]"
    ).encode()
    answer = post(client, signer, body)
    assert answer.status_code == 200
    assert answer.json() == {"applied": 3, "duplicates": 0, "ignored": 0, "skipped": 5}
    assert (status_of(svc, a), status_of(svc, b), status_of(svc, c)) == (
        "complained",
        "unsubscribed",
        "bounced",
    )


def test_oversized_posts_answer_413_and_change_nothing(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    """As found: a 20,000-event post got no answer within 30 s."""
    issue, (a, _, _) = sent
    before = snapshot(app_services, issue)
    many = [event("delivered", a, issue, n) for n in range(20_000)]
    answer = post(client, signer, many)
    assert answer.status_code == 413 and "bytes" in answer.json()["error"]
    small_but_many = json.dumps([{}] * (webhooks.MAX_EVENTS + 1)).encode()
    assert len(small_but_many) < webhooks.MAX_BODY
    answer = post(client, signer, small_but_many)
    assert answer.status_code == 413 and "events" in answer.json()["error"]
    assert snapshot(app_services, issue) == before


def test_a_post_of_5000_events_is_applied_fully_and_in_order(
    client: TestClient, signer: Signer, app_services: Services, sent: tuple[int, list[int]]
) -> None:
    """Events are applied a chunk per transaction: every chunk lands, later ones see earlier."""
    svc = app_services
    issue, _ = sent
    ids = add_readers(svc, 1000, start=100)
    ledger.claim(svc.engine, issue, [(i, "nlp") for i in ids])
    ledger.record(svc.engine, issue, [(i, SendResult("x", SendOutcome.SENT, "s")) for i in ids])

    def short(kind: str, n: int, reader: int, **extra: Any) -> dict[str, Any]:
        # Small events, so that 5,000 of them fit in one post's MAX_BODY.
        return {"event": kind, "sg_event_id": f"e{n}", "timestamp": 1732270000 + n,
                "issue_id": issue, "subscriber_id": reader, **extra}  # fmt: skip

    events = []
    for n in range(5000):
        phase, slot = divmod(n, 1000)
        reader, tenth = ids[slot], slot % 10
        if phase == 0:
            events.append(short("delivered", n, reader))
        elif phase == 1:
            events.append(short("open", n, reader))
        elif phase == 2 and tenth == 0:
            events.append(short("bounce", n, reader, type="bounce", reason="550 gone"))
        elif phase == 3 and tenth in (0, 1):
            events.append(short("spamreport", n, reader))  # the bounced stay bounced
        elif phase == 4 and tenth in (0, 1, 2):
            events.append(short("unsubscribe", n, reader))
        elif phase == 4 and tenth == 3:
            events.append(short("open", n, 10**9 + n))  # nobody we know
        else:
            events.append(short("processed", n, reader))  # known, no change
    body = json.dumps(events, separators=(",", ":")).encode()
    assert len(body) < webhooks.MAX_BODY

    answer = post(client, signer, body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"applied": 4900, "duplicates": 0, "ignored": 100, "skipped": 0}
    readers = {r.id: r for r in list_subscribers(svc.engine)}
    expected = ["bounced", "complained", "unsubscribed"] + ["active"] * 7
    assert [readers[i].status for i in ids] == expected * 100
    rows = {r.email: r for r in ledger.list_deliveries(svc.engine, issue)}
    mine = [rows[readers[i].email] for i in ids]
    assert all(r.delivered_at and r.opened_at for r in mine)
    assert [r.status for r in mine] == (["failed"] + ["sent"] * 9) * 100
    assert "550 gone" in mine[0].error
    assert post(client, signer, body).json()["duplicates"] == 5000

"""``newsletter bounces import``: DSN messages from an mbox, a Maildir or a directory."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery import ledger
from newsletter.delivery.bounces import import_bounces
from newsletter.issues import get_issue
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome
from subscribers.readers import get_by_id, set_status
from tests.delivery.conftest import SAMPLE_DATE, add_readers


def dsn(recipient: str, status: str, action: str = "failed", message_id: str = "") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    returned = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: news@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"\r\n'
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {status} mailbox says no\r\n"
        "\r\n"
        "--BOUND\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{returned}"
        "From: news@example.org\r\n"
        f"To: {recipient}\r\n"
        "Subject: AI papers\r\n"
        "\r\n"
        "--BOUND--\r\n"
    ).encode()


NOT_A_DSN = b"From: someone@example.net\r\nSubject: thanks!\r\n\r\nGreat newsletter.\r\n"


@pytest.fixture
def readers(ledger_services: Services) -> list[int]:
    """Four readers; the first three had the sample issue (SMTP message ids m0..m2)."""
    svc = ledger_services
    ids = add_readers(svc, 4)
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    ledger.claim(svc.engine, issue.id, [(i, "nlp") for i in ids[:3]])
    ledger.record(
        svc.engine,
        issue.id,
        [
            (i, SendResult("x", SendOutcome.SENT, f"<m{n}@example.org>"))
            for n, i in enumerate(ids[:3])
        ],
    )
    set_status(svc.engine, ids[3], "unsubscribed", "web")
    return ids


def status(svc: Services, subscriber_id: int) -> str:
    info = get_by_id(svc.engine, subscriber_id)
    assert info is not None
    return info.status


def messages() -> list[bytes]:
    return [
        dsn("reader0@example.com", "5.1.1", message_id="<m0@example.org>"),  # hard
        dsn("reader1@example.com", "4.2.2", action="delayed"),  # mailbox full: later
        dsn("READER2@example.com", "4.4.1"),  # temporary failure
        dsn("reader3@example.com", "5.1.1"),  # already unsubscribed
        dsn("stranger@example.net", "5.1.1"),  # not our reader
        NOT_A_DSN,
    ]


def test_an_mbox_of_bounces(ledger_services: Services, readers: list[int], tmp_path: Path) -> None:
    svc = ledger_services
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for data in messages():
        box.add(data)
    box.flush()
    box.close()
    report = import_bounces(svc.engine, tmp_path / "bounces.mbox")
    assert (report.messages, report.bounced, report.temporary) == (6, 1, 2)
    assert (report.already, report.unknown, report.not_dsn) == (1, 1, 1)
    assert [status(svc, i) for i in readers] == ["bounced", "active", "active", "unsubscribed"]
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    rows = {r.email: r for r in ledger.list_deliveries(svc.engine, issue.id)}
    assert rows["reader0@example.com"].status == "failed"
    assert "5.1.1" in rows["reader0@example.com"].error
    assert rows["reader1@example.com"].status == "sent"
    again = import_bounces(svc.engine, tmp_path / "bounces.mbox")
    assert (again.bounced, again.already) == (0, 2)  # importing twice changes nothing


def test_a_directory_and_a_maildir(
    ledger_services: Services, readers: list[int], tmp_path: Path
) -> None:
    svc = ledger_services
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "1.eml").write_bytes(dsn("reader1@example.com", "5.2.1"))
    (folder / "2.eml").write_bytes(NOT_A_DSN)
    assert import_bounces(svc.engine, folder).bounced == 1
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(dsn("reader2@example.com", "5.0.0"))
    assert import_bounces(svc.engine, tmp_path / "Maildir").bounced == 1
    single = tmp_path / "one.eml"
    single.write_bytes(dsn("reader0@example.com", "5.1.1"))
    assert import_bounces(svc.engine, single).bounced == 1
    assert [status(svc, i) for i in readers[:3]] == ["bounced"] * 3


def test_the_command_prints_one_line(
    ledger_services: Services,
    readers: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", ledger_services.settings.database_url)
    path = tmp_path / "b.eml"
    path.write_bytes(dsn("reader1@example.com", "5.1.1"))
    assert main(["bounces", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bounced: 1, already suppressed: 0") and out.count("\n") == 1
    assert status(ledger_services, readers[1]) == "bounced"


def test_a_missing_file_is_a_clear_error_and_changes_nothing(
    ledger_services: Services,
    readers: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", ledger_services.settings.database_url)
    assert main(["bounces", "import", str(tmp_path / "nope.mbox")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert [status(ledger_services, i) for i in readers[:3]] == ["active"] * 3

"""Sign-ups never confirmed are purged after a while; nobody else is ever touched."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.cli import main
from newsletter.db import table_of, utcnow
from subscribers import readers, signup
from subscribers.models import Subscriber


def _age(services: Services, email: str, days: int) -> None:
    table = table_of(Subscriber)
    with services.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.email == email)
            .values(created_at=utcnow() - dt.timedelta(days=days))
        )


def test_only_old_unconfirmed_sign_ups_are_purged(services: Services) -> None:
    tax = services.taxonomy
    signup.request_subscription(services.engine, tax, "old@example.com", ["nlp"], "ko")
    signup.request_subscription(services.engine, tax, "new@example.com", ["nlp"], "ko")
    readers.add_active(services.engine, tax, "reader@example.com")
    readers.add_active(services.engine, tax, "gone@example.com")
    readers.unsubscribe_address(services.engine, "gone@example.com")
    # A suppressed reader asking again stays suppressed until they confirm: never purged.
    signup.request_subscription(services.engine, tax, "gone@example.com", ["nlp"], "ko")
    for email in ("old@example.com", "reader@example.com", "gone@example.com"):
        _age(services, email, 40)

    assert signup.purge_unconfirmed(services.engine, dt.timedelta(days=30)) == 1
    left = {i.email: i.status for i in readers.list_subscribers(services.engine)}
    assert left == {
        "new@example.com": "pending",
        "reader@example.com": "active",
        "gone@example.com": "unsubscribed",
    }
    assert signup.purge_unconfirmed(services.engine, dt.timedelta(days=30)) == 0


def test_purge_command(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_url)
    assert main(["subscribers", "purge-pending", "--days", "0"]) == 2
    assert "--days must be 1 or more" in capsys.readouterr().err
    assert main(["subscribers", "purge-pending"]) == 0
    assert "purged: 0" in capsys.readouterr().out

"""Helpers for the service tests: a stored sample day and many readers, quickly."""

from __future__ import annotations

import datetime as dt
import os
import sys
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from newsletter.app import Services
from newsletter.preview import load_sample

SAMPLE_DATE = dt.date(2024, 11, 22)
ROOT = Path(__file__).resolve().parents[2]


def text_of(msg: EmailMessage) -> str:
    """The plain-text part of a mail."""
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, "the mail has no text/plain part"
    return str(part.get_content())


def add_readers(
    svc: Services, count: int, prefix: str = "reader", categories: tuple[str, ...] = ()
) -> None:
    """``count`` active readers (of every category by default), in one Core statement."""
    from newsletter.db import table_of
    from subscribers.models import Subscriber

    table = table_of(Subscriber)
    cats = ",".join(categories or svc.taxonomy.slugs)
    with svc.engine.begin() as conn:
        conn.execute(
            sa.insert(table),
            [
                {
                    "email": f"{prefix}{i}@example.com",
                    "categories": cats,
                    "language": "en",
                    "status": "active",
                }
                for i in range(count)
            ],
        )


def seed(svc: Services, readers: int = 2) -> dt.date:
    """The bundled sample day plus ``readers`` readers; returns the sample's date."""
    date = load_sample(svc)
    add_readers(svc, readers)
    return date


def cli_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a real ``newsletter`` subprocess: offline, file backend, this database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWSLETTER_") or k.endswith("PG_URL")
    }
    env.update(
        {
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_FEEDS": "[]",
            "NEWSLETTER_MAIL_BACKEND": "file",
            "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_LANGUAGE": "en",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def newsletter_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter.cli", *args]

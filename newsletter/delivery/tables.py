"""Tables of the delivery area besides the ledger itself (``db.DeliveryRow``).

``send_runs`` names every sending process, so that a row it left ``sending`` can be
told apart from a row another live process is mailing right now. ``provider_events``
remembers each provider event id once, so a replayed webhook changes nothing.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from newsletter.db import utcnow


class SendRunRow(SQLModel, table=True):
    """One ``newsletter send`` process working on one issue."""

    __tablename__ = "send_runs"

    run_id: str = Field(primary_key=True, max_length=32)
    issue_id: int = Field(index=True)
    host: str = Field(default="", max_length=255)
    pid: int = 0
    started_at: dt.datetime = Field(default_factory=utcnow)
    heartbeat_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None


class ProviderEventRow(SQLModel, table=True):
    """A provider event already applied (SendGrid's ``sg_event_id``)."""

    __tablename__ = "provider_events"

    event_id: str = Field(primary_key=True, max_length=255)
    kind: str = Field(default="", max_length=64)
    received_at: dt.datetime = Field(default_factory=utcnow)


SEND_RUNS: sa.Table = SendRunRow.__table__  # type: ignore[attr-defined]
PROVIDER_EVENTS: sa.Table = ProviderEventRow.__table__  # type: ignore[attr-defined]

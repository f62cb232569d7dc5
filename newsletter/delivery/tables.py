"""The delivery area's tables: the ledger itself, the send runs, and provider events.

``deliveries`` holds one row per (issue, reader), claimed before the mail goes out
(see ``delivery.ledger``). ``send_runs`` names every sending process, so that a row
it left ``sending`` can be told apart from a row another live process is mailing
right now (see ``delivery.send_runs``). ``provider_events`` remembers each provider
event id once, so a replayed webhook changes nothing. Other areas never query these
tables: they ask ``delivery.ledger``'s functions.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from newsletter.db import table_of, utcnow
from newsletter.statuses import DeliveryStatus


class DeliveryRow(SQLModel, table=True):
    """The ledger: one row per (issue, reader), claimed before the mail goes out."""

    __tablename__ = "deliveries"
    # uq_delivery serves every question about one issue's rows; no index on issue_id or
    # run_id alone (see migration b30c3b0bf0b6: the planner would pick them for rows it
    # has no statistics of yet, and read the whole issue for each page of a send).
    __table_args__ = (sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id")
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    status: str = Field(default=DeliveryStatus.SENDING.value, index=True)
    categories: str = ""
    message_id: str = ""
    error: str = ""
    updated_at: dt.datetime = Field(default_factory=utcnow)
    # The send run that claimed the row (``send_runs``), so a crashed run's rows can be told apart.
    run_id: str = Field(default="", max_length=32)
    delivered_at: dt.datetime | None = None  # from the provider's events
    opened_at: dt.datetime | None = None


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


DELIVERIES = table_of(DeliveryRow)
SEND_RUNS = table_of(SendRunRow)
PROVIDER_EVENTS = table_of(ProviderEventRow)

"""Subscriber tables: who reads, what they chose, and every change of their status.

A reader's status and cadence are the ``SubscriberStatus`` and ``Cadence`` enums of
``newsletter.statuses`` (with ``SUPPRESSED``, the statuses nobody but the reader may
revive), stored as their strings.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from newsletter.db import utcnow
from newsletter.statuses import Cadence, SubscriberStatus

#: Where a change came from, as recorded on every SubscriberEvent.
SOURCES = ("web", "one-click", "cli", "webhook", "import", "demo")


class Subscriber(SQLModel, table=True):
    __tablename__ = "subscribers"
    # A send pages the active readers by id (``recipients.recipient_pages``): one range
    # scan per page; counts by status use it too.
    __table_args__ = (sa.Index("ix_subscribers_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    # Stored lower-cased, so the unique index makes addresses unique case-insensitively.
    email: str = Field(sa_column=sa.Column(sa.String(320), unique=True, nullable=False))
    categories: str = ""  # slugs in taxonomy order, comma-joined: groupable in SQL
    language: str = "ko"
    status: str = Field(default=SubscriberStatus.PENDING.value)
    cadence: str = Cadence.DAILY.value
    # The weekday (0 = Monday .. 6 = Sunday) a weekly reader is mailed on; unused when daily.
    weekday: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: dt.datetime = Field(default_factory=utcnow)
    confirmed_at: dt.datetime | None = None
    # Set while a subscribe request waits for its confirmation and carried in the confirm
    # link; cleared on confirmation or any later status change, so an old link cannot
    # re-activate a reader who has since unsubscribed.
    confirm_nonce: str = Field(default="", max_length=32)
    updated_at: dt.datetime = Field(default_factory=utcnow)

    @property
    def category_list(self) -> tuple[str, ...]:
        return tuple(s for s in self.categories.split(",") if s)


class SubscriberEvent(SQLModel, table=True):
    """Audit trail: every status or preference change, when and through what."""

    __tablename__ = "subscriber_events"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    at: dt.datetime = Field(default_factory=utcnow)
    kind: str
    detail: str = ""
    source: str = "cli"

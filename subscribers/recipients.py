"""Who gets an issue: the active readers with their choices, streamed in keyset pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import table_of
from newsletter.statuses import SUPPRESSED, SubscriberStatus
from subscribers.models import Subscriber

SUBSCRIBERS = table_of(Subscriber)


class Recipient(NamedTuple):
    """One active reader as a send sees them (a tuple: a million are made per send)."""

    subscriber_id: int
    email: str
    categories: tuple[str, ...]
    language: str
    cadence: str = "daily"
    weekday: int = 0


def active_recipients(engine: Engine, batch: int = 5000) -> Iterator[Recipient]:
    """Every active reader in id order, read in keyset pages of ``batch`` (``id > last``).

    No page is held longer than it is read and no cursor stays open between pages, so
    a send of a million readers holds one page in memory and no long transaction.
    """
    for page in recipient_pages(engine, batch):
        yield from page


def recipient_pages(engine: Engine, batch: int = 5000) -> Iterator[list[Recipient]]:
    """The active readers in pages of at most ``batch``, in id order (keyset paging)."""
    table = SUBSCRIBERS
    query = (
        sa.select(
            table.c.id,
            table.c.email,
            table.c.categories,
            table.c.language,
            table.c.cadence,
            table.c.weekday,
        )
        .where(table.c.status == SubscriberStatus.ACTIVE, table.c.id > sa.bindparam("last"))
        .order_by(table.c.id)
        .limit(batch)
    )
    last = 0
    while True:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Read the page in index order (ix_subscribers_status_id). Without
                # statistics (a list just loaded) the planner would rather fetch every
                # active reader and sort them, for each page: quadratic in the list.
                conn.execute(sa.text("SET LOCAL enable_sort = off"))
            rows = conn.execute(query, {"last": last}).all()
        if not rows:
            return
        last = rows[-1][0]
        # A page has few distinct category strings: each is split once.
        split: dict[str, tuple[str, ...]] = {}
        page = []
        for sid, email, cats, language, cadence, weekday in rows:
            categories = split.get(cats)
            if categories is None:
                categories = split[cats] = tuple(s for s in cats.split(",") if s)
            page.append(Recipient(sid, email, categories, language, cadence, weekday))
        yield page
        if len(rows) < batch:
            return


def count_active(engine: Engine) -> int:
    """How many readers are active (what a send's progress bar counts towards)."""
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE)
        return int(conn.execute(query).scalar_one())


def count_not_mailable(engine: Engine) -> int:
    """Readers who said no, whose address is dead, or who paused: skipped by every send."""
    skipped = [*SUPPRESSED, SubscriberStatus.PAUSED]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(SUBSCRIBERS.c.status.in_(skipped))
        return int(conn.execute(query).scalar_one())

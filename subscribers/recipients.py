"""Who gets an issue: the active readers with their choices, streamed for large lists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import table_of
from newsletter.statuses import SUPPRESSED, SubscriberStatus
from subscribers.models import Subscriber

SUBSCRIBERS = table_of(Subscriber)


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    categories: tuple[str, ...]
    language: str
    cadence: str = "daily"
    weekday: int = 0


def active_recipients(engine: Engine, batch: int = 5000) -> Iterator[Recipient]:
    """Every active reader, streamed with Core (no ORM objects) for large lists."""
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
        .where(table.c.status == SubscriberStatus.ACTIVE)
        .order_by(table.c.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(query)
        for sid, email, cats, language, cadence, weekday in result:
            yield Recipient(
                sid, email, tuple(s for s in cats.split(",") if s), language, cadence, weekday
            )


def count_not_mailable(engine: Engine) -> int:
    """Readers who said no, whose address is dead, or who paused: skipped by every send."""
    skipped = [*SUPPRESSED, SubscriberStatus.PAUSED]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(SUBSCRIBERS.c.status.in_(skipped))
        return int(conn.execute(query).scalar_one())

"""The delivery ledger: claim a reader before mailing them, record the answer after.

A row is inserted as ``sending`` before the batch goes out (INSERT ... ON CONFLICT
DO NOTHING, so two racing senders cannot both claim a reader), then becomes
``sent``, ``failed`` (permanent) or ``deferred`` (retried by the next run). Rows
still ``sending`` when a run starts were left by a crash: the provider may or may
not have accepted them, so they become ``unknown`` and are not resent unless the
operator says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import DeliveryRow, utcnow
from newsletter.models import SendResult
from newsletter.store import insert_ignore

DELIVERIES = DeliveryRow.__table__  # type: ignore[attr-defined]
STATUSES = ("sending", "sent", "failed", "deferred", "unknown")
_RESULT_STATUS = {"sent": "sent", "rejected": "failed", "deferred": "deferred"}


def mark_stale_unknown(engine: Engine, issue_id: int) -> int:
    """Rows left ``sending`` by a crashed run become ``unknown``; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(DELIVERIES)
            .where(DELIVERIES.c.issue_id == issue_id, DELIVERIES.c.status == "sending")
            .values(
                status="unknown",
                error="interrupted before the provider's answer was stored",
                updated_at=utcnow(),
            )
        )
        return int(result.rowcount or 0)


def claim(
    engine: Engine,
    issue_id: int,
    readers: Sequence[tuple[int, str]],
    retry_statuses: Sequence[str] = ("deferred",),
) -> set[int]:
    """Claim (subscriber_id, categories) pairs for sending; returns the ids this run owns."""
    if not readers:
        return set()
    now = utcnow()
    ids = [sid for sid, _ in readers]
    with engine.begin() as conn:
        inserted = conn.execute(
            insert_ignore(engine, DELIVERIES).returning(DELIVERIES.c.subscriber_id),
            [
                {
                    "issue_id": issue_id,
                    "subscriber_id": sid,
                    "status": "sending",
                    "categories": cats,
                    "message_id": "",
                    "error": "",
                    "updated_at": now,
                }
                for sid, cats in readers
            ],
        ).all()
        owned = {row[0] for row in inserted}
        if retry_statuses:
            retried = conn.execute(
                sa.update(DELIVERIES)
                .where(
                    DELIVERIES.c.issue_id == issue_id,
                    DELIVERIES.c.subscriber_id.in_(ids),
                    DELIVERIES.c.status.in_(retry_statuses),
                )
                .values(status="sending", updated_at=now)
                .returning(DELIVERIES.c.subscriber_id)
            ).all()
            owned.update(row[0] for row in retried)
    return owned


def record(engine: Engine, issue_id: int, outcomes: Sequence[tuple[int, SendResult]]) -> None:
    """Store the provider's answer for each claimed reader."""
    if not outcomes:
        return
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.update(DELIVERIES)
            .where(
                DELIVERIES.c.issue_id == sa.bindparam("b_issue"),
                DELIVERIES.c.subscriber_id == sa.bindparam("b_sid"),
            )
            .values(
                status=sa.bindparam("b_status"),
                message_id=sa.bindparam("b_mid"),
                error=sa.bindparam("b_error"),
                updated_at=now,
            ),
            [
                {
                    "b_issue": issue_id,
                    "b_sid": sid,
                    "b_status": _RESULT_STATUS[r.status],
                    "b_mid": r.message_id,
                    "b_error": r.error[:500],
                }
                for sid, r in outcomes
            ],
        )


def counts(engine: Engine, issue_id: int) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERIES.c.status, sa.func.count())
            .where(DELIVERIES.c.issue_id == issue_id)
            .group_by(DELIVERIES.c.status)
        )
        return Counter({status: int(n) for status, n in rows})

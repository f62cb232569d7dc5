"""The ledger's hot path as few statements as possible, on SQLite and PostgreSQL.

A send of 100,000 readers claims and records them in batches of up to 1,000; each
batch must cost a handful of queries, not one per reader. These are the statements
``delivery.ledger`` runs for that; what they mean is written there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from newsletter.db import insert_ignore
from newsletter.delivery.tables import DELIVERIES
from newsletter.statuses import DeliveryStatus


def insert_claims(
    conn: Connection,
    issue_id: int,
    readers: Sequence[tuple[int, str]],
    run_id: str,
    now: dt.datetime,
) -> dict[int, int]:
    """INSERT the claims, skipping readers already in the ledger; returns the new ones.

    On PostgreSQL the ids travel as two arrays (``unnest``): a thousand rows of eight
    placeholders each cost psycopg more to parse than the database takes to insert.
    """
    if conn.dialect.name == "postgresql":
        sids = sa.bindparam("sids", [sid for sid, _ in readers], type_=postgresql.ARRAY(sa.Integer))
        kinds = {cats for _, cats in readers}
        if len(kinds) == 1:  # a batch is one rendering: its categories go once
            rows = sa.func.unnest(sids).table_valued("sid").render_derived(name="claims")
            categories: Any = sa.literal(kinds.pop())
        else:
            cats = sa.bindparam(
                "cats", [cats for _, cats in readers], type_=postgresql.ARRAY(sa.String)
            )
            rows = sa.func.unnest(sids, cats).table_valued("sid", "cats").render_derived("claims")
            categories = rows.c.cats
        source = sa.select(
            sa.literal(issue_id),
            rows.c.sid,
            sa.literal(DeliveryStatus.SENDING.value),
            categories,
            sa.literal(""),
            sa.literal(""),
            sa.literal(now, sa.DateTime(timezone=True)),
            sa.literal(run_id),
        )
        columns = ["issue_id", "subscriber_id", "status", "categories"]
        columns += ["message_id", "error", "updated_at", "run_id"]
        statement = (
            postgresql.insert(DELIVERIES)
            .from_select(columns, source)
            .on_conflict_do_nothing()
            .returning(DELIVERIES.c.subscriber_id, DELIVERIES.c.id)
        )
        return {sid: row_id for sid, row_id in conn.execute(statement)}
    inserted = conn.execute(
        insert_ignore(conn.engine, DELIVERIES).returning(
            DELIVERIES.c.subscriber_id, DELIVERIES.c.id
        ),
        [
            {
                "issue_id": issue_id,
                "subscriber_id": sid,
                "status": DeliveryStatus.SENDING,
                "categories": cats,
                "message_id": "",
                "error": "",
                "updated_at": now,
                "run_id": run_id,
            }
            for sid, cats in readers
        ],
    ).all()
    return {sid: row_id for sid, row_id in inserted}


def one_of(conn: Connection, column: sa.ColumnElement[int], ids: Sequence[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``, one parameter instead of thousands.

    Bounded by the smallest and largest id too: a batch's ids are close together, and
    the bound makes the matching index a range the planner prefers even when its
    statistics know nothing of the rows (those a send is writing right now).
    """
    if not ids:
        return sa.false()
    bound = column.between(min(ids), max(ids))
    if conn.dialect.name == "postgresql":
        array = sa.bindparam(None, list(ids), type_=postgresql.ARRAY(sa.Integer))
        return sa.and_(bound, column == sa.any_(array))
    return sa.and_(bound, column.in_(ids))


def claim_retries(
    conn: Connection,
    issue_id: int,
    ids: Sequence[int],
    retry_statuses: Sequence[str],
    run_id: str,
    now: dt.datetime,
) -> dict[int, int]:
    """Take rows in a retryable status; rows another process is taking are skipped.

    One statement (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``), so
    it is atomic on a connection without a transaction too.
    """
    where = (
        DELIVERIES.c.issue_id == issue_id,
        one_of(conn, DELIVERIES.c.subscriber_id, ids),
        DELIVERIES.c.status.in_(retry_statuses),
    )
    free = sa.select(DELIVERIES.c.id).where(*where).with_for_update(skip_locked=True)
    retried = conn.execute(
        sa.update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(free), *where)
        .values(status=DeliveryStatus.SENDING, run_id=run_id, error="", updated_at=now)
        .returning(DELIVERIES.c.subscriber_id, DELIVERIES.c.id)
    ).all()
    return {sid: row_id for sid, row_id in retried}


def write_answers(
    conn: Connection,
    key_column: sa.ColumnElement[int],
    where: Sequence[Any],
    groups: Mapping[tuple[DeliveryStatus, str, str], Sequence[int]],
    now: dt.datetime,
) -> None:
    """Store the answers: on PostgreSQL one ``UPDATE ... FROM unnest(...)`` for the whole
    batch (one statement: atomic without a transaction, one round trip); elsewhere one
    UPDATE per group of rows with the same (status, message id, error), and the rows
    alone in their group in one executemany."""
    if conn.dialect.name == "postgresql":
        _write_answers_pg(conn, key_column, where, groups, now)
        return
    singles: list[dict[str, object]] = []
    for (status, message_id, error), ids in groups.items():
        if len(ids) == 1:
            singles.append(
                {"b_key": ids[0], "b_status": status, "b_mid": message_id, "b_error": error}
            )
            continue
        conn.execute(
            sa.update(DELIVERIES)
            .where(one_of(conn, key_column, ids), *where)
            .values(status=status, message_id=message_id, error=error, updated_at=now)
        )
    if singles:
        conn.execute(
            sa.update(DELIVERIES)
            .where(key_column == sa.bindparam("b_key"), *where)
            .values(
                status=sa.bindparam("b_status"),
                message_id=sa.bindparam("b_mid"),
                error=sa.bindparam("b_error"),
                updated_at=now,
            ),
            singles,
        )


def _write_answers_pg(
    conn: Connection,
    key_column: sa.ColumnElement[int],
    where: Sequence[Any],
    groups: Mapping[tuple[DeliveryStatus, str, str], Sequence[int]],
    now: dt.datetime,
) -> None:
    if len(groups) == 1:  # a SendGrid request: one answer for all, one array of keys
        ((status, message_id, error), ids), *_ = groups.items()
        conn.execute(
            sa.update(DELIVERIES)
            .where(one_of(conn, key_column, ids), *where)
            .values(status=status, message_id=message_id, error=error, updated_at=now)
        )
        return
    keys: list[int] = []
    statuses: list[str] = []
    message_ids: list[str] = []
    errors: list[str] = []
    for (status, message_id, error), ids in groups.items():
        keys += ids
        statuses += [status.value] * len(ids)
        message_ids += [message_id] * len(ids)
        errors += [error] * len(ids)
    text = postgresql.ARRAY(sa.String)
    answers = (
        sa.func.unnest(
            sa.bindparam("keys", keys, type_=postgresql.ARRAY(sa.Integer)),
            sa.bindparam("statuses", statuses, type_=text),
            sa.bindparam("message_ids", message_ids, type_=text),
            sa.bindparam("errors", errors, type_=text),
        )
        .table_valued("key", "status", "message_id", "error")
        .render_derived(name="answers")
    )
    conn.execute(
        sa.update(DELIVERIES)
        .where(
            key_column == answers.c.key,
            key_column.between(min(keys), max(keys)),  # a range the planner always takes
            *where,
        )
        .values(
            status=answers.c.status,
            message_id=answers.c.message_id,
            error=answers.c.error,
            updated_at=now,
        )
    )

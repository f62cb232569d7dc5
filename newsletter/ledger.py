"""The delivery ledger: claim a reader before mailing them, record the answer after.

A row is inserted as ``sending`` before the batch goes out (INSERT ... ON CONFLICT
DO NOTHING, so two racing senders cannot both claim a reader; rows to retry are
taken with SELECT ... FOR UPDATE SKIP LOCKED), then becomes ``sent``, ``failed``
(permanent), ``deferred`` (retried by the next run) or ``unknown`` (the provider
may have taken it; never resent unless the operator says so).

Every claim names its ``SendRun``. A row still ``sending`` whose run is gone was
left by a crash (kill -9, power loss): the provider may or may not have accepted
it, so it becomes ``unknown``. A row whose run is alive is in flight and is left
alone, so two processes sending the same issue never judge each other's rows.
Whether a run is alive:

- PostgreSQL: the run holds a row lock on its ``send_runs`` row for its whole life
  (one open transaction on a dedicated connection). The server drops the lock when
  the process dies; ``SELECT ... FOR UPDATE SKIP LOCKED`` then returns that row.
- SQLite (one machine): the run's process id is gone, or its heartbeat is stale.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from newsletter.db import DeliveryRow, insert_ignore, utcnow
from newsletter.delivery.tables import SEND_RUNS
from newsletter.models import SendResult

DELIVERIES: sa.Table = DeliveryRow.__table__  # type: ignore[attr-defined]
STATUSES = ("sending", "sent", "failed", "deferred", "unknown")
RESULT_STATUS = {"sent": "sent", "rejected": "failed", "deferred": "deferred", "unknown": "unknown"}
#: On SQLite, a run whose heartbeat is older than this is presumed dead even if its pid lives.
STALE_AFTER = dt.timedelta(minutes=30)
STALE_REASON = "interrupted before the provider's answer was stored"

#: Runs of this process that have not finished (threads of one process share a pid).
_LOCAL_RUNS: set[str] = set()


class SendRun:
    """One sending process's identity in the ledger, for the length of a ``with`` block."""

    def __init__(self, engine: Engine, issue_id: int) -> None:
        self.engine = engine
        self.issue_id = issue_id
        self.id = secrets.token_hex(8)
        #: subscriber id -> ledger row id of rows claimed and not yet recorded, so the
        #: answer is written by primary key (the planner has no stats while a send fills
        #: the table, and would scan every row of the issue for each batch).
        self.rows: dict[int, int] = {}
        self._lease: Connection | None = None

    def __enter__(self) -> SendRun:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(SEND_RUNS).values(
                    run_id=self.id,
                    issue_id=self.issue_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        _LOCAL_RUNS.add(self.id)
        if self.engine.dialect.name == "postgresql":
            lease = self.engine.connect()
            lease.begin()
            lease.execute(
                sa.select(SEND_RUNS.c.run_id).where(SEND_RUNS.c.run_id == self.id).with_for_update()
            )
            self._lease = lease
        return self

    def beat(self) -> None:
        """Show that this run is alive (SQLite; PostgreSQL knows it from the held lock)."""
        if self._lease is None:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(SEND_RUNS)
                    .where(SEND_RUNS.c.run_id == self.id)
                    .values(heartbeat_at=utcnow())
                )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _LOCAL_RUNS.discard(self.id)
        finish = (
            sa.update(SEND_RUNS)
            .where(SEND_RUNS.c.run_id == self.id)
            .values(finished_at=utcnow(), heartbeat_at=utcnow())
        )
        if self._lease is not None:
            try:
                self._lease.execute(finish)
                self._lease.commit()
            finally:
                self._lease.close()
                self._lease = None
        else:
            with self.engine.begin() as conn:
                conn.execute(finish)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back without a zone; compare everything as naive UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: dead for our purpose
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _dead_runs(conn: Connection, issue_id: int, current: str) -> list[str]:
    """Unfinished runs of this issue, other than ``current``, whose process is gone."""
    unfinished = sa.select(SEND_RUNS.c.run_id, SEND_RUNS.c.host, SEND_RUNS.c.pid).where(
        SEND_RUNS.c.issue_id == issue_id,
        SEND_RUNS.c.finished_at.is_(None),
        SEND_RUNS.c.run_id != current,
    )
    if conn.dialect.name == "postgresql":
        # The rows we can lock are those no live run holds. A run created a moment ago
        # and not yet leased is among them, but it has claimed nothing, and while we
        # hold its row it cannot lease and claim until we commit.
        return [r[0] for r in conn.execute(unfinished.with_for_update(skip_locked=True))]
    here = socket.gethostname()
    horizon = _naive_utc(utcnow() - STALE_AFTER)
    rows = conn.execute(unfinished.add_columns(SEND_RUNS.c.heartbeat_at)).all()
    dead = []
    for run_id, host, pid, heartbeat in rows:
        if _naive_utc(heartbeat) < horizon:
            dead.append(run_id)
        elif host == here and pid == os.getpid():
            if run_id not in _LOCAL_RUNS:
                dead.append(run_id)
        elif host == here and not _pid_alive(pid):
            dead.append(run_id)
    return dead


def mark_stale_unknown(engine: Engine, issue_id: int, run: SendRun | None = None) -> int:
    """Rows left ``sending`` by a run that is gone become ``unknown``; returns how many."""
    current = run.id if run else ""
    with engine.begin() as conn:
        dead = _dead_runs(conn, issue_id, current)
        finished = sa.select(SEND_RUNS.c.run_id).where(SEND_RUNS.c.finished_at.is_not(None))
        mine = [DELIVERIES.c.run_id != current] if run else []
        result = conn.execute(
            sa.update(DELIVERIES)
            .where(
                DELIVERIES.c.issue_id == issue_id,
                DELIVERIES.c.status == "sending",
                *mine,
                sa.or_(
                    DELIVERIES.c.run_id.in_(dead),
                    DELIVERIES.c.run_id.in_(finished),
                    DELIVERIES.c.run_id.not_in(sa.select(SEND_RUNS.c.run_id)),
                ),
            )
            .values(status="unknown", error=STALE_REASON, updated_at=utcnow())
        )
        return int(result.rowcount or 0)


def claim(
    engine: Engine,
    issue_id: int,
    readers: Sequence[tuple[int, str]],
    retry_statuses: Sequence[str] = ("deferred",),
    run: SendRun | None = None,
) -> set[int]:
    """Claim (subscriber_id, categories) pairs for sending; returns the ids this run owns."""
    if not readers:
        return set()
    run_id = run.id if run else ""
    now = utcnow()
    with engine.begin() as conn:
        owned = _insert_claims(conn, issue_id, readers, run_id, now)
        rest = [sid for sid, _ in readers if sid not in owned]
        if retry_statuses and rest:
            owned.update(_claim_retries(conn, issue_id, rest, retry_statuses, run_id, now))
    if run is not None:
        run.rows.update(owned)
    return set(owned)


def _insert_claims(
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
        rows = (
            sa.func.unnest(
                sa.bindparam(
                    "sids", [sid for sid, _ in readers], type_=postgresql.ARRAY(sa.Integer)
                ),
                sa.bindparam(
                    "cats", [cats for _, cats in readers], type_=postgresql.ARRAY(sa.String)
                ),
            )
            .table_valued("sid", "cats")
            .render_derived(name="claims")
        )
        source = sa.select(
            sa.literal(issue_id),
            rows.c.sid,
            sa.literal("sending"),
            rows.c.cats,
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
                "status": "sending",
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


def _one_of(conn: Connection, column: sa.ColumnElement[int], ids: Sequence[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``, one parameter instead of thousands."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(ids), type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(ids)


def _claim_retries(
    conn: Connection,
    issue_id: int,
    ids: Sequence[int],
    retry_statuses: Sequence[str],
    run_id: str,
    now: dt.datetime,
) -> dict[int, int]:
    """Take rows in a retryable status; rows another process is taking are skipped."""
    where = (
        DELIVERIES.c.issue_id == issue_id,
        _one_of(conn, DELIVERIES.c.subscriber_id, ids),
        DELIVERIES.c.status.in_(retry_statuses),
    )
    locked = [
        row[0]
        for row in conn.execute(
            sa.select(DELIVERIES.c.id).where(*where).with_for_update(skip_locked=True)
        )
    ]
    if not locked:
        return {}
    retried = conn.execute(
        sa.update(DELIVERIES)
        .where(_one_of(conn, DELIVERIES.c.id, locked), *where)
        .values(status="sending", run_id=run_id, error="", updated_at=now)
        .returning(DELIVERIES.c.subscriber_id, DELIVERIES.c.id)
    ).all()
    return {sid: row_id for sid, row_id in retried}


def record(
    engine: Engine,
    issue_id: int,
    outcomes: Sequence[tuple[int, SendResult]],
    run: SendRun | None = None,
) -> None:
    """Store the provider's answer for each reader this run claimed.

    Readers with the same answer (a SendGrid request: one status, one message id)
    are updated by one statement, so a batch of 1,000 costs a handful of queries.
    """
    if not outcomes:
        return
    now = utcnow()
    # By row id when this run claimed the rows, else by (issue, subscriber).
    if run is not None and all(sid in run.rows for sid, _ in outcomes):
        key_column: sa.ColumnElement[int] = DELIVERIES.c.id
        keys = [run.rows[sid] for sid, _ in outcomes]
        where: list[Any] = [DELIVERIES.c.run_id == run.id]
    else:
        key_column = DELIVERIES.c.subscriber_id
        keys = [sid for sid, _ in outcomes]
        where = [DELIVERIES.c.issue_id == issue_id]
        if run is not None:
            where.append(DELIVERIES.c.run_id == run.id)
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for key, (_, result) in zip(keys, outcomes, strict=True):
        groups[(RESULT_STATUS[result.status], result.message_id, result.error[:500])].append(key)
    singles = []
    with engine.begin() as conn:
        for (status, message_id, error), ids in groups.items():
            if len(ids) == 1:
                singles.append(
                    {"b_key": ids[0], "b_status": status, "b_mid": message_id, "b_error": error}
                )
                continue
            conn.execute(
                sa.update(DELIVERIES)
                .where(_one_of(conn, key_column, ids), *where)
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
    if run is not None:
        for sid, _ in outcomes:
            run.rows.pop(sid, None)


def settled_ids(engine: Engine, issue_id: int, retry_statuses: Sequence[str]) -> set[int]:
    """Readers already in the ledger for good (sent, failed, unknown...): not to be claimed."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERIES.c.subscriber_id).where(
                DELIVERIES.c.issue_id == issue_id, DELIVERIES.c.status.not_in(retry_statuses)
            )
        )
        return {row[0] for row in rows}


def counts(engine: Engine, issue_id: int) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERIES.c.status, sa.func.count())
            .where(DELIVERIES.c.issue_id == issue_id)
            .group_by(DELIVERIES.c.status)
        )
        return Counter({status: int(n) for status, n in rows})


@dataclass(frozen=True)
class DeliveryInfo:
    """One reader's delivery of one issue, as ``newsletter deliveries`` lists it."""

    email: str
    status: str
    categories: str
    message_id: str
    error: str
    updated_at: dt.datetime
    delivered_at: dt.datetime | None
    opened_at: dt.datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "email": self.email,
            "status": self.status,
            "categories": [s for s in self.categories.split(",") if s],
            "message_id": self.message_id,
            "error": self.error,
            "updated_at": self.updated_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
        }


def list_deliveries(
    engine: Engine, issue_id: int, statuses: Iterable[str] | None = None
) -> list[DeliveryInfo]:
    """Every reader of an issue with their delivery status, in the order they were claimed."""
    from subscribers.models import Subscriber

    subscribers: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(
            subscribers.c.email,
            DELIVERIES.c.status,
            DELIVERIES.c.categories,
            DELIVERIES.c.message_id,
            DELIVERIES.c.error,
            DELIVERIES.c.updated_at,
            DELIVERIES.c.delivered_at,
            DELIVERIES.c.opened_at,
        )
        .join(subscribers, subscribers.c.id == DELIVERIES.c.subscriber_id)
        .where(DELIVERIES.c.issue_id == issue_id)
        .order_by(DELIVERIES.c.id)
    )
    wanted = list(statuses or ())
    if wanted:
        query = query.where(DELIVERIES.c.status.in_(wanted))
    with engine.connect() as conn:
        return [DeliveryInfo(*row) for row in conn.execute(query)]


def note_event(
    engine: Engine,
    issue_id: int,
    subscriber_id: int,
    kind: str,
    at: dt.datetime,
    reason: str = "",
) -> bool:
    """Apply a provider event to a ledger row: delivered, opened, or failed after all.

    Returns False when the ledger has no such row (an event for another sender).
    """
    where = (DELIVERIES.c.issue_id == issue_id, DELIVERIES.c.subscriber_id == subscriber_id)
    values: dict[str, object]
    if kind == "delivered":
        values = {"delivered_at": at}
    elif kind == "open":
        values = {"opened_at": at}
    else:
        values = {"status": "failed", "error": f"{kind}: {reason}"[:500], "updated_at": utcnow()}
    with engine.begin() as conn:
        result = conn.execute(sa.update(DELIVERIES).where(*where).values(**values))
        return bool(result.rowcount)


def fail_by_message_id(engine: Engine, message_id: str, reason: str) -> int:
    """Mark the delivery that carried ``message_id`` failed (a bounce came back)."""
    if not message_id:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(DELIVERIES)
            .where(DELIVERIES.c.message_id == message_id)
            .values(status="failed", error=reason[:500], updated_at=utcnow())
        )
        return int(result.rowcount or 0)


def latest_issue(engine: Engine) -> tuple[int, dt.date] | None:
    """The newest issue that has deliveries: what ``newsletter deliveries`` shows by default."""
    from newsletter.db import IssueRow

    issues: sa.Table = IssueRow.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(issues.c.id, issues.c.date)
        .where(sa.exists().where(DELIVERIES.c.issue_id == issues.c.id))
        .order_by(issues.c.date.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (int(row[0]), row[1]) if row else None

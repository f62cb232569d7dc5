"""The delivery ledger: claim a reader before mailing them, record the answer after.

A row is inserted as ``sending`` before the batch goes out (INSERT ... ON CONFLICT
DO NOTHING, so two racing senders cannot both claim a reader; rows to retry are
taken with SELECT ... FOR UPDATE SKIP LOCKED), then becomes ``sent``, ``failed``
(permanent), ``deferred`` (retried by the next run) or ``unknown`` (the provider
may have taken it; never resent unless the operator says so). Every claim names its
``SendRun`` (``delivery.send_runs``), so rows a crashed run left ``sending`` can be
told from rows a live run is mailing.

This module owns the ``deliveries`` table: other areas ask it questions through its
functions (``settled_ids``, ``counts``, ``last_mailed``, ``has_deliveries`` ...)
and never query the table themselves. ``RunLedger`` is what the dispatcher is given.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from newsletter.db import table_of, utcnow
from newsletter.delivery.bulk import claim_retries, insert_claims, one_of, write_answers

# A send run is part of the ledger's API: callers write ``ledger.SendRun(...)``.
from newsletter.delivery.send_runs import SendRun as SendRun
from newsletter.delivery.send_runs import mark_stale_unknown as mark_stale_unknown
from newsletter.delivery.tables import DELIVERIES
from newsletter.issues import ISSUES
from newsletter.models import SendResult
from newsletter.statuses import DeliveryStatus, SendOutcome

#: The ledger status each backend answer leaves on the reader's row.
RESULT_STATUS: dict[SendOutcome, DeliveryStatus] = {
    SendOutcome.SENT: DeliveryStatus.SENT,
    SendOutcome.REJECTED: DeliveryStatus.FAILED,
    SendOutcome.DEFERRED: DeliveryStatus.DEFERRED,
    SendOutcome.UNKNOWN: DeliveryStatus.UNKNOWN,
}
#: Ledger states that mean a mail went (or may have gone) out to the reader.
MAILED: tuple[DeliveryStatus, ...] = (
    DeliveryStatus.SENT,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SENDING,
)
#: Days, counting the send's own date, within which ``last_mailed`` looks (one week).
_WEEK = 7
#: Ids per query when a question names many readers (SQLite allows 32,766 parameters).
_CHUNK = 5000


def claim(
    bind: Engine | Connection,
    issue_id: int,
    readers: Sequence[tuple[int, str]],
    retry_statuses: Sequence[str] = (DeliveryStatus.DEFERRED,),
    run: SendRun | None = None,
) -> set[int]:
    """Claim (subscriber_id, categories) pairs for sending; returns the ids this run owns."""
    if not readers:
        return set()
    run_id = run.id if run else ""
    now = utcnow()
    with _transaction(bind) as conn:
        owned = insert_claims(conn, issue_id, readers, run_id, now)
        rest = [sid for sid, _ in readers if sid not in owned]
        if retry_statuses and rest:
            owned.update(claim_retries(conn, issue_id, rest, retry_statuses, run_id, now))
    if run is not None:
        run.rows.update(owned)
    return set(owned)


def record(
    bind: Engine | Connection,
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
    groups: dict[tuple[DeliveryStatus, str, str], list[int]] = defaultdict(list)
    for key, (_, result) in zip(keys, outcomes, strict=True):
        groups[(RESULT_STATUS[result.status], result.message_id, result.error[:500])].append(key)
    with _transaction(bind) as conn:
        write_answers(conn, key_column, where, groups, now)
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


def settled_among(
    engine: Engine, issue_id: int, subscriber_ids: Sequence[int], retry_statuses: Sequence[str]
) -> set[int]:
    """Those of ``subscriber_ids`` already in the ledger for good (one page of a stream)."""
    if not subscriber_ids:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERIES.c.subscriber_id).where(
                DELIVERIES.c.issue_id == issue_id,
                one_of(conn, DELIVERIES.c.subscriber_id, subscriber_ids),
                DELIVERIES.c.status.not_in(retry_statuses),
            )
        )
        return {int(row[0]) for row in rows}


def counts(engine: Engine, issue_id: int) -> Counter[str]:
    """How many of an issue's readers are in each ledger status."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERIES.c.status, sa.func.count())
            .where(DELIVERIES.c.issue_id == issue_id)
            .group_by(DELIVERIES.c.status)
        )
        return Counter({str(status): int(n) for status, n in rows})


@dataclass(frozen=True)
class DeliveryInfo:
    """One reader's delivery of one issue, as ``newsletter deliveries`` lists it."""

    email: str
    status: DeliveryStatus
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

    subscribers = table_of(Subscriber)
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
        rows = conn.execute(query).all()
    return [DeliveryInfo(email, DeliveryStatus(status), *rest) for email, status, *rest in rows]


def fail_by_message_id(engine: Engine, message_id: str, reason: str) -> int:
    """Mark the delivery that carried ``message_id`` failed (a bounce came back)."""
    if not message_id:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(DELIVERIES)
            .where(DELIVERIES.c.message_id == message_id)
            .values(status=DeliveryStatus.FAILED, error=reason[:500], updated_at=utcnow())
        )
        return int(result.rowcount or 0)


def latest_issue(engine: Engine) -> tuple[int, dt.date] | None:
    """The newest issue that has deliveries: what ``newsletter deliveries`` shows by default."""
    query = (
        sa.select(ISSUES.c.id, ISSUES.c.date)
        .where(sa.exists().where(DELIVERIES.c.issue_id == ISSUES.c.id))
        .order_by(ISSUES.c.date.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (int(row[0]), row[1]) if row else None


def last_mailed(engine: Engine, subscriber_ids: Iterable[int], date: dt.date) -> dict[int, dt.date]:
    """Each reader's newest issue date before ``date`` (within a week) the ledger mailed them.

    Any mail counts, daily or weekly: a reader who switches to weekly mid-week is not
    mailed twice in one window. Issue ``date`` itself is left to its own ledger rows
    (a re-run of ``date`` skips or retries them as for every reader).
    """
    ids = list(subscriber_ids)
    if not ids:
        return {}
    since = date - dt.timedelta(days=_WEEK - 1)
    query = (
        sa.select(DELIVERIES.c.subscriber_id, sa.func.max(ISSUES.c.date))
        .join(ISSUES, ISSUES.c.id == DELIVERIES.c.issue_id)
        .where(
            ISSUES.c.date >= since,
            ISSUES.c.date < date,
            DELIVERIES.c.status.in_(MAILED),
            DELIVERIES.c.subscriber_id.in_(sa.bindparam("ids", expanding=True)),
        )
        .group_by(DELIVERIES.c.subscriber_id)
    )
    found: dict[int, dt.date] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            for sid, last in conn.execute(query, {"ids": ids[start : start + _CHUNK]}):
                found[int(sid)] = last
    return found


def has_deliveries(bind: Engine | Connection, subscriber_ids: Iterable[int]) -> set[int]:
    """Those of ``subscriber_ids`` that the ledger holds any row for, of any issue.

    A reader with a ledger row was mailed (or about to be): their row must stay, and
    the subscriber area keeps them. ``bind`` may be a connection, so the caller can ask
    inside the transaction in which it acts on the answer.
    """
    ids = list(subscriber_ids)
    if not ids:
        return set()
    query = (
        sa.select(DELIVERIES.c.subscriber_id)
        .where(DELIVERIES.c.subscriber_id.in_(sa.bindparam("ids", expanding=True)))
        .distinct()
    )
    found: set[int] = set()
    with _connection(bind) as conn:
        for start in range(0, len(ids), _CHUNK):
            rows = conn.execute(query, {"ids": ids[start : start + _CHUNK]})
            found.update(int(row[0]) for row in rows)
    return found


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction on ``bind`` (a connection kept by the caller, or a new one)."""
    if isinstance(bind, Connection):
        with bind.begin():
            yield bind
        return
    with bind.begin() as conn:
        yield conn


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    """``bind`` itself when it is a connection, else a new one closed afterwards."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as conn:
        yield conn


class RunLedger:
    """The ledger of one issue as one send run uses it: what the dispatcher is given.

    It binds the engine, the issue and the run, so the dispatcher speaks only of
    readers and answers (``dispatch.Ledger``), never of SQL. The dispatcher's workers
    call it at once, so each worker thread keeps its own connection for the run
    (closed by ``close`` or ``with``): no pool checkout and ping per batch. On
    PostgreSQL those connections commit each statement as it runs: a claim is one
    INSERT and an answer one UPDATE, each atomic and durable on its own, and the
    workers' statements run side by side. SQLite takes one writer at a time: there
    the workers take turns (a lock here, not SQLite's busy wait).
    """

    def __init__(
        self,
        engine: Engine,
        issue_id: int,
        run: SendRun,
        retry_statuses: tuple[str, ...] = (DeliveryStatus.DEFERRED,),
    ) -> None:
        self.engine = engine
        self.issue_id = issue_id
        self.run = run
        self.retry_statuses = retry_statuses
        self._local = threading.local()
        self._opened: list[Connection] = []
        self._opening = threading.Lock()
        self._turn = threading.Lock()  # SQLite: one worker writes at a time
        self._serial = engine.dialect.name != "postgresql"

    def __enter__(self) -> RunLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bind(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.invalidated:
            conn = self.engine.connect()
            if not self._serial:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
            with self._opening:
                self._opened.append(conn)
        return conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """This thread's connection, alone on it among the workers where the database
        takes one writer at a time."""
        if not self._serial:
            yield self._bind()
            return
        with self._turn:
            yield self._bind()

    def close(self) -> None:
        """Give the workers' connections back to the pool (once the workers are done)."""
        with self._opening:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    def claim(self, readers: Sequence[tuple[int, str]]) -> set[int]:
        """Claim (subscriber_id, categories) pairs; returns the ids this run now owns."""
        with self._writing() as conn:
            return claim(conn, self.issue_id, readers, self.retry_statuses, self.run)

    def record(self, outcomes: Sequence[tuple[int, SendResult]]) -> None:
        """Store the backend's answer for readers this run claimed."""
        with self._writing() as conn:
            record(conn, self.issue_id, outcomes, self.run)

    def beat(self) -> None:
        """Show that the run is alive."""
        if self._serial:
            with self._turn:
                self.run.beat()
        else:
            self.run.beat()

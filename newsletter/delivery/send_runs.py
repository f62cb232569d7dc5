"""Which sending processes are alive, so rows a dead one left ``sending`` become ``unknown``.

Every claim in the ledger names its ``SendRun``. A row still ``sending`` whose run is
gone was left by a crash (kill -9, power loss): the provider may or may not have
accepted it, so it becomes ``unknown``. A row whose run is alive is in flight and is
left alone, so two processes sending the same issue never judge each other's rows.
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
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from newsletter.db import utcnow
from newsletter.delivery.tables import DELIVERIES, SEND_RUNS
from newsletter.statuses import DeliveryStatus

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
                DELIVERIES.c.status == DeliveryStatus.SENDING,
                *mine,
                sa.or_(
                    DELIVERIES.c.run_id.in_(dead),
                    DELIVERIES.c.run_id.in_(finished),
                    DELIVERIES.c.run_id.not_in(sa.select(SEND_RUNS.c.run_id)),
                ),
            )
            .values(status=DeliveryStatus.UNKNOWN, error=STALE_REASON, updated_at=utcnow())
        )
        return int(result.rowcount or 0)

"""One run per issue date across processes sharing a database.

Two schedulers (replicas) or a scheduler and a cron-driven ``run-once`` may both
decide that today's issue is due. The one that takes the date's lock prepares and
sends it; the other skips the date and says so.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
  dedicated connection for the whole run. The server drops it when the connection
  dies, so a crashed or killed process never blocks the next run. The key hashes
  the schema and the date, so installations sharing one database in different
  schemas do not block each other.
- SQLite (one machine): a unique claim row per date naming the owner (host and pid).
  A claim whose process is gone (crash, ``kill -9``) or that is older than
  ``STALE_AFTER`` is taken over with a compare-and-swap update.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from newsletter.db import table_of, utcnow

log = logging.getLogger(__name__)

#: A claim row older than this is presumed abandoned even if its process looks alive.
STALE_AFTER = dt.timedelta(hours=6)

_PG_KEY = "hashtextextended('newsletter-run:' || current_schema() || ':' || :day, 0)"


class RunClaim(SQLModel, table=True):
    """SQLite's lock: at most one row per date, owned by one process."""

    __tablename__ = "run_claims"

    date: dt.date = Field(primary_key=True)
    owner: str = Field(max_length=200)
    claimed_at: dt.datetime = Field(default_factory=utcnow)


CLAIMS = table_of(RunClaim)


def owner_id() -> str:
    """This process, as ``host:pid:nonce`` (the nonce tells apart a reused pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def date_lock(engine: Engine, date: dt.date) -> Iterator[bool]:
    """Hold the run lock of ``date`` for the block; yields False when another process has it."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, date) as held:
            yield held
    else:
        with _claim_row(engine, date) as held:
            yield held


@contextmanager
def _advisory_lock(engine: Engine, date: dt.date) -> Iterator[bool]:
    conn = engine.connect()
    held = False
    try:
        held = bool(
            conn.execute(
                sa.text(f"SELECT pg_try_advisory_lock({_PG_KEY})"), {"day": date.isoformat()}
            ).scalar()
        )
        # End the implicit transaction: the lock is session-level and outlives it.
        conn.commit()
        yield held
    finally:
        _release_advisory(conn, date, held)


def _release_advisory(conn: sa.Connection, date: dt.date, held: bool) -> None:
    try:
        if held:
            conn.execute(
                sa.text(f"SELECT pg_advisory_unlock({_PG_KEY})"), {"day": date.isoformat()}
            )
            conn.commit()
    except sa.exc.SQLAlchemyError as exc:
        # Closing the server connection releases every lock it held.
        log.warning("could not release the run lock of %s (%s); dropping the connection", date, exc)
        conn.invalidate()
    finally:
        conn.close()


@contextmanager
def _claim_row(engine: Engine, date: dt.date) -> Iterator[bool]:
    owner = owner_id()
    held = _claim(engine, date, owner)
    try:
        yield held
    finally:
        if held:
            with engine.begin() as conn:
                conn.execute(
                    sa.delete(CLAIMS).where(CLAIMS.c.date == date, CLAIMS.c.owner == owner)
                )


def _claim(engine: Engine, date: dt.date, owner: str) -> bool:
    from newsletter.db import insert_ignore

    now = utcnow()
    with engine.begin() as conn:
        inserted = conn.execute(
            insert_ignore(engine, CLAIMS).returning(CLAIMS.c.owner),
            [{"date": date, "owner": owner, "claimed_at": now}],
        ).all()
        if inserted:
            return True
        row = conn.execute(
            sa.select(CLAIMS.c.owner, CLAIMS.c.claimed_at).where(CLAIMS.c.date == date)
        ).first()
        if row is None or not _abandoned(row.owner, row.claimed_at, now):
            return False
        taken = conn.execute(
            sa.update(CLAIMS)
            .where(CLAIMS.c.date == date, CLAIMS.c.owner == row.owner)
            .values(owner=owner, claimed_at=now)
        )
        if taken.rowcount == 1:
            log.warning("took over the run claim of %s left by %s", date, row.owner)
            return True
        return False


def _abandoned(owner: str, claimed_at: dt.datetime, now: dt.datetime) -> bool:
    return now - claimed_at > STALE_AFTER or owner_gone(owner)


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` (from ``owner_id``) was a process on this host that has ended."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not _alive(int(pid_text))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

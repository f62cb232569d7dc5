"""The service's memory in the database: each scheduled run, and each scheduler's heartbeat.

Runs answer "did the last scheduled time pass without a completed run?" (catch-up
at start) and "what failed?" (``newsletter status``). Heartbeats let any process
(``newsletter status``, ``/healthz`` of a web-only replica) tell whether some
scheduler is alive. Times are aware UTC (sqlmodel's UTCDateTime) on both databases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from newsletter.db import table_of, utcnow
from newsletter.statuses import RUN_COMPLETED, RunOutcome


class ServiceRun(SQLModel, table=True):
    """One attempt of the daily job: when, why, for which issue date, and how it ended."""

    __tablename__ = "service_runs"

    id: int | None = Field(default=None, primary_key=True)
    trigger: str = Field(default="schedule", max_length=20)  # schedule | catch-up | manual | cron
    scheduled_for: dt.datetime | None = None
    started_at: dt.datetime = Field(index=True)
    finished_at: dt.datetime | None = Field(default=None, index=True)
    owner: str = Field(default="", max_length=200)
    date: dt.date | None = None
    outcome: str = Field(default=RunOutcome.RUNNING.value, max_length=20)
    detail: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))


class SchedulerBeat(SQLModel, table=True):
    """A live scheduler process, refreshed every ``HEARTBEAT`` and removed at shutdown."""

    __tablename__ = "scheduler_heartbeats"

    owner: str = Field(primary_key=True, max_length=200)
    started_at: dt.datetime
    beat_at: dt.datetime
    next_run_time: dt.datetime | None = None


RUNS = table_of(ServiceRun)
BEATS = table_of(SchedulerBeat)
HEARTBEAT = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class RunRecord:
    id: int
    trigger: str
    scheduled_for: dt.datetime | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    date: dt.date | None
    outcome: RunOutcome
    detail: str

    def as_json(self) -> dict[str, object]:
        return {
            "trigger": self.trigger,
            "scheduled_for": self.scheduled_for and self.scheduled_for.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at and self.finished_at.isoformat(),
            "date": self.date and self.date.isoformat(),
            "outcome": self.outcome,
            "detail": self.detail,
        }


def start_run(engine: Engine, trigger: str, scheduled_for: dt.datetime | None, owner: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(RUNS)
            .values(
                trigger=trigger,
                scheduled_for=scheduled_for,
                started_at=utcnow(),
                owner=owner,
                outcome=RunOutcome.RUNNING,
                detail="",
            )
            .returning(RUNS.c.id)
        )
        return int(result.scalar_one())


def finish_run(
    engine: Engine, run_id: int, outcome: str, date: dt.date | None, detail: str
) -> None:
    """Store how run ``run_id`` ended; ``outcome`` is a ``RunOutcome`` (ValueError if not)."""
    ended = RunOutcome(outcome)
    with engine.begin() as conn:
        conn.execute(
            sa.update(RUNS)
            .where(RUNS.c.id == run_id)
            .values(outcome=ended, date=date, detail=detail, finished_at=utcnow())
        )


def close_interrupted(engine: Engine, gone: Callable[[str], bool]) -> int:
    """Runs still ``running`` whose process has ended (killed, crashed) become ``failed``."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(RUNS.c.id, RUNS.c.owner).where(RUNS.c.outcome == RunOutcome.RUNNING)
        )
        ended = [r.id for r in rows if gone(r.owner)]
        if ended:
            conn.execute(
                sa.update(RUNS)
                .where(RUNS.c.id.in_(ended))
                .values(
                    outcome=RunOutcome.FAILED,
                    detail="interrupted: the process ended before the run finished",
                    finished_at=utcnow(),
                )
            )
    return len(ended)


def completed_since(engine: Engine, since: dt.datetime) -> bool:
    """Whether some run finished with a completed outcome at or after ``since``."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(RUNS.c.id)
            .where(RUNS.c.finished_at >= since, RUNS.c.outcome.in_(RUN_COMPLETED))
            .limit(1)
        ).first()
        return found is not None


def recent_runs(engine: Engine, limit: int = 5) -> list[RunRecord]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(RUNS).order_by(RUNS.c.id.desc()).limit(limit)).all()
    return [
        RunRecord(
            id=r.id,
            trigger=r.trigger,
            scheduled_for=r.scheduled_for,
            started_at=r.started_at,
            finished_at=r.finished_at,
            date=r.date,
            outcome=RunOutcome(r.outcome),
            detail=r.detail,
        )
        for r in rows
    ]


def beat(
    engine: Engine, owner: str, started_at: dt.datetime, next_run_time: dt.datetime | None
) -> None:
    """Insert or refresh this scheduler's heartbeat."""
    values = {
        "beat_at": utcnow(),
        "next_run_time": next_run_time,
    }
    with engine.begin() as conn:
        updated = conn.execute(sa.update(BEATS).where(BEATS.c.owner == owner).values(**values))
        if not updated.rowcount:
            conn.execute(sa.insert(BEATS).values(owner=owner, started_at=started_at, **values))


def drop_beat(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(BEATS).where(BEATS.c.owner == owner))


@dataclass(frozen=True)
class Beat:
    owner: str
    beat_at: dt.datetime
    next_run_time: dt.datetime | None


def live_schedulers(engine: Engine, now: dt.datetime | None = None) -> list[Beat]:
    """Schedulers whose heartbeat is fresher than three beats."""
    cutoff = (now or utcnow()) - 3 * HEARTBEAT
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(BEATS).where(BEATS.c.beat_at >= cutoff).order_by(BEATS.c.beat_at.desc())
        ).all()
    return [Beat(r.owner, r.beat_at, r.next_run_time) for r in rows]

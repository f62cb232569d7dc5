"""The scheduler's job store as a table: its name, the daily job's id, its next run time.

APScheduler keeps the daily job in the database (``scheduler.DailyScheduler``) so that
every replica sees one schedule. ``newsletter status`` and ``/healthz`` read the next
run time straight from that table, so they need neither APScheduler nor a scheduler
running in their own process.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

JOB_ID = "daily-issue"
JOBS_TABLE = "apscheduler_jobs"


def stored_next_run(engine: Engine) -> dt.datetime | None:
    """The daily job's next run time as the job store has it (any replica's scheduler)."""
    table = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(JOBS_TABLE):
            return None
        stamp = conn.execute(
            sa.select(table.c.next_run_time).where(table.c.id == JOB_ID)
        ).scalar_one_or_none()
    return None if stamp is None else dt.datetime.fromtimestamp(float(stamp), dt.UTC)

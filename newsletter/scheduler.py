"""APScheduler 3 wiring only: when the daily job fires, and nothing about what it does.

The daily job lives in the database's job store (SQLAlchemyJobStore), so every
replica sees the same schedule. A persistent store keeps a textual reference to
the job function, not a closure, so the function (``fire``) looks up this
process's runner by job id in ``_RUNNERS``: the one piece of module state, filled
by ``DailyScheduler.start`` and emptied by ``shutdown``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from newsletter.errors import ConfigurationError
from newsletter.schedule_store import JOB_ID, JOBS_TABLE

log = logging.getLogger(__name__)

#: (trigger label, scheduled fire time or None) -> whatever the runner returns.
Job = Callable[[str, dt.datetime | None], object]

_RUNNERS: dict[str, Callable[[], None]] = {}


def parse_trigger(schedule: str, timezone: str) -> CronTrigger:
    """The daily trigger, or a one-line ConfigurationError naming the bad setting."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"NEWSLETTER_TIMEZONE={timezone!r} is not an IANA time zone; use e.g. Asia/Seoul"
        ) from exc
    try:
        return CronTrigger.from_crontab(schedule, timezone=zone)
    except ValueError as exc:
        raise ConfigurationError(
            f"NEWSLETTER_SCHEDULE={schedule!r} is not a crontab expression ({exc}); "
            "use five fields, e.g. '0 7 * * *' for 07:00 every day"
        ) from exc


def last_fire_time(
    trigger: CronTrigger, now: dt.datetime, lookback: dt.timedelta
) -> dt.datetime | None:
    """The newest fire time in ``(now - lookback, now]``, or None."""
    fire = trigger.get_next_fire_time(None, now - lookback)
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return last


def fire(job_id: str) -> None:
    """The job function stored in the job store: runs this process's runner for ``job_id``."""
    runner = _RUNNERS.get(job_id)
    if runner is None:
        log.warning("job %s fired in a process that has no runner for it; skipped", job_id)
        return
    runner()


class DailyScheduler:
    """The daily job at NEWSLETTER_SCHEDULE in NEWSLETTER_TIMEZONE, plus a heartbeat."""

    def __init__(
        self,
        engine: Engine,
        schedule: str,
        timezone: str,
        job: Job,
        *,
        misfire_grace: dt.timedelta,
        heartbeat: Callable[[dt.datetime | None], None] | None = None,
        heartbeat_every: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        self.trigger = parse_trigger(schedule, timezone)
        self.zone = ZoneInfo(timezone)
        self.misfire_grace = misfire_grace
        self._job = job
        self._heartbeat = heartbeat
        self._heartbeat_every = heartbeat_every
        self._pending_label = "schedule"
        self._engine = engine
        self._store = SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)
        self.scheduler = BackgroundScheduler(
            timezone=self.zone,
            jobstores={
                "default": self._store,
                "local": MemoryJobStore(),
            },
            # The heartbeat has its own thread so a long send does not look like a dead scheduler.
            executors={"default": ThreadPoolExecutor(1), "beat": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(misfire_grace.total_seconds()),
            },
        )

    def start(self, *, run_now: bool = False) -> None:
        """Start firing; ``run_now`` runs the job at once (labelled catch-up), then on schedule."""
        now = dt.datetime.now(self.zone)
        self._create_job_table()
        _RUNNERS[JOB_ID] = self._run
        self.scheduler.add_job(
            fire,
            self.trigger,
            args=[JOB_ID],
            id=JOB_ID,
            name="daily issue",
            replace_existing=True,
            **({"next_run_time": now} if run_now else {}),
        )
        if run_now:
            self._pending_label = "catch-up"
        if self._heartbeat is not None:
            self.scheduler.add_job(
                self._beat,
                IntervalTrigger(seconds=self._heartbeat_every.total_seconds()),
                id="heartbeat",
                jobstore="local",
                executor="beat",
                next_run_time=now,
            )
        self.scheduler.start()
        log.info("scheduler started; next run at %s", self.next_run_time())

    def _create_job_table(self) -> None:
        """Create the job store's table, tolerating a replica that creates it at the same moment.

        PostgreSQL refuses the second of two concurrent CREATE TABLEs (duplicate type or
        table); the table then exists, which is all this needs.
        """
        table = self._store.jobs_t
        try:
            table.create(self._engine, checkfirst=True)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            log.info("another process created %s at the same time", JOBS_TABLE)
            table.create(self._engine, checkfirst=True)

    def _run(self) -> None:
        label, self._pending_label = self._pending_label, "schedule"
        now = dt.datetime.now(self.zone)
        self._job(label, last_fire_time(self.trigger, now, self.misfire_grace))

    def _beat(self) -> None:
        assert self._heartbeat is not None
        self._heartbeat(self.next_run_time())

    @property
    def alive(self) -> bool:
        return bool(self.scheduler.running)

    def next_run_time(self) -> dt.datetime | None:
        if not self.scheduler.running and not self.scheduler.get_jobs():
            return None
        job = self.scheduler.get_job(JOB_ID)
        return None if job is None else getattr(job, "next_run_time", None)

    def wakeup(self) -> None:
        """Re-check due jobs now (after a clock change, or in tests)."""
        self.scheduler.wakeup()

    def shutdown(self) -> None:
        """Stop firing; a job already running is left to finish (the caller waits for it)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        _RUNNERS.pop(JOB_ID, None)

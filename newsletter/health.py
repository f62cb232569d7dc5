"""Is the service well? Database, scheduler, last issue and next run, in one place.

``/healthz`` (the web app) and ``newsletter status`` (the CLI) both ask this module;
the long-running process (``newsletter.daemon``) hands it its scheduler. It imports
neither of them, so the web app and the process do not import each other.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from newsletter import runs
from newsletter.errors import DatabaseError, one_line
from newsletter.issues import issue_dates
from newsletter.schedule_store import stored_next_run
from newsletter.statuses import IssueStatus

if TYPE_CHECKING:
    from newsletter.app import Services

log = logging.getLogger(__name__)


class LiveScheduler(Protocol):
    """What health needs of a scheduler running in this process."""

    @property
    def alive(self) -> bool: ...

    def next_run_time(self) -> dt.datetime | None: ...


def health(
    svc: Services, scheduler: LiveScheduler | None = None, *, public: bool = False
) -> dict[str, Any]:
    """Database, scheduler, last issue and next run, for ``/healthz`` and ``newsletter status``.

    ``ok`` is false when the database is unreachable or this process's own scheduler died.
    ``public`` (the web endpoint) leaves out error texts, which may name hosts or feeds.
    """
    settings = svc.settings
    data: dict[str, Any] = {
        "ok": True,
        "database": "ok",
        "scheduler": {
            "in_this_process": scheduler is not None,
            "alive": False,
            "live_schedulers": 0,
            "schedule": settings.schedule,
            "timezone": settings.timezone,
            "next_run_time": None,
        },
        "last_issue_date": None,
        "last_run": None,
    }
    sched: dict[str, Any] = data["scheduler"]
    if scheduler is not None:
        sched["alive"] = scheduler.alive
        sched["next_run_time"] = _local(scheduler.next_run_time(), settings.timezone)
        data["ok"] = scheduler.alive
    try:
        sent = issue_dates(svc.engine, status=IssueStatus.SENT)
        data["last_issue_date"] = _iso(max(sent, default=None))
        beats = runs.live_schedulers(svc.engine)
        sched["live_schedulers"] = len(beats)
        if scheduler is None:
            sched["alive"] = bool(beats)
            sched["next_run_time"] = _local(stored_next_run(svc.engine), settings.timezone)
        recent = runs.recent_runs(svc.engine, 1)
        data["last_run"] = recent[0].as_json() if recent else None
        if public and data["last_run"]:
            data["last_run"]["detail"] = ""
    except (DatabaseError, sa.exc.SQLAlchemyError, OSError) as exc:
        data["ok"] = False
        reason = one_line(getattr(exc, "orig", exc))
        log.warning("health check: database unreachable: %s", reason)
        data["database"] = "unreachable" if public else f"unreachable: {reason}"
    return data


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _local(moment: dt.datetime | None, zone: str) -> str | None:
    """``moment`` in the schedule's zone, as the operator reads the schedule."""
    return None if moment is None else moment.astimezone(ZoneInfo(zone)).isoformat()


def status_lines(data: dict[str, Any]) -> list[str]:
    """``health`` for a terminal."""
    sched = data["scheduler"]
    last_run = data["last_run"]
    lines = [
        f"database:          {data['database']}",
        f"scheduler:         {'alive' if sched['alive'] else 'not running'}"
        f" ({sched['live_schedulers']} live; {sched['schedule']} {sched['timezone']})",
        f"next run:          {sched['next_run_time'] or '-'}",
        f"last issue sent:   {data['last_issue_date'] or '-'}",
    ]
    if last_run:
        lines.append(
            f"last run:          {last_run['outcome']} ({last_run['trigger']}, "
            f"started {last_run['started_at']}"
            + (f", issue {last_run['date']}" if last_run["date"] else "")
            + ")"
        )
        if last_run["detail"]:
            lines.append(f"                   {last_run['detail']}")
    else:
        lines.append("last run:          -")
    return lines

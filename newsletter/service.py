"""The long-running service: the daily run (lock, retry, record, report), catch-up, health, start.

``newsletter start`` runs the web app and the scheduler in one process; ``--no-web``
and ``--no-scheduler`` split them. The daily run itself is ``pipeline.run_once``;
this module adds what a process that nobody watches needs around it:

- a database that is down is retried with exponential back-off (tenacity), then
  the failure is logged and mailed to NEWSLETTER_ADMIN_EMAIL; the next start catches up;
- every run is recorded (``runs``), so a start after a missed scheduled time runs
  at once (within NEWSLETTER_CATCHUP_HOURS) and ``status``/``/healthz`` can tell;
- SIGTERM sets a stop flag that the send checks between chunks, so the current
  batch is mailed and recorded before the process exits (within ``SHUTDOWN_GRACE``).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Engine

from newsletter import runs
from newsletter.db import utcnow
from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.errors import DatabaseError, NewsletterError
from newsletter.issues import get_issue, issue_dates
from newsletter.locks import owner_gone, owner_id
from newsletter.models import RenderedIssue
from newsletter.papers import announced_dates
from newsletter.scheduler import JOBS_TABLE, ServiceScheduler, last_fire_time, parse_trigger

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.pipeline import SendReport
    from newsletter.settings import Settings
    from newsletter.sources.collect import CollectReport

log = logging.getLogger(__name__)

#: How long a stopping process waits for the current batch before it exits anyway.
SHUTDOWN_GRACE = 25.0
#: Database failures that a later attempt may not meet (connection refused, server restart).
TRANSIENT = (DatabaseError, sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass
class RunOutcome:
    """How one daily run ended; ``outcome`` is one of ``runs.OUTCOMES``."""

    outcome: str
    date: dt.date | None = None
    detail: str = ""
    problems: list[str] = field(default_factory=list)


class DailyRun:
    """The job the scheduler fires: one attempt at today's issue, made safe to leave alone."""

    def __init__(
        self,
        svc: Services,
        backend_factory: Callable[[], MailBackend],
        stop: threading.Event | None = None,
    ) -> None:
        self.svc = svc
        self.backend_factory = backend_factory
        self.stop = stop or threading.Event()
        self.owner = owner_id()
        #: Set while no run is in progress; shutdown waits on it.
        self.idle = threading.Event()
        self.idle.set()

    def __call__(
        self, trigger: str = "manual", scheduled_for: dt.datetime | None = None
    ) -> RunOutcome:
        self.idle.clear()
        try:
            return self._run(trigger, scheduled_for)
        finally:
            self.idle.set()

    def _run(self, trigger: str, scheduled_for: dt.datetime | None) -> RunOutcome:
        settings = self.svc.settings
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TRANSIENT),
            stop=tenacity.stop_after_attempt(settings.run_attempts)
            | tenacity.stop_when_event_set(self.stop),
            wait=tenacity.wait_exponential(
                multiplier=settings.run_retry_seconds, max=settings.run_retry_seconds * 32
            ),
            # Waiting on the stop flag lets SIGTERM cut a back-off short.
            sleep=self._pause,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            outcome = retrying(self._attempt, trigger, scheduled_for)
        except TRANSIENT as exc:
            outcome = RunOutcome(
                "failed",
                detail=(
                    f"the database stayed unreachable after {settings.run_attempts} attempts "
                    f"({_one_line(exc)}); the next start or scheduled run catches up"
                ),
            )
            log.error("daily run failed: %s", outcome.detail, extra={"outcome": "failed"})
        if outcome.outcome == "failed" or outcome.problems:
            self._report(outcome)
        return outcome

    def _pause(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "database unreachable during the daily run (attempt %d of %d: %s); retrying in %.3g s",
            state.attempt_number,
            self.svc.settings.run_attempts,
            _one_line(exc),
            wait,
        )

    def _attempt(self, trigger: str, scheduled_for: dt.datetime | None) -> RunOutcome:
        from newsletter.pipeline import run_once

        engine = self.svc.engine
        newest_sent_before = max(issue_dates(engine, status="sent"), default=None)
        run_id = runs.start_run(engine, trigger, scheduled_for, self.owner)
        log.info("daily run started (%s)", trigger, extra={"trigger": trigger})
        try:
            collected, report = run_once(
                self.svc, None, self.backend_factory(), should_stop=self.stop.is_set
            )
        except TRANSIENT as exc:
            _finish_failed(engine, run_id, exc)
            raise
        except NewsletterError as exc:
            outcome = RunOutcome("failed", detail=_one_line(exc))
            runs.finish_run(engine, run_id, outcome.outcome, None, outcome.detail)
            log.error("daily run failed: %s", outcome.detail, extra={"outcome": "failed"})
            return outcome
        except Exception as exc:
            # A bug, not a condition: keep the traceback in the log, record and report the day.
            outcome = RunOutcome(
                "failed", detail=f"unexpected {type(exc).__name__}: {_one_line(exc)}"
            )
            runs.finish_run(engine, run_id, outcome.outcome, None, outcome.detail)
            log.exception("daily run failed: %s", outcome.detail, extra={"outcome": "failed"})
            return outcome
        outcome = _judge(engine, collected, report)
        for note in _missed_notes(self.svc, newest_sent_before, outcome.date):
            log.warning(note)
            outcome.detail = f"{outcome.detail}; {note}" if outcome.detail else note
        runs.finish_run(engine, run_id, outcome.outcome, outcome.date, outcome.detail)
        log.info(
            "daily run finished: %s%s",
            outcome.outcome,
            f" ({outcome.detail})" if outcome.detail else "",
            extra={"outcome": outcome.outcome, "date": outcome.date and outcome.date.isoformat()},
        )
        return outcome

    def _report(self, outcome: RunOutcome) -> None:
        report_to_admin(self.svc, self.backend_factory, outcome)


def cron_run(
    svc: Services,
    backend_factory: Callable[[], MailBackend],
    date: dt.date | None,
    stop: threading.Event,
) -> tuple[CollectReport, SendReport]:
    """``newsletter run-once`` (the cron path): recorded and reported like a scheduled run.

    A CronJob has no scheduler around it, so this is where its run is written to the
    run records (``newsletter status``) and a failed day reaches NEWSLETTER_ADMIN_EMAIL.
    """
    from newsletter.pipeline import run_once

    run_id = runs.start_run(svc.engine, "cron", None, owner_id())
    try:
        collected, report = run_once(svc, date, backend_factory(), should_stop=stop.is_set)
    except NewsletterError as exc:
        outcome = RunOutcome("failed", date, _one_line(exc))
        runs.finish_run(svc.engine, run_id, outcome.outcome, date, outcome.detail)
        report_to_admin(svc, backend_factory, outcome)
        raise
    outcome = _judge(svc.engine, collected, report)
    runs.finish_run(svc.engine, run_id, outcome.outcome, outcome.date, outcome.detail)
    if outcome.outcome == "failed" or outcome.problems:
        report_to_admin(svc, backend_factory, outcome)
    return collected, report


def _judge(engine: Engine, collected: CollectReport, report: SendReport) -> RunOutcome:
    problems = [f"source failed: {s.url}: {s.error}" for s in collected.sources if s.error]
    detail = "; ".join([*report.notes, report.line()] if report.date else report.notes)
    if report.locked:
        return RunOutcome("skipped", report.date, detail)
    if report.stopped:
        return RunOutcome("stopped", report.date, detail)
    if report.date is None:
        if collected.sources and all(s.error for s in collected.sources):
            return RunOutcome("failed", None, "every source failed; " + detail, problems)
        return RunOutcome("nothing", None, detail, problems)
    if not report.ok:
        return RunOutcome("failed", report.date, detail, problems)
    issue = get_issue(engine, report.date)
    outcome = "sent" if issue is not None and issue.status == "sent" else "nothing"
    return RunOutcome(outcome, report.date, detail, problems)


def _missed_notes(
    svc: Services, newest_sent_before: dt.date | None, handled: dt.date | None
) -> list[str]:
    """What became of announcements that never had an issue of their own (an outage)."""
    from newsletter.pipeline import CATCH_UP_DAYS, issue_window

    missed = _missed_dates(svc.engine, newest_sent_before, handled)
    if not missed or handled is None:
        return []
    after = issue_window(svc, handled)
    carried = [d.isoformat() for d in missed if d > after]
    dropped = [d.isoformat() for d in missed if d <= after]
    notes = []
    if carried:
        notes.append(
            f"announcements of {', '.join(carried)} had no issue of their own (the service "
            f"was down); their papers are in the issue of {handled}"
        )
    if dropped:
        notes.append(
            f"announcements of {', '.join(dropped)} were missed while the service was down "
            "and are not sent late (an issue reaches back at most "
            f"{CATCH_UP_DAYS} days)"
        )
    return notes


def _missed_dates(
    engine: Engine, newest_sent_before: dt.date | None, handled: dt.date | None
) -> list[dt.date]:
    """Announcements between the previous issue and this one that never got an issue."""
    if newest_sent_before is None or handled is None:
        return []
    sent = issue_dates(engine, status="sent")
    return sorted(
        d for d in announced_dates(engine) if newest_sent_before < d < handled and d not in sent
    )


def _finish_failed(engine: Engine, run_id: int, exc: BaseException) -> None:
    """Close the run record after a database error, if the database still answers."""
    try:
        runs.finish_run(engine, run_id, "failed", None, f"database error: {_one_line(exc)}")
    except TRANSIENT as again:
        log.warning("could not record the failed run: %s", _one_line(again))


def _one_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())[:500] if exc is not None else "unknown error"


def connect(settings: Settings) -> Services:
    """``Services.build``, retried with back-off while the database is unreachable.

    A container or unit often starts before its database; the service waits for it
    (NEWSLETTER_RUN_ATTEMPTS, NEWSLETTER_RUN_RETRY_SECONDS) instead of failing at once.
    """
    from newsletter.app import Services

    def log_wait(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "database unreachable at start (attempt %d of %d: %s); retrying in %.3g s",
            state.attempt_number,
            settings.run_attempts,
            _one_line(exc),
            wait,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TRANSIENT),
        stop=tenacity.stop_after_attempt(settings.run_attempts),
        wait=tenacity.wait_exponential(
            multiplier=settings.run_retry_seconds, max=settings.run_retry_seconds * 32
        ),
        before_sleep=log_wait,
        reraise=True,
    )
    return retrying(Services.build, settings)


def report_to_admin(
    svc: Services, backend_factory: Callable[[], MailBackend], outcome: RunOutcome
) -> bool:
    """Mail a failed or troubled run to NEWSLETTER_ADMIN_EMAIL; False when it could not be sent."""
    admin = svc.settings.admin_email
    if not admin:
        log.warning("NEWSLETTER_ADMIN_EMAIL is not set: the run's problems are only in this log")
        return False
    day = outcome.date.isoformat() if outcome.date else "today"
    verdict = "failed" if outcome.outcome == "failed" else "finished with problems"
    lines = [
        f"The daily run for {day} {verdict}.",
        "",
        f"outcome: {outcome.outcome}",
        f"detail: {outcome.detail or '-'}",
        *outcome.problems,
        "",
        "Run `newsletter status` on the server for the schedule and the last runs.",
    ]
    text = "\n".join(lines)
    rendered = RenderedIssue(
        subject=f"[{svc.settings.from_name}] daily run {verdict} ({day})",
        html=f"<pre>{html.escape(text)}</pre>",
        text=text,
        images=(),
    )
    try:
        with backend_factory() as backend:
            results = backend.send(MessageBatch(rendered, (Envelope(to=admin),)))
    except NewsletterError as exc:
        log.error("could not mail the run report to the admin: %s", exc)
        return False
    return all(r.status == "sent" for r in results)


# -- catch-up -------------------------------------------------------------------------------


def missed_run(
    svc: Services, scheduler: ServiceScheduler, now: dt.datetime | None = None
) -> dt.datetime | None:
    """The last scheduled time if it passed, within the catch-up window, without a completed run."""
    now = now or dt.datetime.now(dt.UTC)
    window = dt.timedelta(hours=svc.settings.catchup_hours)
    last = last_fire_time(scheduler.trigger, now.astimezone(scheduler.zone), window)
    if last is None or runs.completed_since(svc.engine, last):
        return None
    return last


# -- health ---------------------------------------------------------------------------------


def health(
    svc: Services, scheduler: ServiceScheduler | None = None, *, public: bool = False
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
        sent = issue_dates(svc.engine, status="sent")
        data["last_issue_date"] = _iso(max(sent, default=None))
        beats = runs.live_schedulers(svc.engine)
        sched["live_schedulers"] = len(beats)
        if scheduler is None:
            sched["alive"] = bool(beats)
            sched["next_run_time"] = _local(_stored_next_run(svc.engine), settings.timezone)
        recent = runs.recent_runs(svc.engine, 1)
        data["last_run"] = recent[0].as_json() if recent else None
        if public and data["last_run"]:
            data["last_run"]["detail"] = ""
    except (DatabaseError, sa.exc.SQLAlchemyError, OSError) as exc:
        data["ok"] = False
        reason = _one_line(getattr(exc, "orig", exc))
        log.warning("health check: database unreachable: %s", reason)
        data["database"] = "unreachable" if public else f"unreachable: {reason}"
    return data


def _stored_next_run(engine: Engine) -> dt.datetime | None:
    """The daily job's next run time as the job store has it (any replica's scheduler)."""
    from newsletter.scheduler import JOB_ID

    table = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(JOBS_TABLE):
            return None
        stamp = conn.execute(
            sa.select(table.c.next_run_time).where(table.c.id == JOB_ID)
        ).scalar_one_or_none()
    return None if stamp is None else dt.datetime.fromtimestamp(float(stamp), dt.UTC)


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


# -- the process ------------------------------------------------------------------------------


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        log.info(
            "received %s: finishing the current batch, then exiting", signal.Signals(signum).name
        )
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_scheduler(svc: Services, job: DailyRun) -> ServiceScheduler:
    """The scheduler for ``svc``'s settings; a bad crontab or zone raises ConfigurationError."""
    started = utcnow()

    def heartbeat(next_run: dt.datetime | None) -> None:
        try:
            runs.beat(svc.engine, job.owner, started, next_run)
        except TRANSIENT as exc:
            log.warning("could not record the scheduler heartbeat: %s", _one_line(exc))

    def run(trigger: str, scheduled_for: dt.datetime | None) -> None:
        job(trigger, scheduled_for)

    return ServiceScheduler(
        svc.engine,
        svc.settings.schedule,
        svc.settings.timezone,
        run,
        misfire_grace=dt.timedelta(hours=max(svc.settings.catchup_hours, 1 / 60)),
        heartbeat=heartbeat,
        heartbeat_every=runs.HEARTBEAT,
    )


@dataclass(frozen=True)
class ServeExit:
    """How ``serve`` ended: the exit code, and whether a run thread is still going."""

    code: int
    hard: bool


def serve(
    svc: Services,
    backend_factory: Callable[[], MailBackend],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    web: bool = True,
    scheduler: bool = True,
    stop: threading.Event | None = None,
    grace: float = SHUTDOWN_GRACE,
) -> ServeExit:
    """Run the web app and/or the scheduler until SIGTERM/SIGINT (or ``stop``).

    A run in progress gets ``grace`` seconds to finish its batch; if it is still
    going, the result says ``hard``: the caller exits without waiting for it (its
    deliveries in flight become ``unknown`` at the next start, never sent twice).
    """
    if not (web or scheduler):
        raise NewsletterError("nothing to start: drop --no-web or --no-scheduler")
    stop = stop or threading.Event()
    job = DailyRun(svc, backend_factory, stop)
    sched = build_scheduler(svc, job) if scheduler else None
    parse_trigger(svc.settings.schedule, svc.settings.timezone)
    with stop_on_signals(stop):
        server, server_thread = _start_web(svc, sched, host, port) if web else (None, None)
        if sched is not None:
            closed = runs.close_interrupted(svc.engine, owner_gone)
            if closed:
                log.warning("%d earlier run(s) were interrupted by a process that ended", closed)
            missed = missed_run(svc, sched)
            if missed is not None:
                log.warning(
                    "the run scheduled for %s did not complete; catching up now",
                    missed.isoformat(),
                )
            sched.start(run_now=missed is not None)
        code = 0
        while not stop.wait(0.5):
            if server_thread is not None and not server_thread.is_alive():
                log.error("the web server stopped (see above); shutting the service down")
                code = 1
                stop.set()
        log.info("stopping")
        if server is not None:
            server.should_exit = True
        if sched is not None:
            sched.shutdown()
        finished = job.idle.wait(grace)
        if sched is not None:
            _drop_beat(svc.engine, job.owner)
        if server_thread is not None:
            server_thread.join(timeout=5)
    if not finished:
        log.error(
            "the current batch did not finish within %.0f s; exiting anyway (its deliveries "
            "become 'unknown' at the next start and are not resent)",
            grace,
        )
    return ServeExit(code=code or (0 if finished else 1), hard=not finished)


def _drop_beat(engine: Engine, owner: str) -> None:
    try:
        runs.drop_beat(engine, owner)
    except TRANSIENT as exc:
        log.warning("could not remove the scheduler heartbeat: %s", _one_line(exc))


def _start_web(
    svc: Services, sched: ServiceScheduler | None, host: str, port: int
) -> tuple[Any, threading.Thread]:
    from subscribers.server import build_server
    from subscribers.web import create_app

    app = create_app(svc)
    app.state.scheduler = sched
    server = build_server(app, host, port)
    # In a thread uvicorn installs no signal handlers: ours (stop_on_signals) stay in charge.
    thread = threading.Thread(target=_run_web, args=(server,), name="web", daemon=True)
    thread.start()
    return server, thread


def _run_web(server: Any) -> None:
    """uvicorn exits through SystemExit when it cannot start (a busy port): say so and end."""
    try:
        server.run()
    except SystemExit as exc:
        log.error("the web server could not start (uvicorn exit code %s)", exc.code)

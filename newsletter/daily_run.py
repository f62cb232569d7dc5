"""One run of the daily job, made safe to leave alone: retry, record, judge, report, catch up.

The run itself is ``pipeline.run_once``; this module adds what a run that nobody
watches needs around it:

- a database that is down is retried with back-off (``newsletter.retry``), then the
  failure is logged and mailed to NEWSLETTER_ADMIN_EMAIL; the next start catches up;
- every run is recorded (``runs``), so a start after a missed scheduled time runs at
  once (within NEWSLETTER_CATCHUP_HOURS, ``missed_run``) and ``status``/``/healthz``
  can tell;
- announcement days that an outage left without an issue are named in the run's
  detail (carried into this issue, or too old to send late).

``DailyRun`` is what the scheduler of ``newsletter start`` fires; ``cron_run`` is the
same for ``newsletter run-once`` (a CronJob, with no scheduler around it).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from newsletter import runs
from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.errors import NewsletterError, one_line
from newsletter.issues import get_issue, issue_dates
from newsletter.locks import owner_id
from newsletter.models import RenderedIssue
from newsletter.papers import announced_dates
from newsletter.retry import TRANSIENT, database_retrying
from newsletter.scheduler import last_fire_time
from newsletter.statuses import IssueStatus, RunOutcome, SendOutcome

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.scheduler import DailyScheduler
    from newsletter.sending import SendReport
    from newsletter.sources.collect import CollectReport

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """How one daily run ended, with what the run record and the admin report say."""

    outcome: RunOutcome
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
    ) -> RunResult:
        self.idle.clear()
        try:
            return self._run(trigger, scheduled_for)
        finally:
            self.idle.set()

    def _run(self, trigger: str, scheduled_for: dt.datetime | None) -> RunResult:
        settings = self.svc.settings
        retrying = database_retrying(settings, "during the daily run", self.stop)
        try:
            outcome = retrying(self._attempt, trigger, scheduled_for)
        except TRANSIENT as exc:
            outcome = RunResult(
                RunOutcome.FAILED,
                detail=(
                    f"the database stayed unreachable after {settings.run_attempts} attempts "
                    f"({one_line(exc)}); the next start or scheduled run catches up"
                ),
            )
            log.error("daily run failed: %s", outcome.detail, extra={"outcome": "failed"})
        if outcome.outcome == RunOutcome.FAILED or outcome.problems:
            report_to_admin(self.svc, self.backend_factory, outcome)
        return outcome

    def _attempt(self, trigger: str, scheduled_for: dt.datetime | None) -> RunResult:
        from newsletter.pipeline import run_once

        engine = self.svc.engine
        newest_sent_before = max(issue_dates(engine, status=IssueStatus.SENT), default=None)
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
            outcome = RunResult(RunOutcome.FAILED, detail=one_line(exc))
            runs.finish_run(engine, run_id, outcome.outcome, None, outcome.detail)
            log.error("daily run failed: %s", outcome.detail, extra={"outcome": "failed"})
            return outcome
        except Exception as exc:
            # A bug, not a condition: keep the traceback in the log, record and report the day.
            outcome = RunResult(
                RunOutcome.FAILED, detail=f"unexpected {type(exc).__name__}: {one_line(exc)}"
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
        outcome = RunResult(RunOutcome.FAILED, date, one_line(exc))
        runs.finish_run(svc.engine, run_id, outcome.outcome, date, outcome.detail)
        report_to_admin(svc, backend_factory, outcome)
        raise
    outcome = _judge(svc.engine, collected, report)
    runs.finish_run(svc.engine, run_id, outcome.outcome, outcome.date, outcome.detail)
    if outcome.outcome == RunOutcome.FAILED or outcome.problems:
        report_to_admin(svc, backend_factory, outcome)
    return collected, report


def _judge(engine: Engine, collected: CollectReport, report: SendReport) -> RunResult:
    problems = [f"source failed: {s.url}: {s.error}" for s in collected.sources if s.error]
    detail = "; ".join([*report.notes, report.line()] if report.date else report.notes)
    if report.locked:
        return RunResult(RunOutcome.SKIPPED, report.date, detail)
    if report.stopped:
        return RunResult(RunOutcome.STOPPED, report.date, detail)
    if report.date is None:
        if collected.sources and all(s.error for s in collected.sources):
            return RunResult(RunOutcome.FAILED, None, "every source failed; " + detail, problems)
        return RunResult(RunOutcome.NOTHING, None, detail, problems)
    if not report.ok:
        return RunResult(RunOutcome.FAILED, report.date, detail, problems)
    issue = get_issue(engine, report.date)
    sent = issue is not None and issue.status == IssueStatus.SENT
    outcome = RunOutcome.SENT if sent else RunOutcome.NOTHING
    return RunResult(outcome, report.date, detail, problems)


def _missed_notes(
    svc: Services, newest_sent_before: dt.date | None, handled: dt.date | None
) -> list[str]:
    """What became of announcements that never had an issue of their own (an outage)."""
    from newsletter.collecting import CATCH_UP_DAYS, issue_window

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
    sent = issue_dates(engine, status=IssueStatus.SENT)
    return sorted(
        d for d in announced_dates(engine) if newest_sent_before < d < handled and d not in sent
    )


def _finish_failed(engine: Engine, run_id: int, exc: BaseException) -> None:
    """Close the run record after a database error, if the database still answers."""
    try:
        runs.finish_run(engine, run_id, RunOutcome.FAILED, None, f"database error: {one_line(exc)}")
    except TRANSIENT as again:
        log.warning("could not record the failed run: %s", one_line(again))


def report_to_admin(
    svc: Services, backend_factory: Callable[[], MailBackend], outcome: RunResult
) -> bool:
    """Mail a failed or troubled run to NEWSLETTER_ADMIN_EMAIL; False when it could not be sent."""
    admin = svc.settings.admin_email
    if not admin:
        log.warning("NEWSLETTER_ADMIN_EMAIL is not set: the run's problems are only in this log")
        return False
    day = outcome.date.isoformat() if outcome.date else "today"
    verdict = "failed" if outcome.outcome == RunOutcome.FAILED else "finished with problems"
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
    return all(r.status == SendOutcome.SENT for r in results)


# -- catch-up ---------------------------------------------------------------------------------


def missed_run(
    svc: Services, scheduler: DailyScheduler, now: dt.datetime | None = None
) -> dt.datetime | None:
    """The last scheduled time if it passed, within the catch-up window, without a completed run."""
    now = now or dt.datetime.now(dt.UTC)
    window = dt.timedelta(hours=svc.settings.catchup_hours)
    last = last_fire_time(scheduler.trigger, now.astimezone(scheduler.zone), window)
    if last is None or runs.completed_since(svc.engine, last):
        return None
    return last

"""The daily run, top to bottom: collect, choose the date, finish cut-off sends, send.

Each stage lives in its own module: ``collecting`` (feeds, dates, windows), ``digest``
(classify, summarize, chart, each stored on the issue row so a re-run repeats no work),
``sending`` (render, group readers, mail through the ledger so a re-run mails nobody
twice), ``preview`` (an issue without sending it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from newsletter.app import Services
from newsletter.collecting import collect, interrupted_since, resolve_date
from newsletter.delivery.base import MailBackend
from newsletter.issues import interrupted_issues
from newsletter.locks import date_lock
from newsletter.sending import SendReport, send
from newsletter.sources.collect import CollectReport

log = logging.getLogger(__name__)


def run_once(
    svc: Services,
    date: dt.date | None,
    backend: MailBackend,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[CollectReport, SendReport]:
    """Collect, then prepare and send: idempotent per date, one process per date.

    The date's lock (``locks.date_lock``) makes a second scheduler or a cron-driven
    ``run-once`` on the same database skip the date instead of racing for it.

    Without ``date``, an issue whose send was cut off (a crash, a kill) and that a newer
    announcement has since overtaken is finished first, so its remaining readers still get
    it; the newer issue then carries only the papers announced after it.
    """
    collected = collect(svc, date)
    target = resolve_date(svc, date)
    if target is None:  # nothing new announced: perhaps an empty day's note
        return collected, send(svc, None, backend, should_stop=should_stop)
    finished: list[str] = []
    if date is None:
        for day in interrupted_issues(svc.engine, interrupted_since(svc, target), target):
            earlier = _send_held(svc, day, backend, should_stop)
            log.info("finished the interrupted issue of %s: %s", day, earlier.line())
            if earlier.stopped:
                return collected, earlier
            finished.append(f"finished the interrupted issue of {day} ({earlier.line()})")
    report = _send_held(svc, target, backend, should_stop)
    report.notes[:0] = finished
    return collected, report


def _send_held(
    svc: Services,
    date: dt.date,
    backend: MailBackend,
    should_stop: Callable[[], bool] | None,
) -> SendReport:
    """``send`` under the date's lock; a report marked ``locked`` when another process has it."""
    with date_lock(svc.engine, date) as held:
        if not held:
            log.info("another process holds the issue of %s; skipping it", date)
            report = SendReport(date, locked=True)
            report.notes.append(f"another process is preparing or sending {date}; skipped")
            return report
        return send(svc, date, backend, should_stop=should_stop)

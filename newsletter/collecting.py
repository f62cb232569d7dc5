"""Collecting papers and choosing dates: which announcement an issue is for, and which
announced days it carries (its window).
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from newsletter.app import Services
from newsletter.issue_state import IssueContent
from newsletter.issues import get_issue, issue_dates, newest_issue_before
from newsletter.papers import announced_dates, has_papers_on
from newsletter.sources import empty_days
from newsletter.sources.collect import CollectProgress, CollectReport, collect_all
from newsletter.sources.fetch import Fetcher
from newsletter.statuses import IssueStatus

log = logging.getLogger(__name__)

#: The most days one daily issue reaches back for announcements that had no issue.
CATCH_UP_DAYS = 7


def collect(
    svc: Services,
    date: dt.date | None = None,
    *,
    fetcher: Fetcher | None = None,
    progress: CollectProgress | None = None,
) -> CollectReport:
    """Fetch every feed and store new papers; record a date arXiv stated with no items.

    ``date`` (``--date``) is the issue date for ``{date}`` URLs; papers are always
    stored under the date their feed states.
    """
    settings = svc.settings
    own = fetcher is None
    active = fetcher or Fetcher(
        settings.fetch_timeout, settings.fetch_attempts, deadline=settings.fetch_deadline
    )
    try:
        report = collect_all(
            svc.engine,
            settings.feeds,
            include_replacements=settings.include_replacements,
            fetcher=active,
            progress=progress,
            run_date=date,
            today=dt.datetime.now(ZoneInfo(settings.timezone)).date(),
        )
    finally:
        if own:
            active.close()
    empty_days.record(svc.engine, empty_days.stated_empty_dates(report))
    if date is not None:
        for source in report.sources:
            if source.announced and source.announced != date:
                log.warning(
                    "%s announces %s, not the requested %s; its papers are stored under %s",
                    source.url,
                    source.announced,
                    date,
                    source.announced,
                )
    return report


def collect_if_missing(svc: Services, date: dt.date | None) -> CollectReport | None:
    """Collect when no papers are stored for the date a send of ``date`` would pick
    (``date`` itself, or the newest announcement without a sent issue); else None.

    A manual send or preview then prepares what is missing instead of failing.
    """
    target = resolve_date(svc, date)
    if target is not None and has_papers_on(svc.engine, target):
        return None
    return collect(svc, date)


def resolve_date(svc: Services, date: dt.date | None) -> dt.date | None:
    """``date`` itself, or the newest announcement that has no completed issue yet.

    Only announcements newer than the newest sent issue count: days missed during an
    outage are not sent late (``--date`` still sends one on purpose).
    """
    if date is not None:
        return date
    done = issue_dates(svc.engine, status=IssueStatus.SENT)
    newest_done = max(done, default=None)
    return next(
        (
            d
            for d in announced_dates(svc.engine)
            if d not in done and (newest_done is None or d > newest_done)
        ),
        None,
    )


def window_after(svc: Services, date: dt.date) -> dt.date:
    """The issue of ``date`` carries the papers announced after this day.

    Normally the day before. After an outage it is the last issue that went out (or
    began to), so the papers of the days in between, which never had an issue, are not
    lost; but never more than ``CATCH_UP_DAYS`` back. The first issue ever starts fresh.
    """
    previous = newest_issue_before(svc.engine, date, (IssueStatus.SENDING, IssueStatus.SENT))
    if previous is None:
        return date - dt.timedelta(days=1)
    return max(previous, date - dt.timedelta(days=CATCH_UP_DAYS))


def issue_window(svc: Services, date: dt.date) -> dt.date:
    """The issue of ``date`` carries papers announced after this day: the stored window
    of a classified issue, else a new one (see ``window_after``)."""
    issue = get_issue(svc.engine, date)
    content = IssueContent.load(issue.content if issue else None)
    return content.window(date) or window_after(svc, date)


def interrupted_since(svc: Services, target: dt.date) -> dt.date:
    """The first day whose cut-off send a run for ``target`` still finishes: after the
    newest sent issue, and no more than ``CATCH_UP_DAYS`` back."""
    since = target - dt.timedelta(days=CATCH_UP_DAYS)
    newest_sent = newest_issue_before(svc.engine, target, (IssueStatus.SENT,))
    if newest_sent is not None:
        since = max(since, newest_sent + dt.timedelta(days=1))
    return since

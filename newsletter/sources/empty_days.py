"""Empty days: arXiv announced nothing (weekend or holiday), which is not an error.

arXiv's feed is then an empty channel that still states its date. Collection
records such a date as an issue row with status ``empty`` (no papers), so that
``send`` can tell "nothing was announced" (skip, or mail a short note once per
date through the delivery ledger) from "nothing was collected" (a failed feed,
which must never produce a "no new papers" note).
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.issues import ISSUES, ensure_issue, get_issue, update_issue
from newsletter.papers import PAPERS, has_papers_on
from newsletter.sources import arxiv_rss
from newsletter.sources.collect import CollectReport

log = logging.getLogger(__name__)

EMPTY = "empty"


def stated_empty_dates(report: CollectReport) -> set[dt.date]:
    """Dates that arXiv feeds stated with no items, when no source failed this run.

    A date is empty only if every arXiv feed that stated it had no entries; one
    failed source means the day's content is unknown, so nothing is claimed.
    """
    if any(s.error for s in report.sources):
        return set()
    arxiv = [s for s in report.sources if s.kind == arxiv_rss.KIND and s.announced]
    empty = {s.announced for s in arxiv if s.seen == 0 and s.announced}
    busy = {s.announced for s in arxiv if s.seen > 0}
    return empty - busy


def record(engine: Engine, dates: set[dt.date]) -> list[dt.date]:
    """Mark each date without stored papers as an empty day; returns those marked."""
    marked = []
    for date in sorted(dates):
        if has_papers_on(engine, date):
            continue
        issue = ensure_issue(engine, date)
        assert issue.id is not None
        if issue.status in ("collected", EMPTY):
            update_issue(engine, issue.id, status=EMPTY, paper_count=0)
            marked.append(date)
            log.info("arXiv announced nothing on %s (a weekend or holiday)", date)
    return marked


def is_empty_day(engine: Engine, date: dt.date) -> bool:
    issue = get_issue(engine, date)
    return issue is not None and issue.status == EMPTY and not has_papers_on(engine, date)


def latest_empty_day(engine: Engine) -> dt.date | None:
    """The newest empty day, if it is newer than every date with papers.

    An older empty day is stale: an issue with papers has been announced since.
    """
    issues = ISSUES
    with engine.connect() as conn:
        newest_empty = conn.execute(
            sa.select(sa.func.max(issues.c.date)).where(issues.c.status == EMPTY)
        ).scalar()
        newest_paper = conn.execute(sa.select(sa.func.max(PAPERS.c.announced))).scalar()
    if newest_empty is None or (newest_paper is not None and newest_paper >= newest_empty):
        return None
    return newest_empty  # type: ignore[no-any-return]

"""When a weekly reader is due: the rule, and the ledger look-up it rests on.

A weekly reader gets no issue rows of their own: they are mailed during the daily
send of an announcement date, through the same ledger row (issue, reader), once per
week window. The window opens on their weekday; a holiday on that weekday (no
announcement, so no send) moves the mail to the next announcement day of the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import DeliveryRow, IssueRow

#: Days a weekly digest covers, ending with (and including) the send's date.
WEEK = 7
#: Ledger states that mean a mail went (or may have gone) out to the reader.
MAILED = ("sent", "unknown", "sending")


def window_start(date: dt.date, weekday: int) -> dt.date:
    """The newest date on or before ``date`` that falls on ``weekday`` (0 = Monday)."""
    return date - dt.timedelta(days=(date.weekday() - weekday) % WEEK)


def period_start(date: dt.date) -> dt.date:
    """The first day a weekly digest sent on ``date`` covers."""
    return date - dt.timedelta(days=WEEK - 1)


def last_mailed(engine: Engine, subscriber_ids: Iterable[int], date: dt.date) -> dict[int, dt.date]:
    """Each reader's newest issue date before ``date`` (within a week) the ledger mailed them.

    Any mail counts, daily or weekly: a reader who switches to weekly mid-week is not
    mailed twice in one window. Issue ``date`` itself is left to its own ledger rows
    (a re-run of ``date`` skips or retries them as for every reader).
    """
    ids = list(subscriber_ids)
    if not ids:
        return {}
    deliveries = DeliveryRow.__table__  # type: ignore[attr-defined]
    issues = IssueRow.__table__  # type: ignore[attr-defined]
    since = date - dt.timedelta(days=WEEK - 1)
    query = (
        sa.select(deliveries.c.subscriber_id, sa.func.max(issues.c.date))
        .join(issues, issues.c.id == deliveries.c.issue_id)
        .where(
            issues.c.date >= since,
            issues.c.date < date,
            deliveries.c.status.in_(MAILED),
            deliveries.c.subscriber_id.in_(sa.bindparam("ids", expanding=True)),
        )
        .group_by(deliveries.c.subscriber_id)
    )
    found: dict[int, dt.date] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 5000):
            for sid, last in conn.execute(query, {"ids": ids[start : start + 5000]}):
                found[int(sid)] = last
    return found


def is_due(date: dt.date, weekday: int, last: dt.date | None) -> bool:
    """Whether a weekly reader of ``weekday`` is mailed on ``date``, given their last mail."""
    return last is None or last < window_start(date, weekday)

"""When a weekly reader is due: the rule over dates (the look-up is ``ledger.last_mailed``).

A weekly reader gets no issue rows of their own: they are mailed during the daily
send of an announcement date, through the same ledger row (issue, reader), once per
week window. The window opens on their weekday; a holiday on that weekday (no
announcement, so no send) moves the mail to the next announcement day of the window.
"""

from __future__ import annotations

import datetime as dt

#: Days a weekly digest covers, ending with (and including) the send's date.
WEEK = 7


def window_start(date: dt.date, weekday: int) -> dt.date:
    """The newest date on or before ``date`` that falls on ``weekday`` (0 = Monday)."""
    return date - dt.timedelta(days=(date.weekday() - weekday) % WEEK)


def period_start(date: dt.date) -> dt.date:
    """The first day a weekly digest sent on ``date`` covers."""
    return date - dt.timedelta(days=WEEK - 1)


def is_due(date: dt.date, weekday: int, last: dt.date | None) -> bool:
    """Whether a weekly reader of ``weekday`` is mailed on ``date``, given their last mail."""
    return last is None or last < window_start(date, weekday)

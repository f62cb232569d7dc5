"""Which issues are public, and what the archive lists about each.

An issue is public once its reports were written (status ``summarized`` or later)
and it has papers; empty days and half-built issues are not. Only papers data leaves this module:
nothing about readers or deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.categories import FALLBACK_SLUG
from newsletter.issue_state import IssueContent
from newsletter.issues import ISSUES
from newsletter.statuses import PUBLIC_STAGES


def _is_public() -> sa.ColumnElement[bool]:
    return sa.and_(ISSUES.c.status.in_(PUBLIC_STAGES), ISSUES.c.paper_count > 0)


def public_dates() -> sa.Select[tuple[dt.date]]:
    """A subquery of the dates of public issues, for filtering other queries."""
    return sa.select(ISSUES.c.date).where(_is_public())


@dataclass(frozen=True)
class IssueSummary:
    """One public issue as lists and feeds show it."""

    date: dt.date
    paper_count: int
    made_with: str
    updated: dt.datetime
    #: slug -> papers in that category (a paper may count in several).
    counts: dict[str, int]
    #: language -> slug -> the report's concluding paragraph.
    conclusions: dict[str, dict[str, str]]

    def top(self, order: tuple[str, ...], n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` biggest categories, ties in taxonomy ``order``."""
        rank = {slug: i for i, slug in enumerate(order)}
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], rank.get(kv[0], len(rank))))
        return ranked[:n]

    def conclusions_in(self, language: str) -> dict[str, str]:
        """Conclusions in ``language``, else in any language the issue was written in."""
        if language in self.conclusions:
            return self.conclusions[language]
        return next(iter(self.conclusions.values()), {})


def _summary(row: Any) -> IssueSummary:
    content = IssueContent.load(row.content)
    counts: Counter[str] = Counter()
    for slugs in (content.classification or {}).values():
        counts.update(slugs or [FALLBACK_SLUG])
    conclusions = {
        language: {slug: report.conclusion for slug, report in reports.items()}
        for language, reports in content.reports.items()
    }
    return IssueSummary(
        date=row.date,
        paper_count=row.paper_count,
        made_with=row.made_with,
        updated=row.sent_at or row.created_at,
        counts=dict(counts),
        conclusions=conclusions,
    )


def count_public(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(_is_public())).scalar_one())


def list_public(engine: Engine, limit: int, offset: int = 0) -> list[IssueSummary]:
    """Public issues, newest first."""
    query = (
        sa.select(ISSUES)
        .where(_is_public())
        .order_by(ISSUES.c.date.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return [_summary(r) for r in conn.execute(query)]


def get_public(engine: Engine, date: dt.date) -> IssueSummary | None:
    """The issue of ``date`` if it is public, else None."""
    query = sa.select(ISSUES).where(ISSUES.c.date == date, _is_public())
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _summary(row) if row is not None else None


def stored_chart(engine: Engine, date: dt.date, language: str) -> bytes | None:
    """The chart PNG already stored for a public issue in ``language``, without its papers."""
    query = sa.select(ISSUES.c.content).where(ISSUES.c.date == date, _is_public())
    with engine.connect() as conn:
        content = conn.execute(query).scalar_one_or_none()
    if content is None:
        return None
    stored = IssueContent.load(content)
    return stored.chart_png(language) if language in stored.charts else None

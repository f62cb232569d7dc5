"""The issues table: one row per announcement date, its status and its stored content."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.db import IssueRow, insert_ignore, session_scope, table_of, utcnow
from newsletter.issue_state import IssueContent
from newsletter.statuses import IssueStatus, advance

ISSUES = table_of(IssueRow)


def newest_issue_before(engine: Engine, date: dt.date, statuses: Sequence[str]) -> dt.date | None:
    """The newest date before ``date`` whose issue has one of ``statuses``."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(ISSUES.c.date)).where(
                ISSUES.c.date < date, ISSUES.c.status.in_(statuses)
            )
        ).scalar()


def interrupted_issues(engine: Engine, since: dt.date, before: dt.date) -> list[dt.date]:
    """Dates from ``since`` up to ``before`` (excluded) whose send began and never ended."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ISSUES.c.date)
            .where(
                ISSUES.c.status == IssueStatus.SENDING,
                ISSUES.c.date >= since,
                ISSUES.c.date < before,
            )
            .order_by(ISSUES.c.date)
        )
        return [r[0] for r in rows]


def issue_dates(engine: Engine, status: str | None = None) -> set[dt.date]:
    query = sa.select(ISSUES.c.date)
    if status:
        query = query.where(ISSUES.c.status == status)
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(query)}


def get_issue(engine: Engine, date: dt.date) -> IssueRow | None:
    with session_scope(engine) as session:
        return session.exec(select(IssueRow).where(IssueRow.date == date)).first()


def ensure_issue(engine: Engine, date: dt.date) -> IssueRow:
    """The issue row for ``date``, created once even when two runs race."""
    with engine.begin() as conn:
        conn.execute(
            insert_ignore(engine, ISSUES),
            [
                {
                    "date": date,
                    "status": IssueStatus.COLLECTED,
                    "content": "{}",
                    "made_with": "offline",
                    "paper_count": 0,
                    "created_at": utcnow(),
                }
            ],
        )
    issue = get_issue(engine, date)
    assert issue is not None
    return issue


def update_issue(engine: Engine, issue_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(ISSUES).where(ISSUES.c.id == issue_id).values(**values))


def advance_stage(engine: Engine, issue_id: int, stage: IssueStatus, **values: Any) -> None:
    """Move the issue to ``stage`` unless it is already at a later one; write ``values``."""
    with engine.begin() as conn:
        current = conn.execute(sa.select(ISSUES.c.status).where(ISSUES.c.id == issue_id)).scalar()
        status = advance(current or "", stage)
        conn.execute(
            sa.update(ISSUES).where(ISSUES.c.id == issue_id).values(status=status, **values)
        )


def update_content(
    engine: Engine,
    issue_id: int,
    change: Callable[[IssueContent], IssueContent | None],
    **values: Any,
) -> IssueContent:
    """Read, change and write an issue's stored content in one locked transaction.

    Two processes (a send building one language, the archive another) would
    otherwise each write back the row they read and lose the other's stage output.
    ``change`` gets the stored content and returns what to store, or None to keep it
    (another process already stored that stage); ``values`` (other columns) are
    written either way. Returns the content as stored.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading
        raw = conn.execute(
            sa.select(ISSUES.c.content).where(ISSUES.c.id == issue_id).with_for_update()
        ).scalar_one()
        stored = IssueContent.load(raw)
        changed = change(stored)
        if changed is not None:
            values["content"] = changed.dump()
        if values:
            conn.execute(sa.update(ISSUES).where(ISSUES.c.id == issue_id).values(**values))
        conn.commit()
    return stored if changed is None else changed

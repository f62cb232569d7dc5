"""Papers and issues in the database, and the stored output of each issue stage.

Bulk paths use SQLAlchemy Core: one INSERT ... ON CONFLICT DO NOTHING per chunk
rather than one ORM object per paper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.db import IssueRow, PaperRow, session_scope, utcnow
from newsletter.models import CategoryReport, NotablePaper, Paper

PAPERS = PaperRow.__table__  # type: ignore[attr-defined]
ISSUES = IssueRow.__table__  # type: ignore[attr-defined]
CHUNK = 500


def insert_ignore(engine: Engine, table: sa.Table) -> Any:
    """An INSERT that skips rows whose key already exists, on SQLite and PostgreSQL."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _paper_values(paper: Paper) -> dict[str, Any]:
    return {
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": json.dumps(list(paper.authors), ensure_ascii=False),
        "primary_class": paper.primary_class,
        "classes": " ".join(paper.classes),
        "announce_type": paper.announce_type,
        "abs_url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "source": paper.source,
        "announced": paper.announced,
        "first_seen": utcnow(),
    }


def upsert_papers(engine: Engine, papers: Sequence[Paper]) -> int:
    """Store papers not seen before (by arXiv id without version); returns how many were new."""
    new = 0
    with engine.begin() as conn:
        for start in range(0, len(papers), CHUNK):
            chunk = papers[start : start + CHUNK]
            statement = insert_ignore(engine, PAPERS).returning(PAPERS.c.arxiv_id)
            new += len(conn.execute(statement, [_paper_values(p) for p in chunk]).all())
    return new


def known_ids(engine: Engine, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = conn.execute(sa.select(PAPERS.c.arxiv_id).where(PAPERS.c.arxiv_id.in_(chunk)))
            found.update(r[0] for r in rows)
    return found


def paper_from_row(row: Any) -> Paper:
    return Paper(
        arxiv_id=row.arxiv_id,
        version=row.version,
        title=row.title,
        abstract=row.abstract,
        authors=tuple(json.loads(row.authors)),
        announced=row.announced,
        primary_class=row.primary_class,
        classes=tuple(row.classes.split()),
        announce_type=row.announce_type,
        abs_url=row.abs_url,
        pdf_url=row.pdf_url,
        source=row.source,
    )


def papers_on(engine: Engine, date: dt.date) -> list[Paper]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(PAPERS).where(PAPERS.c.announced == date).order_by(PAPERS.c.arxiv_id)
        )
        return [paper_from_row(r) for r in rows]


def has_papers_on(engine: Engine, date: dt.date) -> bool:
    with engine.connect() as conn:
        query = sa.select(PAPERS.c.arxiv_id).where(PAPERS.c.announced == date).limit(1)
        return conn.execute(query).first() is not None


def papers_between(engine: Engine, after: dt.date, until: dt.date) -> list[Paper]:
    """Papers announced after ``after`` up to and including ``until``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(PAPERS)
            .where(PAPERS.c.announced > after, PAPERS.c.announced <= until)
            .order_by(PAPERS.c.arxiv_id)
        )
        return [paper_from_row(r) for r in rows]


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
            .where(ISSUES.c.status == "sending", ISSUES.c.date >= since, ISSUES.c.date < before)
            .order_by(ISSUES.c.date)
        )
        return [r[0] for r in rows]


def announced_dates(engine: Engine) -> list[dt.date]:
    """Every date with papers, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(PAPERS.c.announced).distinct().order_by(PAPERS.c.announced.desc())
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
                    "status": "collected",
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


def update_content(
    engine: Engine,
    issue_id: int,
    mutate: Callable[[dict[str, Any]], None],
    **values: Any,
) -> dict[str, Any]:
    """Read, change and write an issue's stored JSON in one locked transaction.

    Two processes (a send building one language, the archive another) would
    otherwise each write back the row they read and lose the other's stage output.
    Returns the content as written.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading
        raw = conn.execute(
            sa.select(ISSUES.c.content).where(ISSUES.c.id == issue_id).with_for_update()
        ).scalar_one()
        content: dict[str, Any] = json.loads(raw or "{}")
        mutate(content)
        conn.execute(
            sa.update(ISSUES)
            .where(ISSUES.c.id == issue_id)
            .values(content=json.dumps(content, ensure_ascii=False), **values)
        )
        conn.commit()
    return content


def report_to_json(report: CategoryReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def report_from_json(data: dict[str, Any]) -> CategoryReport:
    return CategoryReport(
        slug=data["slug"],
        language=data["language"],
        themes=tuple(data["themes"]),
        keywords=tuple(data["keywords"]),
        findings=tuple(data["findings"]),
        notable=tuple(NotablePaper(n["arxiv_id"], n["line"]) for n in data["notable"]),
        conclusion=data["conclusion"],
        covered=data["covered"],
        total=data["total"],
        made_by=data.get("made_by", "extractive"),
    )

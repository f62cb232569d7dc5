"""The papers table: store papers once per arXiv id, read them by announcement date.

Bulk paths use SQLAlchemy Core: one INSERT ... ON CONFLICT DO NOTHING per chunk
rather than one ORM object per paper.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import PaperRow, insert_ignore, table_of, utcnow
from newsletter.latex import readable
from newsletter.models import Paper

PAPERS = table_of(PaperRow)
CHUNK = 500


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
        # Stored as typed (searchable); read as readers expect it (LaTeX to Unicode).
        title=readable(row.title),
        abstract=readable(row.abstract),
        authors=tuple(readable(name) for name in json.loads(row.authors)),
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


def announced_dates(engine: Engine) -> list[dt.date]:
    """Every date with papers, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(PAPERS.c.announced).distinct().order_by(PAPERS.c.announced.desc())
        )
        return [r[0] for r in rows]

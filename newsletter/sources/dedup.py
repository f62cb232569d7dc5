"""Storing collected papers so that each paper reaches readers exactly once.

Identity is the arXiv id without version (``web:<hash>`` for other feeds). A paper
already stored is never stored again (``upsert_papers`` ignores known ids),
so a re-run or a later day's re-announcement adds nothing. When the same paper
comes again on the same announcement day from another feed (a cross-list), its
stored row gains the new classes instead: one paper, all its classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.models import Paper
from newsletter.papers import CHUNK, PAPERS, upsert_papers
from newsletter.sources.arxiv_rss import TYPE_RANK
from newsletter.sources.base import merge_classes

PAPERS = PAPERS
CHUNK = CHUNK


@dataclass(frozen=True)
class Stored:
    new: int = 0
    duplicate: int = 0
    #: Duplicates from the same day whose stored classes were extended.
    merged: int = 0


def _known(conn: sa.Connection, ids: list[str]) -> dict[str, sa.Row[tuple[str, ...]]]:
    rows = conn.execute(
        sa.select(
            PAPERS.c.arxiv_id,
            PAPERS.c.announced,
            PAPERS.c.classes,
            PAPERS.c.primary_class,
            PAPERS.c.announce_type,
        ).where(PAPERS.c.arxiv_id.in_(ids))
    )
    return {row.arxiv_id: row for row in rows}


def _merge_same_day(conn: sa.Connection, paper: Paper, row: sa.Row[tuple[str, ...]]) -> bool:
    """Extend a stored paper with a same-day duplicate's classes; True when it changed."""
    if row.announced != paper.announced:
        return False
    stored = tuple(row.classes.split())
    incoming_leads = TYPE_RANK.get(paper.announce_type, 9) < TYPE_RANK.get(row.announce_type, 9)
    if incoming_leads:
        classes = merge_classes(paper.classes, stored)
        values = {"announce_type": paper.announce_type, "primary_class": paper.primary_class}
    else:
        classes = merge_classes(stored, paper.classes)
        values = {}
    if classes == stored and not values:
        return False
    conn.execute(
        sa.update(PAPERS)
        .where(PAPERS.c.arxiv_id == paper.arxiv_id)
        .values(classes=" ".join(classes), **values)
    )
    return True


def store_papers(
    engine: Engine,
    papers: Sequence[Paper],
    on_chunk: Callable[[int], None] | None = None,
) -> Stored:
    """Insert the unknown papers in bulk, merge same-day duplicates; count both.

    Each chunk commits on its own, so a crash keeps what was stored before it.
    """
    new = duplicate = merged = 0
    for start in range(0, len(papers), CHUNK):
        chunk = papers[start : start + CHUNK]
        with engine.begin() as conn:
            known = _known(conn, [p.arxiv_id for p in chunk])
            for paper in chunk:
                if paper.arxiv_id in known:
                    merged += _merge_same_day(conn, paper, known[paper.arxiv_id])
        fresh = [p for p in chunk if p.arxiv_id not in known]
        # Inserted rows only: a concurrent run that stored one first makes it a duplicate.
        inserted = upsert_papers(engine, fresh) if fresh else 0
        new += inserted
        duplicate += len(chunk) - inserted
        if on_chunk:
            on_chunk(len(chunk))
    return Stored(new=new, duplicate=duplicate, merged=merged)

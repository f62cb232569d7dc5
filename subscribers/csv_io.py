"""Readers in and out as CSV (email, categories, language, interests): imported all or
nothing in bulk (``subscribers.bulk_import``), exported streamed in keyset pages.

The export carries each reader's free-text interests (their personal data goes with
them); their liked papers, too long for a cell, are shown by
``newsletter subscribers interests EMAIL --json``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.categories import Taxonomy
from subscribers.bulk_import import SUBSCRIBERS, import_readers
from subscribers.interests import INTERESTS

CSV_HEADER = ("email", "categories", "language", "interests")
#: Readers per page of an export.
PAGE = 5000


def import_csv(
    engine: Engine, taxonomy: Taxonomy, text: str, default_language: str
) -> tuple[int, int]:
    """Import readers from CSV text; a bad file stores nothing.

    Returns (imported, kept suppressed); a repeated address counts once.
    """
    summary = import_readers(engine, taxonomy, text, default_language)
    return summary.added + summary.updated + summary.unchanged, summary.suppressed


def export_rows(engine: Engine) -> Iterator[tuple[str, str, str, str]]:
    """(email, categories, language, interests text) of every reader in id order, a page
    at a time."""
    table = SUBSCRIBERS
    query = (
        sa.select(
            table.c.id,
            table.c.email,
            table.c.categories,
            table.c.language,
            sa.func.coalesce(INTERESTS.c.text, ""),
        )
        .select_from(table.outerjoin(INTERESTS, INTERESTS.c.subscriber_id == table.c.id))
        .where(table.c.id > sa.bindparam("last"))
        .order_by(table.c.id)
        .limit(PAGE)
    )
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query, {"last": last}).all()
        for _, email, categories, language, text in rows:
            yield email, categories, language, text
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


def write_csv(engine: Engine, out: TextIO) -> int:
    """Write every reader as CSV to ``out`` as it is read; returns how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for row in export_rows(engine):
        writer.writerow(row)
        count += 1
    return count


def export_csv(engine: Engine) -> str:
    """Every reader as CSV text (``write_csv`` streams instead)."""
    out = io.StringIO()
    write_csv(engine, out)
    return out.getvalue()

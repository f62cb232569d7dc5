"""Readers in and out as CSV (email, categories, language), all or nothing on import."""

from __future__ import annotations

import csv
import io

from sqlalchemy.engine import Engine

from newsletter.categories import Taxonomy
from newsletter.errors import InvalidInputError
from newsletter.statuses import SUPPRESSED
from subscribers.readers import add_active, list_subscribers, normalize_email

CSV_HEADER = ("email", "categories", "language")


def import_csv(
    engine: Engine, taxonomy: Taxonomy, text: str, default_language: str
) -> tuple[int, int]:
    """Import readers from CSV; validates every row first so a bad file stores nothing.

    Returns (imported, kept suppressed).
    """
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in reader.fieldnames:
        raise InvalidInputError("the CSV needs a header line: email,categories,language")
    rows: list[tuple[str, tuple[str, ...], str]] = []
    for number, record in enumerate(reader, start=2):
        try:
            address = normalize_email(record.get("email") or "")
            slugs = taxonomy.parse_list(record.get("categories"))
        except InvalidInputError as exc:
            raise InvalidInputError(f"line {number}: {exc}; nothing was imported") from exc
        except Exception as exc:
            raise InvalidInputError(f"line {number}: {exc}; nothing was imported") from exc
        rows.append((address, slugs, (record.get("language") or default_language).strip()))
    suppressed = 0
    for address, slugs, language in rows:
        info = add_active(engine, taxonomy, address, slugs, language, source="import")
        suppressed += info.status in SUPPRESSED
    return len(rows) - suppressed, suppressed


def export_csv(engine: Engine) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for info in list_subscribers(engine):
        writer.writerow([info.email, ",".join(info.categories), info.language])
    return out.getvalue()

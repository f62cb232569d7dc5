"""Readers in bulk from a CSV file (email, categories, language and an optional
interests column): checked whole, then written in chunks of thousands of rows per
transaction, the file streamed twice.

The first pass validates every row (a bad file stores nothing; the error names the
line numbers of up to 20 bad rows) and finds addresses repeated in the file: the
last row for an address wins and the others are counted as merged. Memory holds a
64-bit hash per distinct address, not the rows. The second pass reads the file again
and writes ``CHUNK`` rows per transaction with ``executemany``: new readers are
inserted active, known readers get the file's categories and language (and are
made active if pending or paused), and an unsubscribed, bounced or complained
address stays exactly as it is: the reader's "no" outranks any file.

A non-empty ``interests`` cell sets the reader's free-text interests (their liked papers
are kept); an empty cell, or no such column, leaves their interests as they are, so a
re-imported export never erases what readers wrote on the web.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from newsletter.categories import Taxonomy
from newsletter.db import table_of, utcnow
from newsletter.errors import InvalidInputError
from newsletter.i18n import LANGUAGES
from newsletter.statuses import SUPPRESSED, SubscriberStatus
from subscribers import interests
from subscribers.models import Subscriber, SubscriberEvent
from subscribers.readers import normalize_email

SUBSCRIBERS = table_of(Subscriber)
EVENTS = table_of(SubscriberEvent)
#: Rows per transaction.
CHUNK = 5000
#: Bad rows named in the error.
MAX_ERRORS = 20
HEADER = "the CSV needs a header line: email,categories,language"
#: A plain ASCII address (dot-atom local part); its domain is still checked, once.
_PLAIN = re.compile(r"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@([a-z0-9.-]+)$")


@functools.lru_cache(maxsize=4096)
def _domain_ok(domain: str) -> str:
    """``normalize_email`` on a stand-in address of ``domain``: one check per domain."""
    return normalize_email(f"x@{domain}")


def _address(raw: str) -> str:
    """``readers.normalize_email``, with a fast path for plain ASCII addresses (the full
    check costs ~130 us an address: 13 s of a 100,000-row file, twice)."""
    text = (raw or "").strip().lower()
    match = _PLAIN.match(text)
    if match and len(text) <= 254 and text.index("@") <= 64:
        _domain_ok(match.group(1))
        return text
    return normalize_email(raw)


@dataclass
class ImportSummary:
    """What an import did (or, with ``dry_run``, would do), in readers."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    merged: int = 0
    interests: int = 0
    dry_run: bool = False

    def line(self) -> str:
        verb = "would add" if self.dry_run else "added"
        return (
            f"{verb}: {self.added}, updated: {self.updated}, unchanged: {self.unchanged}, "
            f"kept suppressed (unsubscribed/bounced/complained): {self.suppressed}, "
            f"duplicates merged: {self.merged} (of {self.rows} rows)"
            + (f", interests set: {self.interests}" if self.interests else "")
        )

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


#: line number, address, categories (joined), language, interests text (None: keep)
Row = tuple[int, str, str, str, str | None]
Opener = Callable[[], io.TextIOBase | Any]


def opener_for(source: Path | str) -> Opener:
    """A function opening ``source`` (a path, or the CSV text itself) for one pass."""
    if isinstance(source, Path):
        path = source
        return lambda: path.open("r", encoding="utf-8-sig", newline="")
    text = source.removeprefix("\ufeff")
    return lambda: io.StringIO(text, newline="")


def _rows(
    open_file: Opener, taxonomy: Taxonomy, default_language: str, errors: list[str] | None
) -> Iterator[Row]:
    """Every valid row; bad ones go to ``errors`` (or raise at once when it is None)."""
    parsed: dict[str, str] = {}
    with open_file() as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "email" not in [f.strip() for f in reader.fieldnames]:
            raise InvalidInputError(HEADER)
        reader.fieldnames = [f.strip() for f in reader.fieldnames]
        for number, record in enumerate(reader, start=2):
            try:
                address = _address(record.get("email") or "")
                raw = record.get("categories") or ""
                if raw not in parsed:  # a file has few distinct category lists
                    parsed[raw] = ",".join(taxonomy.parse_list(raw))
                categories = parsed[raw]
                language = (record.get("language") or default_language).strip()
                if language not in LANGUAGES:
                    raise InvalidInputError(
                        f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}"
                    )
                text = (record.get("interests") or "").strip()
                wanted = interests.check_text(text) if text else None
            except Exception as exc:
                if errors is None:
                    raise
                errors.append(f"line {number}: {exc}")
                continue
            yield number, address, categories, language, wanted


def import_readers(
    engine: Engine,
    taxonomy: Taxonomy,
    source: Path | str,
    default_language: str,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import ``source`` (a CSV path, or its text); all or nothing on bad rows.

    ``progress(done, total)`` is called after each chunk.
    """
    open_file = opener_for(source)
    errors: list[str] = []
    seen: set[int] = set()
    repeated: dict[int, int] = {}  # hash of a repeated address -> its last line
    summary = ImportSummary(dry_run=dry_run)
    for number, address, *_ in _rows(open_file, taxonomy, default_language, errors):
        summary.rows += 1
        key = hash(address)
        if key in seen:
            repeated[key] = number
            summary.merged += 1
        seen.add(key)
    if errors:
        listed = "\n".join(errors[:MAX_ERRORS])
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise InvalidInputError(f"{len(errors)} bad rows; nothing was imported:\n{listed}{more}")
    del seen
    total = summary.rows - summary.merged
    done = 0
    chunk: dict[str, Row] = {}
    for row in _rows(open_file, taxonomy, default_language, None):
        number, address = row[0], row[1]
        if repeated.get(hash(address), number) != number:
            continue  # a later row for this address wins
        chunk[address] = row
        if len(chunk) >= CHUNK:
            done += _write(engine, chunk, summary)
            chunk = {}
            if progress:
                progress(done, total)
    if chunk:
        done += _write(engine, chunk, summary)
    if progress:
        progress(done, total)
    return summary


def _write(engine: Engine, chunk: dict[str, Row], summary: ImportSummary) -> int:
    """One chunk in one transaction (counted only, with a dry run)."""
    with engine.connect() if summary.dry_run else engine.begin() as conn:
        known = _known(conn, list(chunk))
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        texts: dict[int, str] = {}  # known readers' new interests text
        new_texts: dict[str, str] = {}  # new readers' (by address: no id yet)
        now = utcnow()
        for address, (_, _, categories, language, text) in chunk.items():
            found = known.get(address)
            if found is None:
                if text is not None:
                    new_texts[address] = text
                new.append(
                    {
                        "email": address,
                        "categories": categories,
                        "language": language,
                        "status": SubscriberStatus.ACTIVE,
                        "confirmed_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                continue
            sid, status, old_categories, old_language = found
            if status in SUPPRESSED:
                summary.suppressed += 1  # and no interests kept for them
                continue
            if text is not None:
                texts[sid] = text
            if (status, old_categories, old_language) == (
                SubscriberStatus.ACTIVE,
                categories,
                language,
            ):
                summary.unchanged += 1
            else:
                summary.updated += 1
                changed.append(
                    {"b_id": sid, "b_cats": categories, "b_lang": language, "b_now": now}
                )
                detail = f"imported: categories {categories or '-'}, language {language}"
                if status != SubscriberStatus.ACTIVE:
                    detail += f"; {status}->active"
                events.append(_event(sid, "preferences", detail, now))
        summary.added += len(new)
        if summary.dry_run:
            summary.interests += len(new_texts)
            summary.interests += interests.set_texts(conn, texts, source="import", write=False)
            return len(chunk)
        if new:
            conn.execute(sa.insert(SUBSCRIBERS), new)
            ids = _known(conn, [row["email"] for row in new])
            events += [_event(ids[r["email"]][0], "status", "pending->active", now) for r in new]
            texts.update({ids[address][0]: text for address, text in new_texts.items()})
        if changed:
            conn.execute(
                sa.update(SUBSCRIBERS)
                .where(SUBSCRIBERS.c.id == sa.bindparam("b_id"))
                .values(
                    categories=sa.bindparam("b_cats"),
                    language=sa.bindparam("b_lang"),
                    status=SubscriberStatus.ACTIVE,
                    confirm_nonce="",
                    updated_at=sa.bindparam("b_now"),
                    confirmed_at=sa.func.coalesce(
                        SUBSCRIBERS.c.confirmed_at, sa.bindparam("b_now")
                    ),
                ),
                changed,
            )
        if events:
            conn.execute(sa.insert(EVENTS), events)
        summary.interests += interests.set_texts(conn, texts, source="import")
    return len(chunk)


def _event(subscriber_id: int, kind: str, detail: str, at: Any) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "at": at,
        "kind": kind,
        "detail": detail,
        "source": "import",
    }


def _known(conn: Connection, addresses: list[str]) -> dict[str, tuple[int, str, str, str]]:
    """The readers among ``addresses``: address -> (id, status, categories, language)."""
    table = SUBSCRIBERS
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        where = table.c.email == sa.any_(
            sa.bindparam("emails", addresses, type_=postgresql.ARRAY(sa.String))
        )
    else:
        where = table.c.email.in_(addresses)
    query = sa.select(
        table.c.email, table.c.id, table.c.status, table.c.categories, table.c.language
    ).where(where)
    return {
        email: (sid, status, cats, lang) for email, sid, status, cats, lang in conn.execute(query)
    }

"""Readers in bulk from a CSV file (email, categories, language and an optional
interests column): checked whole, then written in chunks of thousands of rows per
transaction, the file read once.

The file is read and every row checked as it streams; the valid rows are staged in a
temporary table (``subscribers.import_staging``), so memory holds one chunk whatever
the file's size. A bad file stores nothing (the error names the line numbers of up to
20 bad rows). An address the file repeats counts once: its last row wins, the others
are counted as merged. Then the staged rows are written ``CHUNK`` per transaction:
new readers are inserted active (one ``INSERT ... SELECT`` from the staged rows),
known readers get the file's categories and language (and are made active if pending
or paused), and an unsubscribed, bounced or complained address stays exactly as it
is: the reader's "no" outranks any file.

A non-empty ``interests`` cell sets the reader's free-text interests (their liked papers
are kept); an empty cell, or no such column, leaves their interests as they are, so a
re-imported export never erases what readers wrote on the web.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from subscribers.import_staging import STAGED, Row, Staging
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


Opener = Callable[[], io.TextIOBase | Any]


def opener_for(source: Path | str) -> Opener:
    """A function opening ``source`` (a path, or the CSV text itself) for one pass."""
    if isinstance(source, Path):
        path = source
        return lambda: path.open("r", encoding="utf-8-sig", newline="")
    text = source.removeprefix("\ufeff")
    return lambda: io.StringIO(text, newline="")


@dataclass
class _Errors:
    """The bad rows: how many, and the first ``MAX_ERRORS`` of them named."""

    count: int = 0
    named: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.named) < MAX_ERRORS:
            self.named.append(message)

    def raise_any(self) -> None:
        if self.count:
            listed = "\n".join(self.named)
            more = f"\n... and {self.count - MAX_ERRORS} more" if self.count > MAX_ERRORS else ""
            raise InvalidInputError(f"{self.count} bad rows; nothing was imported:\n{listed}{more}")


def _rows(
    open_file: Opener, taxonomy: Taxonomy, default_language: str, errors: _Errors
) -> Iterator[Row]:
    """Every valid row; bad ones go to ``errors``."""
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
                errors.add(f"line {number}: {exc}")
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
    errors = _Errors()
    summary = ImportSummary(dry_run=dry_run)
    with engine.connect() as conn:
        staging = Staging(conn)
        try:
            rows = _rows(open_file, taxonomy, default_language, errors)
            while chunk := list(itertools.islice(rows, CHUNK)):
                summary.rows += len(chunk)
                if not errors.count:  # a bad file stores nothing: stop staging, keep checking
                    staging.add(chunk)
            errors.raise_any()
            summary.merged = staging.merge_repeats()
            conn.commit()
            total = summary.rows - summary.merged
            done = 0
            for staged in staging.chunks(CHUNK):
                done += _write(conn, staged, summary)
                if progress:
                    progress(done, total)
            if progress and not done:
                progress(0, 0)
        finally:
            conn.rollback()
            staging.drop()
            conn.commit()
    return summary


def _write(conn: Connection, chunk: list[Row], summary: ImportSummary) -> int:
    """One chunk of staged rows in one transaction (counted only, with a dry run)."""
    first, last = chunk[0][0], chunk[-1][0]
    known = _known(conn, first, last)
    changed: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    texts: dict[int, str] = {}  # known readers' new interests text
    new_texts: dict[str, str] = {}  # new readers' (by address: no id yet)
    new = 0
    now = utcnow()
    for _, address, categories, language, text in chunk:
        found = known.get(address)
        if found is None:
            new += 1
            if text is not None:
                new_texts[address] = text
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
            continue
        summary.updated += 1
        changed.append({"b_id": sid, "b_cats": categories, "b_lang": language, "b_now": now})
        detail = f"imported: categories {categories or '-'}, language {language}"
        if status != SubscriberStatus.ACTIVE:
            detail += f"; {status}->active"
        events.append(_event(sid, "preferences", detail, now))
    if summary.dry_run:
        summary.added += new
        summary.interests += len(new_texts)
        summary.interests += interests.set_texts(conn, texts, source="import", write=False)
        conn.rollback()
        return len(chunk)
    if new:
        added = _insert_new(conn, first, last, now)
        summary.added += len(added)
        events += [_event(sid, "status", "pending->active", now) for sid in added.values()]
        texts.update({added[address]: text for address, text in new_texts.items()})
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
                confirmed_at=sa.func.coalesce(SUBSCRIBERS.c.confirmed_at, sa.bindparam("b_now")),
            ),
            changed,
        )
    if events:
        conn.execute(sa.insert(EVENTS), events)
    summary.interests += interests.set_texts(conn, texts, source="import")
    conn.commit()
    return len(chunk)


def _insert_new(conn: Connection, first: int, last: int, now: Any) -> dict[str, int]:
    """Insert the staged rows of lines ``first``..``last`` whose address is no reader yet,
    in file order, by one ``INSERT ... SELECT`` (no row travels through Python);
    returns address -> new id."""
    staged = STAGED
    unknown = ~sa.exists().where(SUBSCRIBERS.c.email == staged.c.email)
    source = (
        sa.select(
            staged.c.email,
            staged.c.categories,
            staged.c.language,
            sa.literal(SubscriberStatus.ACTIVE.value),
            sa.literal(now, SUBSCRIBERS.c.created_at.type),
            sa.literal(now, SUBSCRIBERS.c.created_at.type),
            sa.literal(now, SUBSCRIBERS.c.created_at.type),
        )
        .where(staged.c.line.between(first, last), unknown)
        .order_by(staged.c.line)
    )
    columns = ["email", "categories", "language", "status", "confirmed_at", "created_at"]
    statement = (
        sa.insert(SUBSCRIBERS)
        .from_select([*columns, "updated_at"], source)
        .returning(SUBSCRIBERS.c.email, SUBSCRIBERS.c.id)
    )
    return {email: sid for email, sid in conn.execute(statement)}


def _event(subscriber_id: int, kind: str, detail: str, at: Any) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "at": at,
        "kind": kind,
        "detail": detail,
        "source": "import",
    }


def _known(conn: Connection, first: int, last: int) -> dict[str, tuple[int, str, str, str]]:
    """The readers among the staged rows of lines ``first``..``last``:
    address -> (id, status, categories, language)."""
    table = SUBSCRIBERS
    query = (
        sa.select(table.c.email, table.c.id, table.c.status, table.c.categories, table.c.language)
        .join(STAGED, STAGED.c.email == table.c.email)
        .where(STAGED.c.line.between(first, last))
    )
    return {
        email: (sid, status, cats, lang) for email, sid, status, cats, lang in conn.execute(query)
    }

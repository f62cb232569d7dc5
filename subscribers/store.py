"""Subscriber operations shared by the CLI, the web app and the sender.

Every status change goes through ``_set_status`` so it is recorded with its source.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.categories import Taxonomy
from newsletter.db import session_scope, utcnow
from newsletter.errors import InvalidInputError
from subscribers.models import SUPPRESSED, Subscriber, SubscriberEvent

log = logging.getLogger(__name__)


def normalize_email(raw: str) -> str:
    """The canonical, lower-cased form of an address, or a clear error."""
    text = (raw or "").strip()
    if len(text) > 320:
        raise InvalidInputError("that e-mail address is too long (320 characters at most)")
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInputError(f"invalid e-mail address: {exc}") from exc
    return info.normalized.lower()


@dataclass(frozen=True)
class SubscriberInfo:
    id: int
    email: str
    status: str
    categories: tuple[str, ...]
    language: str

    def as_json(self) -> dict[str, object]:
        return {
            "email": self.email,
            "status": self.status,
            "categories": list(self.categories),
            "language": self.language,
        }


def _info(row: Subscriber) -> SubscriberInfo:
    assert row.id is not None
    return SubscriberInfo(row.id, row.email, row.status, row.category_list, row.language)


def _record(session: Session, row: Subscriber, kind: str, detail: str, source: str) -> None:
    assert row.id is not None
    session.add(SubscriberEvent(subscriber_id=row.id, kind=kind, detail=detail, source=source))


def _set_status(session: Session, row: Subscriber, status: str, source: str) -> None:
    if row.status == status:
        return
    previous = row.status
    row.status = status
    row.updated_at = utcnow()
    if status == "active" and row.confirmed_at is None:
        row.confirmed_at = utcnow()
    session.add(row)
    session.flush()
    _record(session, row, "status", f"{previous}->{status}", source)


def _find(session: Session, email: str) -> Subscriber | None:
    return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def add_active(
    engine: Engine,
    taxonomy: Taxonomy,
    email: str,
    categories: Iterable[str] | None = None,
    language: str = "ko",
    *,
    source: str = "cli",
    revive_suppressed: bool = True,
) -> SubscriberInfo:
    """Add or update a reader the operator vouches for, active at once.

    With ``revive_suppressed=False`` (imports) an unsubscribed, bounced or
    complained address keeps its status: the reader's "no" outranks a CSV file.
    """
    address = normalize_email(email)
    slugs = taxonomy.validate(categories) if categories is not None else taxonomy.slugs
    with session_scope(engine) as session:
        row = _find(session, address)
        if row is None:
            row = Subscriber(email=address, status="pending")
            session.add(row)
        row.categories = ",".join(slugs)
        row.language = language
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        if row.status not in SUPPRESSED or revive_suppressed:
            _set_status(session, row, "active", source)
        return _info(row)


def get_by_id(engine: Engine, subscriber_id: int) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        return _info(row) if row else None


def get_by_email(engine: Engine, email: str) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = _find(session, normalize_email(email))
        return _info(row) if row else None


def set_status(engine: Engine, subscriber_id: int, status: str, source: str) -> None:
    with session_scope(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is not None:
            _set_status(session, row, status, source)


def list_subscribers(engine: Engine, status: str | None = None) -> list[SubscriberInfo]:
    with Session(engine) as session:
        query = select(Subscriber).order_by(Subscriber.id)  # type: ignore[arg-type]
        if status:
            query = query.where(Subscriber.status == status)
        return [_info(r) for r in session.exec(query)]


def remove(engine: Engine, email: str, source: str = "cli") -> bool:
    """Unsubscribe an address (kept as a suppression, never deleted); False if unknown."""
    address = normalize_email(email)
    with session_scope(engine) as session:
        row = _find(session, address)
        if row is None:
            return False
        _set_status(session, row, "unsubscribed", source)
        return True


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
        info = add_active(
            engine, taxonomy, address, slugs, language, source="import", revive_suppressed=False
        )
        suppressed += info.status in SUPPRESSED
    return len(rows) - suppressed, suppressed


def export_csv(engine: Engine) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for info in list_subscribers(engine):
        writer.writerow([info.email, ",".join(info.categories), info.language])
    return out.getvalue()


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    categories: tuple[str, ...]
    language: str


def active_recipients(engine: Engine, batch: int = 5000) -> Iterator[Recipient]:
    """Every active reader, streamed with Core (no ORM objects) for large lists."""
    table = Subscriber.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(table.c.id, table.c.email, table.c.categories, table.c.language)
        .where(table.c.status == "active")
        .order_by(table.c.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(query)
        for sid, email, cats, language in result:
            yield Recipient(sid, email, tuple(s for s in cats.split(",") if s), language)

"""Subscriber operations shared by the CLI, the web app and the sender.

Every status or preference change goes through ``_set_status`` or ``_record`` so it
is recorded with its time and source. A suppressed address (unsubscribed, bounced,
complained) is revived only by ``confirm``: the reader subscribed again and
followed the link mailed to them; neither the operator nor an import can.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from newsletter.categories import Taxonomy
from newsletter.db import session_scope, utcnow
from newsletter.errors import InvalidInputError
from subscribers.models import CADENCES, STATUSES, SUPPRESSED, Subscriber, SubscriberEvent

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


#: Weekday names as the CLI takes and ``--json`` shows them; the index is the stored number.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_weekday(text: str) -> int:
    """0 (Monday) .. 6 (Sunday) from ``mon``, ``Monday`` or ``0``, or a clear error."""
    word = text.strip().lower()
    if word.isdigit() and int(word) < len(WEEKDAYS):
        return int(word)
    for number, name in enumerate(_DAY_NAMES):
        if len(word) >= 3 and name.startswith(word):
            return number
    raise InvalidInputError(
        f"unknown weekday {text!r}; use one of {', '.join(WEEKDAYS)} (or 0 = Monday .. 6 = Sunday)"
    )


def check_cadence(cadence: str, weekday: int) -> None:
    """Refuse a cadence or weekday the sender would not understand."""
    if cadence not in CADENCES:
        raise InvalidInputError(f"unknown cadence {cadence!r}; use one of {', '.join(CADENCES)}")
    if not 0 <= weekday < len(WEEKDAYS):
        raise InvalidInputError(f"weekday must be 0 (Monday) .. 6 (Sunday), not {weekday}")


@dataclass(frozen=True)
class SubscriberInfo:
    id: int
    email: str
    status: str
    categories: tuple[str, ...]
    language: str
    cadence: str = "daily"
    weekday: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "email": self.email,
            "status": self.status,
            "categories": list(self.categories),
            "language": self.language,
            "cadence": self.cadence,
            "weekday": WEEKDAYS[self.weekday],
        }


def _info(row: Subscriber) -> SubscriberInfo:
    assert row.id is not None
    return SubscriberInfo(
        row.id,
        row.email,
        row.status,
        row.category_list,
        row.language,
        row.cadence,
        row.weekday,
    )


def _record(session: Session, row: Subscriber, kind: str, detail: str, source: str) -> None:
    assert row.id is not None
    session.add(SubscriberEvent(subscriber_id=row.id, kind=kind, detail=detail, source=source))


def _set_status(
    session: Session, row: Subscriber, status: str, source: str, *, revive: bool = False
) -> None:
    """Change and record a status; only a confirmation (``revive``) lifts a suppression."""
    if status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if row.status == status:
        return
    if row.status in SUPPRESSED and status not in SUPPRESSED and not revive:
        raise InvalidInputError(
            f"this reader is {row.status}; only they can subscribe again (on the web form, "
            "then confirming by mail)"
        )
    previous = row.status
    row.status = status
    row.confirm_nonce = ""
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
    cadence: str | None = None,
    weekday: int | None = None,
) -> SubscriberInfo:
    """Add or update a reader the operator vouches for, active at once.

    An unsubscribed, bounced or complained address is left exactly as it is
    (check the returned status): the reader's "no" outranks the operator and any
    CSV file; only the reader can subscribe again. ``cadence`` and ``weekday``
    left None keep a known reader's choice (daily, Monday for a new one).
    """
    address = normalize_email(email)
    slugs = taxonomy.validate(categories) if categories is not None else taxonomy.slugs
    check_cadence(cadence or "daily", 0 if weekday is None else weekday)
    with session_scope(engine) as session:
        row = _find(session, address)
        if row is not None and row.status in SUPPRESSED:
            return _info(row)
        if row is None:
            row = Subscriber(
                email=address,
                status="pending",
                categories=",".join(slugs),
                language=language,
                cadence=cadence or "daily",
                weekday=weekday or 0,
            )
            session.add(row)
            session.flush()
        else:
            _change_preferences(session, row, slugs, language, source, cadence, weekday)
        _set_status(session, row, "active", source)
        return _info(row)


def _change_preferences(
    session: Session,
    row: Subscriber,
    slugs: tuple[str, ...],
    language: str,
    source: str,
    cadence: str | None = None,
    weekday: int | None = None,
) -> bool:
    """Store new categories, language and (unless None) cadence and weekday, recording
    what changed; False if nothing did."""
    categories = ",".join(slugs)
    cadence = cadence or row.cadence
    weekday = row.weekday if weekday is None else weekday
    changes = []
    if row.categories != categories:
        changes.append(f"categories: {row.categories or '-'} -> {categories or '-'}")
    if row.language != language:
        changes.append(f"language: {row.language} -> {language}")
    if row.cadence != cadence:
        changes.append(f"cadence: {row.cadence} -> {cadence}")
    if row.weekday != weekday:
        changes.append(f"weekday: {WEEKDAYS[row.weekday]} -> {WEEKDAYS[weekday]}")
    if not changes:
        return False
    row.categories = categories
    row.language = language
    row.cadence = cadence
    row.weekday = weekday
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    _record(session, row, "preferences", "; ".join(changes), source)
    return True


def get_by_id(engine: Engine, subscriber_id: int) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        return _info(row) if row else None


def get_by_email(engine: Engine, email: str) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = _find(session, normalize_email(email))
        return _info(row) if row else None


def set_status(engine: Engine, subscriber_id: int, status: str, source: str) -> None:
    """Record a status change (e.g. ``bounced`` from a webhook); unknown ids are ignored."""
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


# -- the reader's own actions (web) --------------------------------------------------------


@dataclass(frozen=True)
class SubscribeRequest:
    """What a subscribe form submission led to: which mail the address should get."""

    subscriber_id: int
    mail: Literal["confirm", "manage"]
    nonce: str  # for the confirm link; "" for a manage mail
    categories: tuple[str, ...]
    language: str


def request_subscription(
    engine: Engine,
    taxonomy: Taxonomy,
    email: str,
    categories: Iterable[str],
    language: str,
    *,
    source: str = "web",
) -> SubscribeRequest:
    """Note a subscribe request; nothing is mailed to anyone until it is confirmed.

    A new, pending or suppressed address keeps (or gets) a non-mailed status and an
    outstanding request with the chosen categories: it needs a confirmation mail.
    An active or paused address is left unchanged (a stranger must not change a
    reader's choices): it gets a mail with its manage link instead.
    """
    address = normalize_email(email)
    slugs = taxonomy.validate(categories)
    if not slugs:
        raise InvalidInputError("choose at least one category")
    # Two racing first requests for one address: the loser retries and finds the row.
    for attempt in range(2):
        try:
            with session_scope(engine) as session:
                return _request(session, address, slugs, language, source)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _request(
    session: Session, address: str, slugs: tuple[str, ...], language: str, source: str
) -> SubscribeRequest:
    row = _find(session, address)
    if row is None:
        row = Subscriber(
            email=address, status="pending", categories=",".join(slugs), language=language
        )
        session.add(row)
        session.flush()
        _record(session, row, "status", "new->pending", source)
    elif row.status in ("active", "paused"):
        _record(session, row, "request", "manage link mailed", source)
        return SubscribeRequest(_id(row), "manage", "", row.category_list, row.language)
    else:
        _change_preferences(session, row, slugs, language, source)
    # Re-sending keeps the outstanding nonce, so every confirmation mail of one request works.
    if not row.confirm_nonce:
        row.confirm_nonce = secrets.token_urlsafe(12)
        row.updated_at = utcnow()
        session.add(row)
    _record(session, row, "request", "confirmation mailed", source)
    return SubscribeRequest(_id(row), "confirm", row.confirm_nonce, slugs, language)


def _id(row: Subscriber) -> int:
    assert row.id is not None
    return row.id


def pending_request(engine: Engine, subscriber_id: int, nonce: str) -> SubscriberInfo | None:
    """The reader whose outstanding request ``nonce`` names, or None if it was used or replaced."""
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or not _nonce_matches(row, nonce):
            return None
        return _info(row)


def _nonce_matches(row: Subscriber, nonce: str) -> bool:
    return (
        bool(nonce) and bool(row.confirm_nonce) and secrets.compare_digest(row.confirm_nonce, nonce)
    )


def confirm(
    engine: Engine, subscriber_id: int, nonce: str, *, source: str = "web"
) -> SubscriberInfo | None:
    """Activate the reader whose request ``nonce`` names; None if it was used or replaced.

    This is the only way a suppressed (unsubscribed, bounced, complained) address
    becomes active again.
    """
    with session_scope(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or not _nonce_matches(row, nonce):
            return None
        _set_status(session, row, "active", source, revive=True)
        row.confirmed_at = utcnow()
        session.add(row)
        return _info(row)


def update_preferences(
    engine: Engine,
    taxonomy: Taxonomy,
    subscriber_id: int,
    categories: Iterable[str],
    language: str,
    *,
    source: str = "web",
    cadence: str | None = None,
    weekday: int | None = None,
) -> SubscriberInfo:
    """Change an active or paused reader's categories, language and (unless None)
    cadence and weekday."""
    slugs = taxonomy.validate(categories)
    if not slugs:
        raise InvalidInputError("choose at least one category, or unsubscribe")
    check_cadence(cadence or "daily", 0 if weekday is None else weekday)
    with session_scope(engine) as session:
        row = _get_mailable(session, subscriber_id)
        _change_preferences(session, row, slugs, language, source, cadence, weekday)
        return _info(row)


def pause(engine: Engine, subscriber_id: int, *, source: str = "web") -> SubscriberInfo:
    """Stop mailing an active reader for now, keeping their choices."""
    with session_scope(engine) as session:
        row = _get_mailable(session, subscriber_id)
        _set_status(session, row, "paused", source)
        return _info(row)


def resume(engine: Engine, subscriber_id: int, *, source: str = "web") -> SubscriberInfo:
    """Mail a paused reader again."""
    with session_scope(engine) as session:
        row = _get_mailable(session, subscriber_id)
        _set_status(session, row, "active", source)
        return _info(row)


def _get_mailable(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None or row.status not in ("active", "paused"):
        raise InvalidInputError("this subscription is not active; subscribe again first")
    return row


def unsubscribe(
    engine: Engine, subscriber_id: int, *, source: str = "web"
) -> SubscriberInfo | None:
    """Unsubscribe a reader by id (the web's links); None when the id is unknown."""
    with session_scope(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        return None if row is None else _unsubscribe(session, row, source)


def unsubscribe_address(
    engine: Engine, email: str, *, source: str = "cli"
) -> SubscriberInfo | None:
    """Unsubscribe a reader by address (``subscribers remove``); None when it is unknown."""
    address = normalize_email(email)
    with session_scope(engine) as session:
        row = _find(session, address)
        return None if row is None else _unsubscribe(session, row, source)


def _unsubscribe(session: Session, row: Subscriber, source: str) -> SubscriberInfo:
    """The one unsubscribe of every entry point: at once, idempotent, never deleting.

    The row stays as a suppression so the address is never mailed again. A bounced or
    complained address keeps that status: it already stops all mail, and it is what the
    sender and the operator need to know (a dead mailbox, a complaint). Any outstanding
    subscribe request is cancelled, so its confirm link no longer revives the address.
    """
    if row.status in SUPPRESSED:
        if row.confirm_nonce:
            row.confirm_nonce = ""
            session.add(row)
            _record(session, row, "request", "cancelled by unsubscribe", source)
        return _info(row)
    _set_status(session, row, "unsubscribed", source)
    return _info(row)


@dataclass(frozen=True)
class EventInfo:
    at: str
    kind: str
    detail: str
    source: str


def events(engine: Engine, subscriber_id: int) -> list[EventInfo]:
    """The reader's audit trail, oldest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(SubscriberEvent)
            .where(SubscriberEvent.subscriber_id == subscriber_id)
            .order_by(SubscriberEvent.id)  # type: ignore[arg-type]
        )
        return [EventInfo(r.at.isoformat(), r.kind, r.detail, r.source) for r in rows]


# -- CSV ------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    email: str
    categories: tuple[str, ...]
    language: str
    cadence: str = "daily"
    weekday: int = 0


def purge_unconfirmed(engine: Engine, older_than: dt.timedelta) -> int:
    """Delete sign-ups never confirmed within ``older_than``; returns how many.

    An unconfirmed address is someone's claim, not consent: keeping it forever
    only keeps personal data we may not use. Rows that were ever confirmed, or
    that hold a suppression (unsubscribed, bounced, complained), are never purged.
    """
    from newsletter.delivery import ledger

    subscribers = Subscriber.__table__  # type: ignore[attr-defined]
    events_table = SubscriberEvent.__table__  # type: ignore[attr-defined]
    stale = sa.select(subscribers.c.id).where(
        subscribers.c.status == "pending",
        subscribers.c.confirmed_at.is_(None),
        subscribers.c.created_at < utcnow() - older_than,
    )
    with engine.begin() as conn:
        ids = [row[0] for row in conn.execute(stale)]
        mailed = ledger.has_deliveries(conn, ids)
        ids = [i for i in ids if i not in mailed]
        if ids:
            conn.execute(sa.delete(events_table).where(events_table.c.subscriber_id.in_(ids)))
            conn.execute(sa.delete(subscribers).where(subscribers.c.id.in_(ids)))
    if ids:
        log.info("purged %d sign-ups never confirmed", len(ids))
    return len(ids)


def active_recipients(engine: Engine, batch: int = 5000) -> Iterator[Recipient]:
    """Every active reader, streamed with Core (no ORM objects) for large lists."""
    table = Subscriber.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(
            table.c.id,
            table.c.email,
            table.c.categories,
            table.c.language,
            table.c.cadence,
            table.c.weekday,
        )
        .where(table.c.status == "active")
        .order_by(table.c.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(query)
        for sid, email, cats, language, cadence, weekday in result:
            yield Recipient(
                sid, email, tuple(s for s in cats.split(",") if s), language, cadence, weekday
            )

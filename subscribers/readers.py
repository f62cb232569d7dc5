"""Readers: who they are, their choices and their status, each change recorded.

Every status or preference change goes through ``change_status`` or ``record_event``
so it is recorded with its time and source. A suppressed address (unsubscribed,
bounced, complained) is revived only by ``signup.confirm``: the reader subscribed
again and followed the link mailed to them; neither the operator nor an import can.
Unsubscribing, from the CLI or a link, is one path (``unsubscribe``) that keeps a
bounce or a complaint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter.categories import Taxonomy
from newsletter.db import session_scope, utcnow
from newsletter.errors import InvalidInputError
from newsletter.statuses import SUPPRESSED, Cadence, SubscriberStatus
from subscribers import interests
from subscribers.models import Subscriber, SubscriberEvent

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
    if cadence not in tuple(Cadence):
        raise InvalidInputError(f"unknown cadence {cadence!r}; use one of {', '.join(Cadence)}")
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


def info_of(row: Subscriber) -> SubscriberInfo:
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


def record_event(session: Session, row: Subscriber, kind: str, detail: str, source: str) -> None:
    assert row.id is not None
    session.add(SubscriberEvent(subscriber_id=row.id, kind=kind, detail=detail, source=source))


def change_status(
    session: Session, row: Subscriber, status: str, source: str, *, revive: bool = False
) -> None:
    """Change and record a status; only a confirmation (``revive``) lifts a suppression.

    Leaving (unsubscribed, bounced, complained) erases the reader's interests.
    """
    if status not in tuple(SubscriberStatus):
        choices = ", ".join(SubscriberStatus)
        raise InvalidInputError(f"unknown status {status!r}; use one of {choices}")
    if row.status == status:
        return
    if row.status in SUPPRESSED and status not in SUPPRESSED and not revive:
        raise InvalidInputError(
            f"this reader is {row.status}; only they can subscribe again (on the web form, "
            "then confirming by mail)"
        )
    previous = row.status
    if status in SUPPRESSED and row.id is not None:
        # A reader who gets no mail has no use for interests: they are erased, not kept.
        interests.delete_for(session.connection(), [row.id])
    row.status = status
    row.confirm_nonce = ""
    row.updated_at = utcnow()
    if status == "active" and row.confirmed_at is None:
        row.confirmed_at = utcnow()
    session.add(row)
    session.flush()
    record_event(session, row, "status", f"{previous}->{status}", source)


def find_row(session: Session, email: str) -> Subscriber | None:
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
        row = find_row(session, address)
        if row is not None and row.status in SUPPRESSED:
            return info_of(row)
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
            change_preferences(session, row, slugs, language, source, cadence, weekday)
        change_status(session, row, "active", source)
        return info_of(row)


def change_preferences(
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
    record_event(session, row, "preferences", "; ".join(changes), source)
    return True


def get_by_id(engine: Engine, subscriber_id: int) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        return info_of(row) if row else None


def get_by_email(engine: Engine, email: str) -> SubscriberInfo | None:
    with Session(engine) as session:
        row = find_row(session, normalize_email(email))
        return info_of(row) if row else None


def rows_by_id(session: Session, ids: Iterable[int]) -> dict[int, Subscriber]:
    """The readers of ``ids`` that exist, read in one query and held by ``session``.

    For a caller applying many changes in one transaction (the provider webhook):
    a change made through a row is what the next look-up of that reader sees.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(Subscriber).where(col(Subscriber.id).in_(wanted))
    return {row.id: row for row in session.exec(query) if row.id is not None}


def rows_by_email(session: Session, addresses: Iterable[str]) -> dict[str, Subscriber]:
    """The readers of normalised ``addresses`` that exist, like ``rows_by_id``."""
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    query = select(Subscriber).where(col(Subscriber.email).in_(wanted))
    return {row.email: row for row in session.exec(query)}


def set_status(engine: Engine, subscriber_id: int, status: str, source: str) -> None:
    """Record a status change (e.g. ``bounced`` from a webhook); unknown ids are ignored."""
    with session_scope(engine) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is not None:
            change_status(session, row, status, source)


def list_subscribers(engine: Engine, status: str | None = None) -> list[SubscriberInfo]:
    with Session(engine) as session:
        query = select(Subscriber).order_by(Subscriber.id)  # type: ignore[arg-type]
        if status:
            query = query.where(Subscriber.status == status)
        return [info_of(r) for r in session.exec(query)]


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
        change_preferences(session, row, slugs, language, source, cadence, weekday)
        return info_of(row)


def pause(engine: Engine, subscriber_id: int, *, source: str = "web") -> SubscriberInfo:
    """Stop mailing an active reader for now, keeping their choices."""
    with session_scope(engine) as session:
        row = _get_mailable(session, subscriber_id)
        change_status(session, row, "paused", source)
        return info_of(row)


def resume(engine: Engine, subscriber_id: int, *, source: str = "web") -> SubscriberInfo:
    """Mail a paused reader again."""
    with session_scope(engine) as session:
        row = _get_mailable(session, subscriber_id)
        change_status(session, row, "active", source)
        return info_of(row)


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
        row = find_row(session, address)
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
            record_event(session, row, "request", "cancelled by unsubscribe", source)
        return info_of(row)
    change_status(session, row, "unsubscribed", source)
    return info_of(row)


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

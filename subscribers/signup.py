"""Signing up with double opt-in: a request, its confirmation, and purging the unconfirmed.

Nothing is mailed to an address until its owner followed the confirmation link: a
request stores a nonce that only the link mailed to the address carries. An
unconfirmed claim is personal data we may not use, so old ones are purged.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.categories import Taxonomy
from newsletter.db import session_scope, table_of, utcnow
from newsletter.errors import InvalidInputError
from newsletter.statuses import SubscriberStatus
from subscribers import interests
from subscribers.models import Subscriber, SubscriberEvent
from subscribers.readers import (
    SubscriberInfo,
    change_preferences,
    change_status,
    find_row,
    info_of,
    normalize_email,
    record_event,
)

log = logging.getLogger(__name__)

SUBSCRIBERS = table_of(Subscriber)
EVENTS = table_of(SubscriberEvent)


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
    row = find_row(session, address)
    if row is None:
        row = Subscriber(
            email=address, status="pending", categories=",".join(slugs), language=language
        )
        session.add(row)
        session.flush()
        record_event(session, row, "status", "new->pending", source)
    elif row.status in ("active", "paused"):
        record_event(session, row, "request", "manage link mailed", source)
        return SubscribeRequest(_id(row), "manage", "", row.category_list, row.language)
    else:
        change_preferences(session, row, slugs, language, source)
    # Re-sending keeps the outstanding nonce, so every confirmation mail of one request works.
    if not row.confirm_nonce:
        row.confirm_nonce = secrets.token_urlsafe(12)
        row.updated_at = utcnow()
        session.add(row)
    record_event(session, row, "request", "confirmation mailed", source)
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
        return info_of(row)


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
        change_status(session, row, "active", source, revive=True)
        row.confirmed_at = utcnow()
        session.add(row)
        return info_of(row)


def purge_unconfirmed(engine: Engine, older_than: dt.timedelta) -> int:
    """Delete sign-ups never confirmed within ``older_than``; returns how many.

    An unconfirmed address is someone's claim, not consent: keeping it forever
    only keeps personal data we may not use. Rows that were ever confirmed, or
    that hold a suppression (unsubscribed, bounced, complained), are never purged.
    """
    from newsletter.delivery import ledger

    stale = sa.select(SUBSCRIBERS.c.id).where(
        SUBSCRIBERS.c.status == SubscriberStatus.PENDING,
        SUBSCRIBERS.c.confirmed_at.is_(None),
        SUBSCRIBERS.c.created_at < utcnow() - older_than,
    )
    with engine.begin() as conn:
        ids = [row[0] for row in conn.execute(stale)]
        mailed = ledger.has_deliveries(conn, ids)
        ids = [i for i in ids if i not in mailed]
        if ids:
            interests.delete_for(conn, ids)
            conn.execute(sa.delete(EVENTS).where(EVENTS.c.subscriber_id.in_(ids)))
            conn.execute(sa.delete(SUBSCRIBERS).where(SUBSCRIBERS.c.id.in_(ids)))
    if ids:
        log.info("purged %d sign-ups never confirmed", len(ids))
    return len(ids)

"""What the mail provider tells us afterwards, applied to readers and to the ledger.

SendGrid's Event Webhook posts a JSON list of events. Each is applied once
(``provider_events`` keeps every ``sg_event_id``): a hard bounce or a drop of a dead
address makes the reader ``bounced``, a spam report ``complained``, an unsubscribe
``unsubscribed`` (status changes go through ``subscribers.readers.change_status`` with
source ``webhook``); ``delivered`` and ``open`` are noted on the ledger row, and a
bounce or drop marks that row ``failed``. The issue and subscriber ids come back in
the event as the ``custom_args`` the SendGrid backend sent.

Events are applied in order, CHUNK to a transaction: a post of 5,000 events costs a
commit and a few statements per chunk, not three transactions per event (which took
20 s on PostgreSQL, near SendGrid's 30 s limit; ``python -m bench.webhook``). A chunk
that fails is rolled back and its ids, with those of every later chunk, forgotten, so
SendGrid's retry applies them.

A status the reader or the provider already suppressed is never changed here: a
late ``delivered`` must not revive anybody, and a ``bounced`` reader who later
complains stays suppressed either way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from newsletter.db import insert_ignore, session_scope, utcnow
from newsletter.delivery.tables import DELIVERIES, PROVIDER_EVENTS
from newsletter.errors import InvalidInputError
from newsletter.statuses import SUPPRESSED, DeliveryStatus, SubscriberStatus

log = logging.getLogger(__name__)

#: Dropped because of the address itself (SendGrid's ``reason``), and what that makes the reader.
#: Other reasons ("invalid smtpapi header": our request, not the address) change nobody.
_DROP_STATUS: dict[str, SubscriberStatus] = {
    "bounced address": SubscriberStatus.BOUNCED,
    "invalid": SubscriberStatus.BOUNCED,
    "unsubscribed address": SubscriberStatus.UNSUBSCRIBED,
    "spam reporting address": SubscriberStatus.COMPLAINED,
}
_UNSUBSCRIBE = ("unsubscribe", "group_unsubscribe")
#: Events noted on the reader's ledger row (a bounce or drop marks it failed).
_LEDGER_KINDS = ("delivered", "open", "bounce", "dropped")
#: Events applied in one transaction (one commit; two reader queries; an update per kind).
CHUNK = 500


#: Ids travel as 64-bit integers (the tables' BIGINT); a larger one names nothing of ours.
MAX_ID = 2**63 - 1
#: Nesting deeper than this is no SendGrid event (theirs nest two levels); such an event
#: is skipped before ``json`` parses it, whose recursion would fail the whole post.
MAX_DEPTH = 16
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


@dataclass
class EventReport:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0  # events for readers or issues this newsletter does not know


@dataclass
class ParsedEvents:
    """A webhook body's valid events, and how many were skipped as invalid."""

    events: list[dict[str, Any]]
    skipped: int = 0


def parse_events(body: str) -> ParsedEvents:
    """The valid events of a webhook body: one bad event never holds back the good ones.

    Raises InvalidInputError only when the body as a whole is not a JSON list (then
    nothing in it can be told apart). Each element is parsed on its own, so an event
    nested too deep, of the wrong shape or carrying an id beyond 64 bits is skipped
    and counted, and the rest is applied; SendGrid gets a 2xx and does not retry a
    batch whose good events would otherwise never land.
    """
    elements = _top_level_elements(body)
    parsed = ParsedEvents([])
    for number, text in enumerate(elements):
        problem = ""
        event: Any = None
        if text is None:
            problem = f"nested deeper than {MAX_DEPTH} levels"
        else:
            try:
                event = json.loads(text)
            except (ValueError, RecursionError):
                problem = "not valid JSON"
            else:
                problem = _event_problem(event)
        if problem:
            parsed.skipped += 1
            log.warning("SendGrid webhook: event %d skipped: %s", number, problem)
        else:
            parsed.events.append(event)
    return parsed


def _top_level_elements(body: str) -> list[str | None]:
    """The source text of each element of a JSON list (None: nested too deep).

    Only structure is scanned here (strings, brackets, commas); each element's
    text is parsed by ``json`` afterwards.
    """
    text = body.strip()
    if not text.startswith("["):
        try:
            json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"the body is not JSON: {str(exc)[:100]}") from None
        raise InvalidInputError("the body must be a JSON list of events")
    elements: list[str | None] = []
    depth, start, deepest = 0, 1, 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
            if depth == 0:
                _add_element(elements, text[start : match.start()], deepest)
                if text[match.end() :].strip():
                    raise InvalidInputError("the body has text after its JSON list")
                return elements
        elif token == "," and depth == 1:
            _add_element(elements, text[start : match.start()], deepest)
            start, deepest = match.end(), 1
        if depth < 0:
            break
    raise InvalidInputError("the body is not a complete JSON list")


def _add_element(elements: list[str | None], text: str, deepest: int) -> None:
    if not text.strip() and not elements:
        return  # the empty list
    # ``deepest`` counts the list itself.
    elements.append(None if deepest - 1 > MAX_DEPTH else text)


def _event_problem(event: Any) -> str:
    """Why ``event`` cannot be applied, or "" when it can."""
    if not isinstance(event, dict):
        return "not a JSON object"
    for key in ("event", "sg_event_id"):
        if not isinstance(event.get(key), str) or not event[key]:
            return f"no {key!r} string"
    for key in ("subscriber_id", "issue_id"):
        if event.get(key) not in (None, "") and _int(event[key]) is None:
            return f"{key!r} is not an id (a whole number from 1 to 2**63-1)"
    return ""


def apply_sendgrid_events(engine: Engine, events: Sequence[Mapping[str, Any]]) -> EventReport:
    """Apply each event not seen before; a replayed event id changes nothing."""
    report = EventReport()
    if not events:
        return report
    kinds = {str(e["sg_event_id"]): str(e["event"]) for e in events}
    fresh = _remember(engine, kinds)
    report.duplicates = len(events) - len(fresh)
    todo: list[Mapping[str, Any]] = []
    for event in events:
        event_id = str(event["sg_event_id"])
        if event_id in fresh:
            fresh.discard(event_id)  # an id twice in one post is applied once
            todo.append(event)
    done = 0
    try:
        for start in range(0, len(todo), CHUNK):
            applied, ignored = _apply_chunk(engine, todo[start : start + CHUNK])
            report.applied += applied
            report.ignored += ignored
            done = start + CHUNK
    except BaseException:
        # Forget what was not applied, so SendGrid's retry of this post applies it then.
        _forget(engine, {str(e["sg_event_id"]) for e in todo[done:]})
        raise
    return report


def _remember(engine: Engine, kinds: Mapping[str, str]) -> set[str]:
    """Store the event ids; returns those that were new."""
    if not kinds:
        return set()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        rows = conn.execute(
            insert_ignore(engine, PROVIDER_EVENTS).returning(PROVIDER_EVENTS.c.event_id),
            [
                {"event_id": event_id[:255], "kind": kind[:64], "received_at": now}
                for event_id, kind in kinds.items()
            ],
        ).all()
    return {row[0] for row in rows}


def _forget(engine: Engine, event_ids: set[str]) -> None:
    if event_ids:
        with engine.begin() as conn:
            conn.execute(
                sa.delete(PROVIDER_EVENTS).where(PROVIDER_EVENTS.c.event_id.in_(event_ids))
            )


def _int(value: Any) -> int | None:
    """A positive 64-bit id from an event field, else None (never an overflowing query)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def _when(event: Mapping[str, Any]) -> dt.datetime:
    stamp = _int(event.get("timestamp"))
    if stamp is not None:
        try:
            return dt.datetime.fromtimestamp(stamp, dt.UTC)
        except (OverflowError, OSError, ValueError):
            pass  # a timestamp beyond the calendar: when it arrived will do
    return dt.datetime.now(dt.UTC)


def new_status(event: Mapping[str, Any]) -> SubscriberStatus | None:
    """The reader status an event calls for, or None for none."""
    kind = str(event["event"])
    if kind == "bounce":
        # SendGrid marks soft, temporary refusals as type "blocked": not a dead address.
        return SubscriberStatus.BOUNCED if str(event.get("type", "bounce")) == "bounce" else None
    if kind == "dropped":
        reason = str(event.get("reason", "")).strip().lower()
        return _DROP_STATUS.get(reason)
    if kind == "spamreport":
        return SubscriberStatus.COMPLAINED
    if kind in _UNSUBSCRIBE:
        return SubscriberStatus.UNSUBSCRIBED
    return None


def _apply_chunk(engine: Engine, events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Apply ``events`` in order in one transaction; returns (applied, ignored).

    Their readers are read up front, in two queries, into one session: a status one
    event changes is the status the next event about that reader sees.
    """
    from subscribers import readers

    applied = ignored = 0
    notes: dict[str, list[dict[str, Any]]] = {}
    with session_scope(engine) as session:
        by_id = readers.rows_by_id(session, _ids(events))
        addresses = {
            str(e["email"]): _address(e["email"])
            for e in events
            if _int(e.get("subscriber_id")) not in by_id and isinstance(e.get("email"), str)
        }
        by_email = readers.rows_by_email(session, filter(None, addresses.values()))
        for event in events:
            kind = str(event["event"])
            # The reader by the subscriber id we sent, else by address.
            row = by_id.get(_int(event.get("subscriber_id")) or 0)
            if row is None and isinstance(event.get("email"), str):
                row = by_email.get(addresses[event["email"]] or "")
            if row is None or row.id is None:
                log.info("SendGrid %s event for a reader we do not know; ignored", kind)
                ignored += 1
                continue
            issue_id = _int(event.get("issue_id"))
            if issue_id is not None and kind in _LEDGER_KINDS:
                notes.setdefault(_NOTE_OF.get(kind, "failed"), []).append(
                    _note(event, issue_id, row.id)
                )
            status = new_status(event)
            if status and row.status not in SUPPRESSED:
                readers.change_status(session, row, status, "webhook")
                log.info("reader %d is now %s (SendGrid %s)", row.id, status, kind)
            applied += 1
        _note_ledger(session.connection(), notes)
    return applied, ignored


def _ids(events: Sequence[Mapping[str, Any]]) -> set[int]:
    return {i for i in (_int(e.get("subscriber_id")) for e in events) if i is not None}


def _address(email: str) -> str | None:
    """The normalised address to look a reader up by, or None when it is none."""
    from subscribers import readers

    try:
        return readers.normalize_email(email)
    except InvalidInputError:
        return None


#: The ledger column set each event kind writes; any other ledger kind marks the row failed.
_NOTE_OF = {"delivered": "delivered", "open": "open"}


def _note(event: Mapping[str, Any], issue_id: int, subscriber_id: int) -> dict[str, Any]:
    reason = str(event.get("reason") or event.get("response") or event.get("type") or "")
    return {
        "b_issue": issue_id,
        "b_reader": subscriber_id,
        "b_at": _when(event),
        "b_error": f"{event['event']}: {reason}"[:500],
    }


def _note_ledger(conn: Connection, notes: Mapping[str, list[dict[str, Any]]]) -> None:
    """The events on the readers' ledger rows: delivered, opened, or failed after all.

    One statement per kind, run for every event of that kind in order: the kinds write
    different columns, so the rows end as if each event had been applied in turn. An
    event for a row the ledger does not have (another sender's mail) changes nothing.
    """
    where = (
        DELIVERIES.c.issue_id == sa.bindparam("b_issue"),
        DELIVERIES.c.subscriber_id == sa.bindparam("b_reader"),
    )
    values: dict[str, dict[str, Any]] = {
        "delivered": {"delivered_at": sa.bindparam("b_at")},
        "open": {"opened_at": sa.bindparam("b_at")},
        "failed": {
            "status": DeliveryStatus.FAILED,
            "error": sa.bindparam("b_error"),
            "updated_at": utcnow(),
        },
    }
    for group, rows in notes.items():
        conn.execute(sa.update(DELIVERIES).where(*where).values(**values[group]), rows)

"""What the mail provider tells us afterwards, applied to readers and to the ledger.

SendGrid's Event Webhook posts a JSON list of events. Each is applied once
(``provider_events`` keeps every ``sg_event_id``): a hard bounce or a drop of a dead
address makes the reader ``bounced``, a spam report ``complained``, an unsubscribe
``unsubscribed`` (status changes go through ``subscribers.readers.set_status`` with
source ``webhook``); ``delivered`` and ``open`` are noted on the ledger row, and a
bounce or drop marks that row ``failed``. The issue and subscriber ids come back in
the event as the ``custom_args`` the SendGrid backend sent.

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
from sqlalchemy.engine import Engine

from newsletter.db import insert_ignore
from newsletter.delivery import ledger
from newsletter.delivery.tables import PROVIDER_EVENTS
from newsletter.errors import InvalidInputError
from newsletter.statuses import SUPPRESSED, SubscriberStatus

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
    done: set[str] = set()
    try:
        for event in events:
            event_id = str(event["sg_event_id"])
            if event_id not in fresh or event_id in done:
                continue
            done.add(event_id)
            if _apply(engine, event):
                report.applied += 1
            else:
                report.ignored += 1
    except BaseException:
        # Forget what was not applied, so SendGrid's retry of this post applies it then.
        _forget(engine, fresh - done)
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


def _reader(engine: Engine, event: Mapping[str, Any]) -> Any:
    """The reader an event is about: by the subscriber id we sent, else by address."""
    from subscribers import readers

    subscriber_id = _int(event.get("subscriber_id"))
    info = readers.get_by_id(engine, subscriber_id) if subscriber_id else None
    if info is None and isinstance(event.get("email"), str):
        try:
            info = readers.get_by_email(engine, event["email"])
        except InvalidInputError:
            return None
    return info


def _apply(engine: Engine, event: Mapping[str, Any]) -> bool:
    """Apply one event; False when it is about a reader we do not know."""
    from subscribers import readers

    kind = str(event["event"])
    info = _reader(engine, event)
    if info is None:
        log.info("SendGrid %s event for a reader we do not know; ignored", kind)
        return False
    issue_id = _int(event.get("issue_id"))
    if issue_id is not None and kind in _LEDGER_KINDS:
        reason = str(event.get("reason") or event.get("response") or event.get("type") or "")
        ledger.note_event(engine, issue_id, info.id, kind, _when(event), reason)
    status = new_status(event)
    if status and info.status not in SUPPRESSED:
        readers.set_status(engine, info.id, status, "webhook")
        log.info("reader %d is now %s (SendGrid %s)", info.id, status, kind)
    return True

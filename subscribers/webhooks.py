"""Provider event webhooks (SendGrid's Event Webhook), mounted by the web app.

A post is believed only when SendGrid signed it: ECDSA (P-256, SHA-256) over the
timestamp header followed by the raw body, checked with the verification key from
NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY by the official package's ``EventWebhook``.
A timestamp older (or further ahead) than NEWSLETTER_SENDGRID_WEBHOOK_MAX_AGE
seconds is refused, so a captured post cannot be replayed later; a replay within
that window is caught by the event ids (``newsletter.delivery.events``).

Answers: 200 applied (an invalid event in the list, nested too deep or naming an id
beyond 64 bits, is skipped and counted: SendGrid retries any other answer, and the
good events beside a bad one would never land); 401 unsigned, badly signed or too
old; 400 not a JSON list at all; 413 a body over MAX_BODY bytes or MAX_EVENTS
events (SendGrid posts at most 768 KB); 503 no verification key configured
(SendGrid keeps retrying, so nothing is lost while the operator sets it). Nothing
changes unless the answer is 200.
"""

from __future__ import annotations

import binascii
import logging
import time
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.concurrency import run_in_threadpool

from newsletter.delivery.events import apply_sendgrid_events, parse_events
from newsletter.errors import InvalidInputError

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

#: SendGrid posts a batch when it reaches 768 KB; anything much larger is not from it.
MAX_BODY = 1024 * 1024
#: Events applied per post: one post is answered well within SendGrid's 30 s limit.
MAX_EVENTS = 5000

router = APIRouter()


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def verify_sendgrid(settings: Settings, body: bytes, signature: str, timestamp: str) -> None:
    """Raise ``_Refused`` unless ``body`` carries SendGrid's valid, fresh signature."""
    key = settings.sendgrid_webhook_public_key.strip()
    if not key:
        raise _Refused(
            503,
            "the SendGrid webhook is not configured: set NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY "
            "to the verification key shown under Mail Settings > Event Webhook",
        )
    if not signature or not timestamp:
        raise _Refused(401, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise _Refused(401, "the webhook timestamp is not a number") from None
    if abs(time.time() - sent_at) > settings.sendgrid_webhook_max_age:
        raise _Refused(401, "the webhook timestamp is too old (or in the future); not applied")
    try:
        verifier = EventWebhook()
        public_key = verifier.convert_public_key_to_ecdsa(key)
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("not an elliptic-curve key")
    except (ValueError, UnsupportedAlgorithm):
        log.error("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key")
        raise _Refused(
            503, "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid EC public key"
        ) from None
    try:
        payload = body.decode("utf-8")
        valid = verifier.verify_signature(payload, signature, timestamp, public_key)
    except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise _Refused(401, "the webhook signature does not match; not applied")


async def _capped_body(request: Request) -> bytes:
    """The body, refused with 413 past MAX_BODY bytes (read no further than that)."""
    too_large = _Refused(413, f"the body is over {MAX_BODY} bytes; SendGrid posts 768 KB at most")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request) -> JSONResponse:
    """SendGrid's Event Webhook: verify, parse, apply once."""
    svc: Services = request.app.state.services
    try:
        body = await _capped_body(request)
        verify_sendgrid(
            svc.settings,
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            request.headers.get(TIMESTAMP_HEADER, ""),
        )
        try:
            parsed = parse_events(body.decode("utf-8"))
        except (UnicodeDecodeError, InvalidInputError) as exc:
            raise _Refused(400, f"not a SendGrid event list: {exc}") from None
        if len(parsed.events) + parsed.skipped > MAX_EVENTS:
            raise _Refused(413, f"more than {MAX_EVENTS} events in one post")
    except _Refused as refused:
        log.warning("SendGrid webhook refused (%d): %s", refused.status, refused.message)
        return JSONResponse({"error": refused.message}, status_code=refused.status)
    report = await run_in_threadpool(apply_sendgrid_events, svc.engine, parsed.events)
    return JSONResponse(
        {
            "applied": report.applied,
            "duplicates": report.duplicates,
            "ignored": report.ignored,
            "skipped": parsed.skipped,
        }
    )

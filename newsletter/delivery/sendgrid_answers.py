"""What SendGrid's answers mean: headers, rate-limit waits, error JSON, fatal errors.

Kept apart from ``delivery.sendgrid`` (which builds and posts the requests) so each
reads on its own; the meaning of each status for the readers is written there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from newsletter.errors import DeliveryError


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of the Mail Send API."""

    status: int
    headers: Any
    body: bytes


def as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return str(body or "").encode("utf-8")


def header(headers: Any, name: str) -> str:
    if headers is None:
        return ""
    value = headers.get(name)
    return str(value) if value is not None else ""


def rate_wait(headers: Any) -> float | None:
    """Seconds until SendGrid's rate limit resets, from its headers."""
    reset = header(headers, "X-RateLimit-Reset")
    if reset:
        try:
            return float(reset) - time.time()
        except ValueError:
            pass
    retry_after = header(headers, "Retry-After")
    if retry_after:
        try:
            return float(retry_after)
        except ValueError:
            pass
    return None


def error_fields(body: bytes) -> list[tuple[str, str]]:
    """(field, message) pairs from SendGrid's error JSON; [] when the body is not that."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    items = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [
        (str(item.get("field") or ""), str(item.get("message") or ""))
        for item in items
        if isinstance(item, dict)
    ]


def fatal_error(answer: Answer) -> DeliveryError:
    detail = (
        "; ".join(m for _, m in error_fields(answer.body))
        or answer.body.decode("utf-8", "replace")[:200]
    )
    if answer.status in (401, 403):
        message = (
            f"SendGrid refused the API key ({answer.status}: {detail}); check "
            "NEWSLETTER_SENDGRID_API_KEY and that the key has the 'Mail Send' permission"
        )
    else:
        message = f"SendGrid answered {answer.status} ({detail}); check NEWSLETTER_SENDGRID_HOST"
    return DeliveryError(message, status=answer.status, body=answer.body.decode("utf-8", "replace"))

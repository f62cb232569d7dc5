"""Waiting for the database: which errors a later attempt may not meet, and one back-off.

A container or unit often starts before its database, and a database restarts now
and then; the process waits for it (NEWSLETTER_RUN_ATTEMPTS attempts, exponential
back-off from NEWSLETTER_RUN_RETRY_SECONDS) instead of failing at once. The start
(``connect``) and every daily run (``daily_run.DailyRun``) use the same policy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
import tenacity

from newsletter.errors import DatabaseError, one_line

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.settings import Settings

log = logging.getLogger(__name__)

#: Database failures that a later attempt may not meet (connection refused, server restart).
TRANSIENT = (DatabaseError, sa.exc.OperationalError, sa.exc.InterfaceError)


def database_retrying(
    settings: Settings, during: str, stop: threading.Event | None = None
) -> tenacity.Retrying:
    """Retries a call while it raises a TRANSIENT error, then re-raises the last one.

    ``during`` names the phase in the warning ("at start"); a set ``stop`` (SIGTERM)
    ends the waiting early, so a stopping process does not sit out a back-off.
    """

    def log_wait(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "database unreachable %s (attempt %d of %d: %s); retrying in %.3g s",
            during,
            state.attempt_number,
            settings.run_attempts,
            one_line(exc),
            wait,
        )

    give_up: tenacity.stop.stop_base = tenacity.stop_after_attempt(settings.run_attempts)
    if stop is not None:
        give_up = give_up | tenacity.stop_when_event_set(stop)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TRANSIENT),
        stop=give_up,
        wait=tenacity.wait_exponential(
            multiplier=settings.run_retry_seconds, max=settings.run_retry_seconds * 32
        ),
        sleep=tenacity.nap.sleep if stop is None else _waiting_on(stop),
        before_sleep=log_wait,
        reraise=True,
    )


def _waiting_on(stop: threading.Event) -> Callable[[float], None]:
    """A back-off pause that ends as soon as ``stop`` is set (SIGTERM)."""

    def pause(seconds: float) -> None:
        stop.wait(seconds)

    return pause


def connect(settings: Settings) -> Services:
    """``Services.build``, retried with back-off while the database is unreachable."""
    from newsletter.app import Services

    return database_retrying(settings, "at start")(Services.build, settings)

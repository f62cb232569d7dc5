"""``newsletter run-once`` (the Kubernetes CronJob path) is recorded and reported like the
scheduler's own daily run."""

from __future__ import annotations

import dataclasses
import threading

from newsletter import runs
from newsletter.app import Services
from newsletter.daily_run import cron_run
from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.memory import MemoryBackend
from newsletter.errors import DeliveryError
from newsletter.models import SendResult
from tests.service.conftest import SAMPLE_DATE, seed, text_of


class RefusingRelay(MailBackend):
    """A mail backend whose relay refuses every message (the process boundary)."""

    def send(self, batch: MessageBatch) -> list[SendResult]:
        raise DeliveryError("relay refused the connection", status=421)


def _with_admin(svc: Services) -> Services:
    settings = svc.settings.model_copy(update={"admin_email": "ops@example.com"})
    return dataclasses.replace(svc, settings=settings)


def test_a_successful_cron_run_is_recorded(services: Services) -> None:
    seed(services, readers=1)
    backend = MemoryBackend()
    _, report = cron_run(_with_admin(services), lambda: backend, None, threading.Event())
    assert report.sent == 1 and len(backend.outbox) == 1
    [run] = runs.recent_runs(services.engine)
    assert (run.trigger, run.outcome, run.date) == ("cron", "sent", SAMPLE_DATE)


def test_a_failed_cron_run_is_recorded_and_mailed_to_the_admin(services: Services) -> None:
    seed(services, readers=1)
    admin = MemoryBackend()
    backends = iter([RefusingRelay("newsletter@localhost"), admin])
    _, report = cron_run(_with_admin(services), lambda: next(backends), None, threading.Event())
    assert not report.ok
    [run] = runs.recent_runs(services.engine)
    assert run.outcome == "failed" and "relay refused" in run.detail
    [mail] = admin.outbox
    assert mail["To"] == "ops@example.com"
    assert "relay refused" in text_of(mail)

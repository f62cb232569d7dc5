"""Keeps sent messages in a list: for tests and for the web app's tests."""

from __future__ import annotations

from email.message import EmailMessage

from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome


class MemoryBackend(MailBackend):
    def __init__(self, from_email: str = "newsletter@localhost", from_name: str = "") -> None:
        super().__init__(from_email, from_name)
        self.outbox: list[EmailMessage] = []

    def send(self, batch: MessageBatch) -> list[SendResult]:
        results = []
        for envelope in batch.recipients:
            msg = build_mime(batch, envelope, self.from_email, self.from_name)
            self.outbox.append(msg)
            results.append(
                SendResult(envelope.to, SendOutcome.SENT, message_id=str(msg["Message-ID"]))
            )
        return results

"""Keeps sent messages in a list, and answers as a test scripts it: for tests only.

As django-anymail's test backend, a test may script what the "provider" answers per
recipient, so a rejection, a deferral, a lost answer or a refused batch needs no
server::

    backend = MemoryBackend()
    backend.script("bounce@example.org", SendOutcome.REJECTED, "550 5.1.1 no such user")
    backend.script("*@slow.example", SendOutcome.DEFERRED, "451 4.7.1 try again later")
    backend.script("*@down.example", DeliveryError("the provider is down", status=503))

A pattern is an address or a shell-style glob (``fnmatch``), matched without regard
to case; the first pattern scripted that matches wins. Accepted messages, and those
answered ``unknown`` (they reached the provider, whose answer was lost), are kept in
``outbox``; rejected and deferred ones are not. A batch with any recipient scripted to
raise raises before anything is kept, as the contract says: a backend raises only
when it accepted nothing of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from fnmatch import fnmatchcase

from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome


@dataclass(frozen=True)
class _Rule:
    pattern: str
    outcome: SendOutcome
    error: str
    raises: Exception | None = None


class MemoryBackend(MailBackend):
    #: As an SMTP server announcing SMTPUTF8 would answer; a test sets it.
    utf8_local_parts = False

    # ``outbox.append`` is atomic: one outbox however many workers send.
    thread_safe = True

    def __init__(self, from_email: str = "newsletter@localhost", from_name: str = "") -> None:
        super().__init__(from_email, from_name)
        self.outbox: list[EmailMessage] = []
        self._rules: list[_Rule] = []

    def accepts_utf8_local_parts(self) -> bool:
        return self.utf8_local_parts

    def script(self, pattern: str, answer: SendOutcome | Exception, error: str = "") -> None:
        """Answer ``answer`` for recipients matching ``pattern`` (or raise it, an exception)."""
        if isinstance(answer, Exception):
            self._rules.append(_Rule(pattern.lower(), SendOutcome.DEFERRED, "", answer))
        else:
            self._rules.append(_Rule(pattern.lower(), answer, error))

    def _answer(self, to: str) -> _Rule | None:
        address = to.lower()
        return next((r for r in self._rules if fnmatchcase(address, r.pattern)), None)

    def send(self, batch: MessageBatch) -> list[SendResult]:
        rules = [self._answer(envelope.to) for envelope in batch.recipients]
        for rule in rules:
            if rule is not None and rule.raises is not None:
                raise rule.raises
        results = []
        for envelope, rule in zip(batch.recipients, rules, strict=True):
            outcome = SendOutcome.SENT if rule is None else rule.outcome
            error = rule.error if rule is not None else ""
            message_id = ""
            if outcome in (SendOutcome.SENT, SendOutcome.UNKNOWN):
                msg = build_mime(batch, envelope, self.from_email, self.from_name)
                self.outbox.append(msg)
                message_id = str(msg["Message-ID"])
            results.append(SendResult(envelope.to, outcome, message_id=message_id, error=error))
        return results

"""The contract every mail backend keeps, in the spirit of Django's mail backends.

A backend is opened, given batches, and closed. A batch is one rendering plus its
recipients; each recipient carries the values for the rendering's placeholders
(their signed links) and their own headers. Backends that can substitute
(SendGrid) send a batch in few requests; the others personalise per recipient.
The result says, per recipient, whether the message was accepted, rejected for
good, deferred (nothing was sent: try again later) or unknown (the request may
have reached the provider but its answer was lost: resending could mail twice).

A backend raises ``DeliveryError`` only when nothing of the batch was accepted
(bad credentials, a message too large for the provider); otherwise it answers
for every recipient.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

from newsletter.models import RenderedIssue, SendResult
from newsletter.statuses import SendOutcome

if TYPE_CHECKING:
    from newsletter.settings import Settings


@dataclass(frozen=True)
class Envelope:
    """One recipient of a batch."""

    to: str
    values: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageBatch:
    rendered: RenderedIssue
    recipients: tuple[Envelope, ...]
    categories: tuple[str, ...] = ()


class MailBackend(abc.ABC):
    """Open, send batches, close; also usable as a context manager."""

    #: Recipients per ``send`` call: the sender claims this many readers at a time.
    max_batch = 500
    #: Messages per second when NEWSLETTER_SEND_RATE is unset (None: no limit).
    default_rate: float | None = None
    #: Batches in flight at once when NEWSLETTER_SEND_CONCURRENCY is unset.
    default_concurrency = 1
    #: Whether ``send`` may run in several threads at once on this one instance (an HTTP
    #: API client may; an SMTP connection may not: each worker gets ``worker_copy()``).
    thread_safe = False

    def __init__(self, from_email: str, from_name: str = "") -> None:
        self.from_email = from_email
        self.from_name = from_name

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The backend configured by ``settings``; a backend with options overrides this."""
        return cls(settings.from_email, settings.from_name)

    def accepts_utf8_local_parts(self) -> bool:
        """Whether a non-ASCII local part (``jörg@example.com``) can be mailed (SMTPUTF8).

        No by default: SendGrid's API and most relays refuse such addresses, so the
        subscribe form refuses them rather than confirm a reader who never gets mail.
        """
        return False

    def worker_copy(self) -> MailBackend:
        """A fresh, unopened backend like this one, for one more concurrent worker.

        The default is a shallow copy; a backend holding a connection drops it here.
        """
        return copy.copy(self)

    def open(self) -> None:  # noqa: B027  (optional hook)
        """Acquire connections; the default backend needs none."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections."""

    @abc.abstractmethod
    def send(self, batch: MessageBatch) -> list[SendResult]:
        """Send every recipient of ``batch``; one result per recipient, in order."""

    def __enter__(self) -> MailBackend:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def personalize(batch: MessageBatch, envelope: Envelope) -> tuple[str, str]:
    """(html, text) for one recipient, placeholders filled."""
    return batch.rendered.personalize(envelope.values)


def results_for(
    recipients: Sequence[Envelope], status: SendOutcome, error: str = ""
) -> list[SendResult]:
    return [SendResult(e.to, status, error=error) for e in recipients]

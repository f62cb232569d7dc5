"""SendGrid's v3 Mail Send API through the official ``sendgrid`` package.

Readers of one rendering travel in one request: up to 1,000 personalizations, one
``to`` each (so nobody sees another reader's address), with the rendering's link
markers as ``substitutions``, the issue and subscriber ids as ``custom_args`` (the
Event Webhook hands them back) and the reader's own ``List-Unsubscribe`` as
personalization ``headers`` (SendGrid does not substitute inside headers).

What each answer means for the readers of the request:

- 202: accepted; the ``X-Message-Id`` is every reader's message id.
- 400: nothing was sent. When SendGrid names personalizations (a bad address),
  those readers are rejected and the others are sent again without them;
  otherwise the whole request is rejected, naming the field.
- 401/403: the key is wrong; raised, nothing sent. 413: the request is split in
  halves until it fits; a single reader's message that does not fit is raised.
- 429: wait until ``X-RateLimit-Reset``/``Retry-After``; 5xx and refused
  connections: back off and retry (tenacity); still failing: deferred.
- No answer within the timeout: unknown, never retried here, because SendGrid may
  have accepted the request before the connection failed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tenacity
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Category,
    ContentId,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Header,
    Mail,
    MailSettings,
    SandBoxMode,
)

from newsletter.delivery import sendgrid_answers as answers
from newsletter.delivery.addresses import wire_address
from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.delivery.mime import list_id
from newsletter.errors import ConfigurationError, DeliveryError
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome

if TYPE_CHECKING:
    from newsletter.settings import Settings

log = logging.getLogger(__name__)

#: SendGrid takes at most this many personalizations per request.
MAX_PERSONALIZATIONS = 1000
#: SendGrid allows at most 10 categories per message.
MAX_CATEGORIES = 10
NEWSLETTER_CATEGORY = "daily-ai-insights"
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)(?:\.|$)")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request before giving its readers back as deferred."""

    attempts: int = 5
    backoff: float = 1.0  # first wait after a 5xx; doubles each time
    backoff_max: float = 30.0
    max_rate_wait: float = 120.0  # longest wait honoured for a 429's reset time


class _Transient(Exception):
    """Nothing was accepted and trying again may work (429, 5xx, refused connection)."""

    def __init__(self, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.wait = wait


class _NoAnswer(Exception):
    """The request went out but no answer came back: SendGrid may have accepted it."""


class SendGridBackend(MailBackend):
    max_batch = MAX_PERSONALIZATIONS
    # An answer takes a few hundred milliseconds: keep several requests in flight. Each
    # request builds its own urllib opener, so one client serves every worker thread.
    default_concurrency = 4
    thread_safe = True

    def __init__(
        self,
        api_key: str,
        from_email: str,
        from_name: str = "",
        *,
        host: str = "https://api.sendgrid.com",
        sandbox: bool = False,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = MAX_PERSONALIZATIONS,
    ) -> None:
        if not api_key:
            raise ConfigurationError(
                "NEWSLETTER_SENDGRID_API_KEY is empty; create an API key with the "
                "'Mail Send' permission in SendGrid and set it"
            )
        super().__init__(from_email, from_name)
        self.host = host.rstrip("/")
        self.sandbox = sandbox
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.max_batch = max(1, min(batch_size, MAX_PERSONALIZATIONS))
        self._client = SendGridAPIClient(api_key=api_key, host=self.host)
        self._client.client.timeout = timeout
        self.requests = 0
        self._count_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridBackend:
        return cls(
            settings.sendgrid_api_key,
            settings.from_email,
            settings.from_name,
            host=settings.sendgrid_host,
            sandbox=settings.sendgrid_sandbox,
            timeout=settings.sendgrid_timeout,
            batch_size=settings.sendgrid_batch_size,
        )

    # -- the request body ----------------------------------------------------------------

    def build_mail(self, batch: MessageBatch) -> Mail:
        """The Mail every reader of ``batch`` shares: sender, subject, content, images."""
        rendered = batch.rendered
        mail = Mail()
        mail.from_email = From(wire_address(self.from_email), self.from_name or None)
        mail.subject = rendered.subject
        mail.add_header(Header("List-Id", list_id(self.from_name, self.from_email)))
        mail.add_content(rendered.text, "text/plain")
        mail.add_content(rendered.html, "text/html")
        for image in rendered.images:
            mail.add_attachment(
                Attachment(
                    FileContent(base64.b64encode(image.data).decode("ascii")),
                    FileName(image.filename),
                    FileType(f"image/{image.mime_subtype}"),
                    Disposition("inline"),
                    ContentId(image.content_id),
                )
            )
        categories = list(dict.fromkeys((NEWSLETTER_CATEGORY, *batch.categories)))
        for name in reversed(categories[:MAX_CATEGORIES]):  # add_category inserts at the front
            mail.add_category(Category(name))
        if self.sandbox:
            mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        return mail

    def build_body(self, batch: MessageBatch, indexes: Sequence[int]) -> dict[str, Any]:
        """The request body for the recipients at ``indexes``, personalizations in order.

        The shared part comes from the ``sendgrid`` helpers (``build_mail``); each
        reader's personalization is written directly as the dict the helpers make
        (``Personalization.get()``): building a thousand helper objects per request
        cost more than the rest of the send's work for those readers.
        """
        body: dict[str, Any] = self.build_mail(batch).get()
        markers = batch.rendered.placeholders
        body["personalizations"] = [
            _personalization(batch.recipients[index], markers) for index in indexes
        ]
        return body

    # -- sending -------------------------------------------------------------------------

    def send(self, batch: MessageBatch) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(batch.recipients)
        try:
            for start in range(0, len(batch.recipients), self.max_batch):
                indexes = list(range(start, min(start + self.max_batch, len(results))))
                self._send_indexes(batch, indexes, results)
        except DeliveryError as exc:
            if not any(r is not None and r.status == SendOutcome.SENT for r in results):
                raise
            # Part of the batch went out before the error: answer for everyone, the rest
            # given back (deferred) with the reason, so nothing sent is forgotten.
            log.error("SendGrid stopped mid-batch: %s", exc)
            for i, result in enumerate(results):
                if result is None:
                    results[i] = SendResult(
                        batch.recipients[i].to, SendOutcome.DEFERRED, error=str(exc)[:500]
                    )
        done = [r for r in results if r is not None]
        assert len(done) == len(results)
        return done

    def _send_indexes(
        self, batch: MessageBatch, indexes: list[int], results: list[SendResult | None]
    ) -> None:
        pending = indexes
        while pending:
            body = self.build_body(batch, pending)
            try:
                answer = self._post(body)
            except _Transient as exc:
                self._fill(
                    results, batch, pending, SendOutcome.DEFERRED, f"{exc.detail}; retried next run"
                )
                return
            except _NoAnswer as exc:
                self._fill(results, batch, pending, SendOutcome.UNKNOWN, str(exc))
                return
            if answer.status == 202:
                message_id = answers.header(answer.headers, "X-Message-Id")
                for i in pending:
                    results[i] = SendResult(
                        batch.recipients[i].to, SendOutcome.SENT, message_id=message_id
                    )
                return
            if answer.status == 400:
                pending = self._rejected(batch, pending, results, answer.body)
                continue
            if answer.status == 413:
                self._too_large(batch, pending, results, len(json.dumps(body)))
                return
            raise answers.fatal_error(answer)

    def _rejected(
        self,
        batch: MessageBatch,
        pending: list[int],
        results: list[SendResult | None],
        body: bytes,
    ) -> list[int]:
        """Reject what SendGrid named; returns the readers to send again (nothing was sent)."""
        errors = answers.error_fields(body)
        named: dict[int, str] = {}
        for field, message in errors:
            match = _PERSONALIZATION_FIELD.match(field or "")
            if match and int(match.group(1)) < len(pending):
                named.setdefault(pending[int(match.group(1))], f"{field}: {message}")
        if named and len(named) == len(errors):
            for i, reason in named.items():
                results[i] = SendResult(
                    batch.recipients[i].to,
                    SendOutcome.REJECTED,
                    error=f"SendGrid rejected {reason}",
                )
            log.warning("SendGrid rejected %d recipient(s) of a request", len(named))
            return [i for i in pending if i not in named]
        reason = "; ".join(f"{f or 'request'}: {m}" for f, m in errors) or body.decode(
            "utf-8", "replace"
        )
        message = f"SendGrid rejected the request (400): {reason}"[:500]
        log.error("%s", message)
        self._fill(results, batch, pending, SendOutcome.REJECTED, message)
        return []

    def _too_large(
        self,
        batch: MessageBatch,
        pending: list[int],
        results: list[SendResult | None],
        size: int,
    ) -> None:
        if len(pending) == 1:
            raise DeliveryError(
                f"SendGrid refused the message as too large (413, {size} bytes for one "
                "reader); the e-mail with its chart must stay under SendGrid's 30 MB limit",
                status=413,
                recipients=[batch.recipients[pending[0]].to],
            )
        half = len(pending) // 2
        log.info("SendGrid answered 413 for %d readers; splitting the request", len(pending))
        self._send_indexes(batch, pending[:half], results)
        self._send_indexes(batch, pending[half:], results)

    @staticmethod
    def _fill(
        results: list[SendResult | None],
        batch: MessageBatch,
        indexes: Sequence[int],
        status: SendOutcome,
        error: str,
    ) -> None:
        for i in indexes:
            results[i] = SendResult(batch.recipients[i].to, status, error=error[:500])

    def _post(self, body: dict[str, Any]) -> answers.Answer:
        """POST /v3/mail/send, retrying what is safe to retry."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_retry,
        )
        answer = retrying(self._post_once, body)
        assert isinstance(answer, answers.Answer)
        return answer

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.wait is not None:
            return min(max(exc.wait, 0.0), self.retry.max_rate_wait)
        backoff = tenacity.wait_exponential(
            multiplier=self.retry.backoff, max=self.retry.backoff_max
        )
        return float(backoff(state))

    def _post_once(self, body: dict[str, Any]) -> answers.Answer:
        with self._count_lock:
            self.requests += 1
        try:
            response = self._client.send(body)
        except http_errors.HTTPError as exc:
            answer = answers.Answer(int(exc.status_code), exc.headers, answers.as_bytes(exc.body))
            if answer.status == 429:
                raise _Transient(
                    "SendGrid rate limit (429)", answers.rate_wait(answer.headers)
                ) from None
            if answer.status >= 500:
                raise _Transient(f"SendGrid server error ({answer.status})") from None
            return answer
        except urllib.error.URLError as exc:
            # urllib raises URLError while connecting and writing the request: not sent.
            raise _Transient(f"cannot reach SendGrid at {self.host}: {exc.reason}") from exc
        except OSError as exc:
            # Sent, then the answer never came (timeout, reset): it may have been accepted.
            raise _NoAnswer(
                f"no answer from SendGrid within {self.timeout:g}s ({exc!r}); the request "
                "may have been accepted, so it is not resent automatically "
                "(see `newsletter send --resend-unknown`)"
            ) from exc
        return answers.Answer(
            int(response.status_code), response.headers, answers.as_bytes(response.body)
        )


def _personalization(envelope: Envelope, markers: dict[str, str]) -> dict[str, Any]:
    """One reader's personalization: one ``to`` (nobody sees another reader's address),
    their link values as ``substitutions``, their own headers, their ids as
    ``custom_args``; empty parts left out, as ``Personalization.get()`` does."""
    # The envelope's own dicts, not copies: the body is serialized once and not changed.
    personalization: dict[str, Any] = {"to": [{"email": wire_address(envelope.to)}]}
    if envelope.headers:
        personalization["headers"] = envelope.headers
    if markers:
        values = envelope.values
        # A value not given is empty, as in ``RenderedIssue.personalize``.
        personalization["substitutions"] = {
            marker: values.get(name, "") for name, marker in markers.items()
        }
    if envelope.tags:
        personalization["custom_args"] = envelope.tags
    return personalization


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("%s; retrying in %.1fs (attempt %d)", exc, wait, state.attempt_number)

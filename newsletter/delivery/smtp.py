"""SMTP relay backend: one connection reused for a batch, reconnecting if it drops.

Each recipient's result comes from the server's own reply: 2xx accepted, 4xx
deferred (try again later), 5xx rejected for good.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import TYPE_CHECKING

from newsletter.delivery.base import DEFERRED, REJECTED, SENT, MailBackend, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.errors import DeliveryError
from newsletter.models import SendResult

if TYPE_CHECKING:
    from newsletter.settings import Settings

log = logging.getLogger(__name__)


class SMTPBackend(MailBackend):
    def __init__(
        self,
        host: str,
        port: int,
        from_email: str,
        from_name: str = "",
        *,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(from_email, from_name)
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.use_ssl, self.timeout = starttls, use_ssl, timeout
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SMTPBackend:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.from_email,
            settings.from_name,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            use_ssl=settings.smtp_ssl,
            timeout=settings.smtp_timeout,
        )

    def open(self) -> None:
        if self._conn is not None:
            return
        try:
            conn: smtplib.SMTP
            if self.use_ssl:
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    conn.starttls(context=ssl.create_default_context())
            if self.username:
                conn.login(self.username, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to the SMTP server {self.host}:{self.port}: {exc}; "
                "check NEWSLETTER_SMTP_HOST/PORT/USERNAME/PASSWORD"
            ) from exc
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None

    def _send_one(self, batch: MessageBatch, index: int) -> SendResult:
        envelope = batch.recipients[index]
        msg = build_mime(batch, envelope, self.from_email, self.from_name)
        message_id = str(msg["Message-ID"])
        for attempt in range(2):
            self.open()
            assert self._conn is not None
            try:
                refused = self._conn.send_message(msg, self.from_email, [envelope.to])
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                return _result(envelope.to, code, reply)
            except smtplib.SMTPResponseException as exc:
                return _result(envelope.to, exc.smtp_code, exc.smtp_error)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._conn = None
                if attempt == 0:
                    log.warning("SMTP connection dropped; reconnecting")
                    continue
                return SendResult(envelope.to, DEFERRED, error=f"connection lost: {exc}")
            if refused:
                code, reply = next(iter(refused.values()))
                return _result(envelope.to, code, reply)
            return SendResult(envelope.to, SENT, message_id=message_id)
        return SendResult(envelope.to, DEFERRED, error="connection lost")

    def send(self, batch: MessageBatch) -> list[SendResult]:
        return [self._send_one(batch, i) for i in range(len(batch.recipients))]


def _result(to: str, code: int, reply: bytes | str) -> SendResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    status = DEFERRED if 400 <= code < 500 else REJECTED
    return SendResult(to, status, error=f"{code} {text}"[:500])

"""SMTP relay backend (stdlib smtplib): one connection reused, reconnecting if it drops.

Each reader is one SMTP transaction (MAIL, RCPT, DATA) so that every result comes
from the server's own reply: 2xx accepted, 4xx deferred (try again later), 5xx
rejected for good. Where the connection drops decides what may be retried:

- before DATA (MAIL, RCPT, or while reconnecting): nothing was handed over, so the
  backend reconnects and tries that reader again;
- during DATA: the message may have been queued before the reply was lost, so the
  reader is ``unknown`` and not resent.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import smtplib
import ssl
from typing import TYPE_CHECKING

from newsletter.delivery.addresses import has_utf8_local_part, wire_address
from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.delivery.dkim_signer import DkimSigner
from newsletter.delivery.mime import build_mime
from newsletter.errors import ConfigurationError, DeliveryError
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome

if TYPE_CHECKING:
    from newsletter.settings import Settings

log = logging.getLogger(__name__)

#: Attempts per reader when the connection drops before DATA (each one reconnects).
ATTEMPTS = 3


class _Dropped(Exception):
    """The connection broke at a point where nothing was handed over."""


class SMTPBackend(MailBackend):
    max_batch = 50
    default_rate = 10.0

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
        context: ssl.SSLContext | None = None,
        dkim: DkimSigner | None = None,
    ) -> None:
        if starttls and use_ssl:
            raise ConfigurationError(
                "NEWSLETTER_SMTP_STARTTLS and NEWSLETTER_SMTP_SSL are both set; use SSL for "
                "port 465 (TLS from the start) or STARTTLS for port 587, not both"
            )
        super().__init__(from_email, from_name)
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.use_ssl, self.timeout = starttls, use_ssl, timeout
        self.context = context
        self.dkim = dkim
        self._conn: smtplib.SMTP | None = None
        self.connections = 0
        self._smtputf8: bool | None = None

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
            dkim=DkimSigner.from_settings(settings),
        )

    def _tls(self) -> ssl.SSLContext:
        return self.context or ssl.create_default_context()

    def worker_copy(self) -> SMTPBackend:
        """One more connection for one more worker (NEWSLETTER_SEND_CONCURRENCY > 1)."""
        twin = copy.copy(self)
        twin._conn = None
        return twin

    def open(self) -> None:
        if self._conn is not None:
            return
        try:
            conn: smtplib.SMTP
            if self.use_ssl:
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    conn.starttls(context=self._tls())
            conn.ehlo_or_helo_if_needed()
            if self.username:
                conn.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the SMTP server {self.host}:{self.port} refused the login "
                f"({exc.smtp_code}); check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD",
                status=exc.smtp_code,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to the SMTP server {self.host}:{self.port}: {exc}; "
                "check NEWSLETTER_SMTP_HOST/PORT/STARTTLS/SSL"
            ) from exc
        self._conn = conn
        self.connections += 1

    def accepts_utf8_local_parts(self) -> bool:
        """Whether the server announces SMTPUTF8 (asked once; unreachable counts as no)."""
        if self._smtputf8 is None:
            was_open = self._conn is not None
            try:
                self.open()
            except DeliveryError as exc:
                log.warning("cannot ask the SMTP server about SMTPUTF8: %s", exc)
                return False
            assert self._conn is not None
            self._smtputf8 = bool(self._conn.has_extn("smtputf8"))
            if not was_open:
                self.close()
        return self._smtputf8

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.quit()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def send(self, batch: MessageBatch) -> list[SendResult]:
        results: list[SendResult] = []
        for position, envelope in enumerate(batch.recipients):
            try:
                results.append(self._send_one(batch, envelope))
            except DeliveryError as exc:
                if not results:
                    raise
                # The server went away mid-batch and will not take us back: the rest
                # waits for the next run.
                log.warning("SMTP server unreachable mid-batch: %s", exc)
                results.extend(
                    SendResult(e.to, SendOutcome.DEFERRED, error=str(exc)[:500])
                    for e in batch.recipients[position:]
                )
                break
        return results

    def _send_one(self, batch: MessageBatch, envelope: Envelope) -> SendResult:
        msg = build_mime(batch, envelope, self.from_email, self.from_name)
        message_id = str(msg["Message-ID"])
        data = msg.as_bytes()
        if self.dkim is not None:
            data = self.dkim.sign(data)
        last = ""
        for attempt in range(1, ATTEMPTS + 1):
            self.open()
            assert self._conn is not None
            try:
                return self._transaction(self._conn, envelope.to, data, message_id)
            except _Dropped as exc:
                self._drop()
                last = str(exc)
                log.warning("SMTP connection dropped (%s); reconnecting (attempt %d)", exc, attempt)
        return SendResult(
            envelope.to, SendOutcome.DEFERRED, error=f"connection kept dropping: {last}"[:500]
        )

    def _transaction(self, conn: smtplib.SMTP, to: str, data: bytes, message_id: str) -> SendResult:
        options = []
        rcpt = wire_address(to)
        if has_utf8_local_part(rcpt) or has_utf8_local_part(self.from_email):
            if not conn.has_extn("smtputf8"):
                return SendResult(
                    to,
                    SendOutcome.REJECTED,
                    error="the SMTP server does not accept non-ASCII addresses",
                )
            options.append("SMTPUTF8")
        try:
            code, reply = conn.mail(wire_address(self.from_email), options)
            if code != 250:
                self._reset(conn)
                return _result(to, code, reply)
            code, reply = conn.rcpt(rcpt)
            if code not in (250, 251):
                self._reset(conn)
                return _result(to, code, reply)
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                self._reset(conn)
                return _result(to, code, reply)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from exc
        try:
            conn.send(_dot_stuffed(data))
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(
                to,
                SendOutcome.UNKNOWN,
                message_id=message_id,
                error=f"connection lost during DATA ({exc}); the server may have queued it",
            )
        if code != 250:
            return _result(to, code, reply)
        return SendResult(to, SendOutcome.SENT, message_id=message_id)

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: CRLF lines, leading dots doubled, ended by CRLF.CRLF (RFC 5321)."""
    body = re.sub(rb"(?m)^\.", b"..", re.sub(rb"\r?\n", b"\r\n", data))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _result(to: str, code: int, reply: bytes | str) -> SendResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    status = SendOutcome.DEFERRED if 400 <= code < 500 else SendOutcome.REJECTED
    return SendResult(to, status, error=f"{code} {text}"[:500])

"""A real SMTP server on a free loopback port (aiosmtpd), for the SMTP backend's tests.

It records every accepted message and can be told, per recipient address, to
answer RCPT with a 4xx or 5xx, to drop the connection at RCPT (once), or to drop
it during DATA after the message arrived (once): the cases where the sender must
reconnect, defer, reject, or admit it cannot know. With a certificate it speaks
STARTTLS or implicit TLS, and with credentials it requires AUTH.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd warns on every login about an attribute it plans to rename: not our concern.
logging.getLogger("mail.log").setLevel(logging.ERROR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, _class=EmailMessage, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Behaviour:
    """What the server does, per recipient address."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 ..."
    drop_at_rcpt: set[str] = field(default_factory=set)  # dropped once, then accepted
    drop_in_data: set[str] = field(default_factory=set)  # message taken, answer never sent
    lose_in_data: set[str] = field(default_factory=set)  # dropped during DATA, nothing taken


class RecordingHandler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        behaviour = self.behaviour
        if address in behaviour.drop_at_rcpt:
            behaviour.drop_at_rcpt.discard(address)
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        reply = behaviour.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        to = tuple(envelope.rcpt_tos)
        behaviour = self.behaviour
        lost = next((a for a in to if a in behaviour.lose_in_data), None)
        if lost:
            behaviour.lose_in_data.discard(lost)
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        with self._lock:
            self.received.append(Received(envelope.mail_from, to, bytes(envelope.original_content)))
        dropped = next((a for a in to if a in behaviour.drop_in_data), None)
        if dropped:
            behaviour.drop_in_data.discard(dropped)
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        return "250 2.0.0 Message accepted for delivery"


class SMTPSink:
    """The server; ``start()``/``stop()`` or a context manager."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.behaviour = Behaviour()
        self.handler = RecordingHandler(self.behaviour)
        self.port = free_port()
        kwargs: dict[str, Any] = {
            "hostname": "127.0.0.1",
            "port": self.port,
            "enable_SMTPUTF8": smtputf8,
        }
        if implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs["tls_context"] = tls
            kwargs["require_starttls"] = True
        if credentials is not None:
            user, password = credentials

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and data.login.decode() == user
                    and data.password.decode() == password
                )
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticator
            kwargs["auth_required"] = True
            # Implicit TLS is encrypted from the start, but aiosmtpd only counts STARTTLS.
            kwargs["auth_require_tls"] = tls is not None and not implicit_tls
        self.controller = Controller(self.handler, **kwargs)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

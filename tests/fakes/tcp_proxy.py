"""A TCP forwarder between the app and its database, which a test can cut mid-run.

It stands where a network or a database failover would fail: the app's connections
break and new ones are refused, without touching the database server itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from newsletter.delivery.base import MessageBatch
from newsletter.delivery.memory import MemoryBackend
from newsletter.models import SendResult


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; ``cut()`` drops everything for good."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._listener.close()
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


class CutDatabaseOnSend(MemoryBackend):
    """A mail backend (``tests.fakes.tcp_proxy:CutDatabaseOnSend``) whose first send cuts
    ``proxy``: the database goes away while readers are being mailed."""

    proxy: TcpProxy | None = None

    def send(self, batch: MessageBatch) -> list[SendResult]:
        results = super().send(batch)
        if CutDatabaseOnSend.proxy is not None:
            CutDatabaseOnSend.proxy.cut()
        return results

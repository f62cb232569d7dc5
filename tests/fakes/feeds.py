"""A local feed server on 127.0.0.1 (free port) standing in for arXiv and other sources.

Each path answers with a script of replies (the last one repeats), so a test can
say "503, then 200", "hang until the client gives up", or "304 when the client
sends the ETag it was given". Every request is recorded with its headers.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"

RSS = "application/rss+xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = RSS
    headers: dict[str, str] = field(default_factory=dict)
    #: Never answer: hold the connection until the server stops (a client timeout).
    hang: bool = False
    #: Answer 304 when the request carries this ETag in If-None-Match.
    etag: str = ""
    last_modified: str = ""


@dataclass
class Request:
    path: str
    headers: dict[str, str]


class FeedServer:
    """``with FeedServer() as server: url = server.serve("/rss/cs.AI", body)``."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- routes ------------------------------------------------------------------------

    def script(self, path: str, *replies: Reply) -> str:
        """Answer ``path`` with ``replies`` in order, repeating the last; returns its URL."""
        with self._lock:
            self.routes[path] = list(replies)
        return self.url(path)

    def serve(self, path: str, body: bytes, **reply: Any) -> str:
        """Answer ``path`` with ``body``; ``reply`` sets the other fields of ``Reply``."""
        return self.script(path, Reply(body=body, **reply))

    def serve_file(self, path: str, name: str, **reply: Any) -> str:
        """Serve a recorded file from ``tests/data``; JSON and HTML get their content type."""
        if name.endswith(".json"):
            reply.setdefault("content_type", JSON)
        elif name.endswith(".html"):
            reply.setdefault("content_type", HTML)
        return self.serve(path, (DATA / name).read_bytes(), **reply)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # -- the handler -------------------------------------------------------------------

    def _next(self, path: str) -> Reply | None:
        with self._lock:
            replies = self.routes.get(path)
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test output is the report, not an access log."""

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(Request(self.path, dict(self.headers.items())))
                reply = server._next(self.path)
                if reply is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if reply.hang:
                    server._stopping.wait(timeout=30)
                    return
                if reply.etag and self.headers.get("If-None-Match") == reply.etag:
                    self._send(304, b"", "", {"ETag": reply.etag})
                    return
                if reply.last_modified and (
                    self.headers.get("If-Modified-Since") == reply.last_modified
                ):
                    self._send(304, b"", "", {"Last-Modified": reply.last_modified})
                    return
                headers = dict(reply.headers)
                if reply.etag:
                    headers["ETag"] = reply.etag
                if reply.last_modified:
                    headers["Last-Modified"] = reply.last_modified
                self._send(reply.status, reply.body, reply.content_type, headers)

            def _send(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str]
            ) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        return Handler


class SilentServer:
    """A server that accepts every TCP connection and never reads or answers a byte.

    What a stuck upstream (a frozen proxy, a half-dead host) looks like to a client:
    the connection succeeds, then nothing. ``release()`` closes every connection and
    stops listening, so a test can end the hang at a moment of its choosing.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/rss/stuck"
        self._held: list[socket.socket] = []
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.connections = 0

    def _accept(self) -> None:
        while not self._released.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)

    def release(self) -> None:
        """Close the held connections and the listener: later connections are refused."""
        if self._released.is_set():
            return
        self._released.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

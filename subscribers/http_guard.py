"""ASGI middleware around the whole web app: bounded bodies and security headers.

Request bodies are read here, before any route sees them, up to a limit: a form
larger than ``MAX_FORM_BYTES`` or any other body larger than ``MAX_BODY_BYTES``
is answered 413, and a form that is not UTF-8 (or, urlencoded, has raw non-ASCII
bytes) is answered 400, so no handler ever stores mojibake. The body is then replayed to
the app unchanged. The one upload (a reader's BibTeX or RIS export on the manage page)
may be up to ``MAX_UPLOAD_BYTES`` and is not required to be UTF-8: its route reads only
the file's bytes, and the parser tells the reader what is wrong with them.

Every answer gets the security headers below unless the route set its own value
(a public archive page may choose its own ``Cache-Control``, for instance).
``Referrer-Policy: no-referrer`` matters most: the reader links carry tokens in
their path, which a Referer header would hand to any site linked from a page.
The CSP allows no script at all; it allows inline styles because the archive
shows issues styled like the e-mail (inline CSS), and a style cannot run code.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The subscriber forms are a few hundred bytes; this leaves room and nothing more.
MAX_FORM_BYTES = 16 * 1024
#: Other bodies (the provider's webhook batches of JSON events) can be larger.
MAX_BODY_BYTES = 5 * 1024 * 1024
#: A liked-papers file (``interest_files.MAX_FILE_BYTES``, 2 MB) and the form around it.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024 + 16 * 1024
UPLOAD_PATH = re.compile(r"^/manage/[^/]+/interests-file$")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cache-control": "no-store",
}
STATIC_CACHE = "public, max-age=3600"

#: Renders the error page for (status, reason): "too_large", "upload_too_large" or "bad_body".
ErrorPage = Callable[[int, str], Awaitable[bytes]]


class BodyGuard:
    """Reads and checks a request body before the app runs, then replays it."""

    def __init__(self, app: ASGIApp, error_page: ErrorPage) -> None:
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
        is_form = content_type.lower() in FORM_TYPES
        upload = content_type.lower() == "multipart/form-data" and bool(
            UPLOAD_PATH.match(str(scope.get("path", "")))
        )
        limit = MAX_UPLOAD_BYTES if upload else MAX_FORM_BYTES if is_form else MAX_BODY_BYTES
        too_large = "upload_too_large" if upload else "too_large"
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._reject(send, 413, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if is_form and not upload and not _is_utf8_form(content_type.lower(), body):
            await self._reject(send, 400, "bad_body")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _reject(self, send: Send, status: int, reason: str) -> None:
        page = await self.error_page(status, reason)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": page})


def _is_utf8_form(content_type: str, body: bytes) -> bool:
    """A multipart body is UTF-8; a urlencoded one is ASCII whose escapes decode as UTF-8.

    Browsers percent-encode every non-ASCII byte of a urlencoded form; Starlette would
    read a raw one as Latin-1, turning "café" into "cafÃ©", so raw bytes are refused.
    """
    if content_type == "application/x-www-form-urlencoded":
        if not body.isascii():
            return False
        try:
            parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return False
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class SecurityHeaders:
    """Adds the security headers to every answer that does not set them itself."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.defaults = dict(SECURITY_HEADERS)
        if hsts:
            self.defaults["strict-transport-security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        host = dict(scope["headers"]).get(b"host", b"")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, _site_relative(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                present = {name.lower() for name, _ in headers}
                for name, value in self.defaults.items():
                    if static and name == "cache-control":
                        value = STATIC_CACHE
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _site_relative(location: bytes, host: bytes) -> bytes:
    """A redirect to this site as a path: never to whatever Host the request named.

    Starlette's slash redirect (``/issues/`` to ``/issues``) writes the request's Host
    into ``Location``; a forged Host would send the reader elsewhere. Leading slashes
    collapse to one, so ``//evil.example`` cannot become a protocol-relative address.
    """
    parts = urlsplit(location.decode("latin-1"))
    if parts.scheme and parts.netloc.encode("latin-1").lower() != host.lower():
        return location  # an address elsewhere that the app chose on purpose
    path = "/" + parts.path.lstrip("/")
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")

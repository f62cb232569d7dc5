"""CSRF protection for the subscriber forms: a signed double-submit token.

A random value lives in a cookie; each form carries the same value signed (with
the secret key and a timestamp) in a hidden field. A forged cross-site POST cannot
read the cookie, so it cannot produce a matching field. Cross-site POSTs are also
refused outright when the browser says so (``Sec-Fetch-Site``) or sends a foreign
``Origin`` (not "null", which this site's own pages send under no-referrer).

Why not a library: asgi-csrf skips every request that has no cookie (the normal
case for a forged POST here, where authority comes from the link, not a session)
and cannot protect paths with a token in them; starlette-csrf checks only a
header, which needs JavaScript; fastapi-csrf-protect keeps its settings on the
class (one global secret per process). itsdangerous, already used for the links,
does the signing; this module only compares.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "nl_csrf"
FIELD = "csrf_token"
#: A form left open longer than this must be reloaded.
MAX_AGE = 24 * 3600
_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")


class CsrfError(Exception):
    """The form was not sent from this site's own page; the request is refused."""


class Csrf:
    def __init__(self, keys: Sequence[str], base_url: str) -> None:
        # The last key signs; every key verifies, like the reader links.
        self._serializer = URLSafeTimedSerializer(list(keys), salt="newsletter.csrf")
        self._secure = base_url.startswith("https://")
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"

    def _nonce(self, request: Request) -> str:
        """The cookie's value, or a new one remembered on the request to set on the answer."""
        existing = getattr(request.state, "csrf_nonce", None)
        if isinstance(existing, str):
            return existing
        value = request.cookies.get(COOKIE, "")
        if not _NONCE.fullmatch(value):
            value = secrets.token_urlsafe(24)
            request.state.csrf_new = True
        request.state.csrf_nonce = value
        return value

    def form_token(self, request: Request) -> str:
        """The hidden field's value for a form on this request's page."""
        return str(self._serializer.dumps(self._nonce(request)))

    def set_cookie(self, request: Request, response: Response) -> None:
        """Send the cookie if this request had to make a new value."""
        if getattr(request.state, "csrf_new", False):
            response.set_cookie(
                COOKIE,
                self._nonce(request),
                httponly=True,
                samesite="lax",
                secure=self._secure,
                path="/",
            )

    def check(self, request: Request, submitted: str) -> None:
        """Raise CsrfError unless ``submitted`` matches this browser's cookie."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise CsrfError("cross-site form submission")
        # Under Referrer-Policy: no-referrer browsers send "Origin: null" even for this
        # site's own forms, so "null" proves nothing either way; the cookie decides.
        origin = request.headers.get("origin")
        if origin not in (None, "null", self._origin, _own_origin(request)):
            raise CsrfError("form sent from another origin")
        cookie = request.cookies.get(COOKIE, "")
        if not _NONCE.fullmatch(cookie):
            raise CsrfError("no CSRF cookie")
        try:
            value = self._serializer.loads(submitted, max_age=MAX_AGE)
        except BadData as exc:
            raise CsrfError("missing, expired or altered CSRF token") from exc
        if not isinstance(value, str) or not secrets.compare_digest(value, cookie):
            raise CsrfError("CSRF token does not match the cookie")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"

"""Signed links: a token carries a subscriber id and is valid for one purpose only.

itsdangerous signs with the current key and verifies with the current and any old
keys, so rotating NEWSLETTER_SECRET_KEY keeps links in old e-mails working.
Unsubscribe links never expire (a reader must always be able to leave); confirm
links expire after 7 days. A confirm link also carries the nonce of the subscribe
request it answers, so it works only while that request is outstanding.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import time
import zlib
from collections.abc import Sequence
from typing import Literal

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from newsletter.errors import TokenError

Purpose = Literal["confirm", "manage", "unsubscribe"]
MAX_AGE: dict[str, int | None] = {
    "confirm": 7 * 24 * 3600,
    "manage": None,
    "unsubscribe": None,
}

#: Subscriber ids are 64-bit (BIGINT): a signed larger one names nobody and must not reach SQL.
MAX_ID = 2**63 - 1

_URL_SAFE = bytes.maketrans(b"+/", b"-_")
#: A link's path with its token: what logs and error reports must not show.
_TOKEN_PATH = re.compile(r"/(confirm|manage|unsubscribe)/[^\s?\"/]+")


def redact_token_paths(text: str) -> str:
    """``text`` with every link token replaced by ``[token]`` (for logs)."""
    return _TOKEN_PATH.sub(r"/\1/[token]", text)


class Signer:
    def __init__(self, secret_key: str, old_keys: Sequence[str] = ()) -> None:
        # itsdangerous signs with the last key and accepts any of them. One serializer per
        # purpose, built once: a send signs two links for each of 100,000 readers.
        keys = [*old_keys, secret_key]
        self._serializers = {
            purpose: URLSafeTimedSerializer(keys, salt=f"newsletter.{purpose}")
            for purpose in MAX_AGE
        }
        # Each purpose's HMAC key derived once (itsdangerous derives it again for every
        # token): a send of a million readers signs two million links.
        self._keys = {
            purpose: hashlib.sha1(
                f"newsletter.{purpose}".encode() + b"signer" + secret_key.encode()
            ).digest()
            for purpose in MAX_AGE
        }
        self._stamp = (0, b"")

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def sign(self, subscriber_id: int, purpose: Purpose, nonce: str = "") -> str:
        """A token for ``purpose``; with ``nonce`` it also carries that value (confirm links)."""
        if nonce:
            return str(self._serializer(purpose).dumps([subscriber_id, nonce]))
        return self._sign_id(subscriber_id, purpose)

    def _sign_id(self, subscriber_id: int, purpose: Purpose) -> str:
        """What ``URLSafeTimedSerializer.dumps(subscriber_id)`` returns, byte for byte
        (its JSON payload, base64 timestamp and HMAC-SHA1 with the django-concat key),
        in a third of its time; tests/web/test_links.py compares the two."""
        json = str(subscriber_id).encode()
        # itsdangerous zlib-compresses a payload when that saves 2 bytes; a zlib stream
        # takes at least 8, so only a payload of 10 bytes or more may be compressed.
        if len(json) >= 10 and len(zlib.compress(json)) < len(json) - 1:
            return str(self._serializer(purpose).dumps(subscriber_id))
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, _b64(now.to_bytes(8, "big").lstrip(b"\0")))
        value = _b64(json) + b"." + self._stamp[1]
        signature = hmac.digest(self._keys[purpose], value, "sha1")
        return (value + b"." + _b64(signature)).decode("ascii")

    def unsign(self, token: str, purpose: Purpose) -> int:
        """The subscriber id in ``token``; TokenError if tampered, expired or for another use."""
        return self.unsign_with_nonce(token, purpose)[0]

    def unsign_with_nonce(self, token: str, purpose: Purpose) -> tuple[int, str]:
        """(subscriber id, nonce) in ``token``; the nonce is "" when none was signed."""
        try:
            value = self._serializer(purpose).loads(token, max_age=MAX_AGE[purpose])
        except SignatureExpired as exc:
            raise TokenError("this link has expired; ask for a new one") from exc
        except BadData as exc:  # any tampering, truncation or wrong key
            raise TokenError("this link is not valid") from exc
        nonce: object = ""
        if isinstance(value, list) and len(value) == 2:
            value, nonce = value
        if not isinstance(value, int) or isinstance(value, bool) or not isinstance(nonce, str):
            raise TokenError("this link is not valid")
        if not 0 < value <= MAX_ID:
            raise TokenError("this link is not valid")
        return value, nonce


def _b64(data: bytes) -> bytes:
    """URL-safe base64 without padding (itsdangerous's ``base64_encode``)."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


def reader_links(signer: Signer, base_url: str, subscriber_id: int) -> dict[str, str]:
    """The per-reader values for a rendering's placeholders."""
    return {
        "manage_url": f"{base_url}/manage/{signer.sign(subscriber_id, 'manage')}",
        "unsubscribe_url": f"{base_url}/unsubscribe/{signer.sign(subscriber_id, 'unsubscribe')}",
    }

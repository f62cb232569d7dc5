"""Signed links: a token carries a subscriber id and is valid for one purpose only.

itsdangerous signs with the current key and verifies with the current and any old
keys, so rotating NEWSLETTER_SECRET_KEY keeps links in old e-mails working.
Unsubscribe links never expire (a reader must always be able to leave); confirm
links expire after 7 days. A confirm link also carries the nonce of the subscribe
request it answers, so it works only while that request is outstanding.
"""

from __future__ import annotations

import re
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

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def sign(self, subscriber_id: int, purpose: Purpose, nonce: str = "") -> str:
        """A token for ``purpose``; with ``nonce`` it also carries that value (confirm links)."""
        payload: int | list[int | str] = [subscriber_id, nonce] if nonce else subscriber_id
        return str(self._serializer(purpose).dumps(payload))

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


def reader_links(signer: Signer, base_url: str, subscriber_id: int) -> dict[str, str]:
    """The per-reader values for a rendering's placeholders."""
    return {
        "manage_url": f"{base_url}/manage/{signer.sign(subscriber_id, 'manage')}",
        "unsubscribe_url": f"{base_url}/unsubscribe/{signer.sign(subscriber_id, 'unsubscribe')}",
    }

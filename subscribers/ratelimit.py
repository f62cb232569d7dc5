"""Rate limits of the subscribe form, with the ``limits`` library (moving windows).

Two limits: per client IP (NEWSLETTER_SUBSCRIBE_RATE_IP, default 10/minute) stops
a script hammering the form; per address (NEWSLETTER_SUBSCRIBE_RATE_ADDRESS,
default 3/hour) stops anyone using the form to flood one inbox. Addresses are
keyed by a keyed hash, so the limiter's storage never holds an address. The
counters live in the process (one uvicorn worker, as ``newsletter serve`` runs).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from newsletter.errors import ConfigurationError


def _parse(name: str, value: str) -> RateLimitItem:
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"NEWSLETTER_{name}={value!r} is not a rate; write it like '10/minute' or '3/hour'"
        ) from exc


class SubscribeLimits:
    def __init__(self, per_ip: str, per_address: str, secret: str) -> None:
        self.per_ip = _parse("SUBSCRIBE_RATE_IP", per_ip)
        self.per_address = _parse("SUBSCRIBE_RATE_ADDRESS", per_address)
        self._secret = secret.encode("utf-8")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit_ip(self, ip: str) -> bool:
        """Count one request from ``ip``; False once it is over its limit."""
        return self._limiter.hit(self.per_ip, "subscribe-ip", ip)

    def retry_after(self, ip: str) -> int:
        """Seconds until ``ip`` may send again (at least 1)."""
        stats = self._limiter.get_window_stats(self.per_ip, "subscribe-ip", ip)
        return max(1, int(stats.reset_time - time.time()) + 1)

    def hit_address(self, address: str) -> bool:
        """Count one request for ``address`` (normalised); False once it is over its limit."""
        key = hmac.new(self._secret, address.encode("utf-8"), hashlib.sha256).hexdigest()
        return self._limiter.hit(self.per_address, "subscribe-address", key)

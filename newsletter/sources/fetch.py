"""HTTP fetching for every source: timeouts, retries with back-off, conditional GET.

Retries (tenacity: exponential back-off with jitter, honouring Retry-After) cover
connection errors, timeouts, 429 and 5xx; any other answer is final. arXiv asks
for at least 3 s between requests to its hosts (``*.arxiv.org``); other hosts,
loopback included, are not slowed. Waits are constructor arguments so tests run
without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from newsletter import __version__
from newsletter.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = f"daily-ai-insights-newsletter/{__version__} (self-hosted daily paper digest)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
    "application/json;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
ARXIV_GAP_SECONDS = 3.0
MAX_FEED_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def is_arxiv_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


class HostPacer:
    """Keeps ``gap`` seconds between requests to arXiv's hosts; others pass at once."""

    def __init__(
        self,
        gap: float = ARXIV_GAP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gap = gap
        self.clock = clock
        self.sleep = sleep
        self._last: float | None = None

    def wait(self, url: str) -> float:
        """Sleep as long as arXiv's etiquette needs before ``url``; returns the wait."""
        if not is_arxiv_host(url):
            return 0.0
        wait = 0.0
        if self._last is not None:
            wait = max(0.0, self._last + self.gap - self.clock())
            if wait:
                self.sleep(wait)
        self._last = self.clock()
        return wait


class Fetcher:
    """One HTTP client for a collection run.

    ``initial_wait`` and ``max_wait`` bound the back-off between attempts (and the
    honoured Retry-After); pass 0 for both in tests.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        attempts: int = 4,
        *,
        initial_wait: float = 1.0,
        max_wait: float = 60.0,
        pacer: HostPacer | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            follow_redirects=True,
            transport=transport,
        )
        self.attempts = max(1, attempts)
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.pacer = pacer or HostPacer()
        # Exponential back-off plus up to one initial wait of jitter, capped in _wait.
        self._backoff = wait_exponential(multiplier=initial_wait, max=max_wait) + wait_random(
            0, initial_wait
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, state: RetryCallState) -> float:
        backoff = min(self._backoff(state), self.max_wait)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after:
            return min(max(exc.retry_after, backoff), self.max_wait)
        return backoff

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "%s: %s (attempt %d of %d); retrying in %.1f s",
            state.args[0] if state.args else "?",
            exc,
            state.attempt_number,
            self.attempts,
            wait,
        )

    def fetch(self, url: str, etag: str = "", last_modified: str = "") -> Fetched:
        """GET ``url``; ``SourceError`` with the reason when it cannot be had."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, headers)
        except _Retryable as exc:
            tries = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
            raise SourceError(url, f"{exc} (gave up after {tries})") from exc

    def _attempt(self, url: str, headers: dict[str, str]) -> Fetched:
        self.pacer.wait(url)
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return Fetched(
                        url,
                        b"",
                        not_modified=True,
                        etag=headers.get("If-None-Match", ""),
                        last_modified=headers.get("If-Modified-Since", ""),
                    )
                if status == 429 or status >= 500:
                    retry_after = _retry_after(response.headers.get("Retry-After", ""))
                    raise _Retryable(f"HTTP {status}", retry_after)
                if status >= 400:
                    raise SourceError(url, f"HTTP {status}; check the feed URL")
                content = _read_limited(response, url)
                return Fetched(
                    url,
                    content,
                    etag=response.headers.get("ETag", ""),
                    last_modified=response.headers.get("Last-Modified", ""),
                    content_type=response.headers.get("Content-Type", ""),
                )
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from exc


def _read_limited(response: httpx.Response, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_FEED_BYTES:
            raise SourceError(url, f"the feed is larger than {MAX_FEED_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str) -> float:
    """Seconds from a Retry-After header (delta-seconds form; dates count as 0)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0

"""HTTP fetching for every source: timeouts, retries with back-off, conditional GET.

arXiv asks for at least 3 s between requests to its hosts; other hosts (loopback
included) are not slowed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from newsletter import __version__
from newsletter.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = f"daily-ai-insights-newsletter/{__version__} (self-hosted paper digest)"
ARXIV_GAP_SECONDS = 3.0
MAX_FEED_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def is_arxiv_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


class Fetcher:
    """One HTTP client for a collection run; remembers when it last hit arXiv."""

    def __init__(self, timeout: float = 30.0, attempts: int = 4, max_wait: float = 30.0) -> None:
        self.client = httpx.Client(
            timeout=timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=True
        )
        self.attempts = attempts
        self.max_wait = max_wait
        self._last_arxiv = 0.0

    def close(self) -> None:
        self.client.close()

    def _polite(self, url: str) -> None:
        if not is_arxiv_host(url):
            return
        wait = self._last_arxiv + ARXIV_GAP_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_arxiv = time.monotonic()

    def fetch(self, url: str, etag: str = "", last_modified: str = "") -> Fetched:
        """GET ``url`` with retries on connection errors, 429 and 5xx; SourceError otherwise."""

        def wait_for(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            backoff = wait_exponential_jitter(initial=0.5, max=self.max_wait)(state)
            if isinstance(exc, _Retryable) and exc.retry_after:
                return min(max(exc.retry_after, backoff), self.max_wait)
            return backoff

        @retry(
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_for,
            reraise=True,
        )
        def attempt() -> Fetched:
            self._polite(url)
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            try:
                response = self.client.get(url, headers=headers)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code == 304:
                return Fetched(url, b"", True, etag, last_modified)
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = _retry_after(response.headers.get("Retry-After", ""))
                raise _Retryable(f"HTTP {response.status_code}", retry_after)
            if response.status_code >= 400:
                raise SourceError(url, f"HTTP {response.status_code}")
            if len(response.content) > MAX_FEED_BYTES:
                raise SourceError(url, f"feed larger than {MAX_FEED_BYTES} bytes")
            return Fetched(
                url,
                response.content,
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
            )

        try:
            return attempt()
        except _Retryable as exc:
            raise SourceError(url, f"{exc} after {self.attempts} attempts") from exc


def _retry_after(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0

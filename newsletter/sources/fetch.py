"""HTTP fetching for every source: timeouts, retries with back-off, conditional GET.

Retries (tenacity: exponential back-off with jitter, honouring Retry-After) cover
connection errors, timeouts, 429 and 5xx; any other answer is final. One fetch,
retries and waits included, never takes longer than its deadline: a server that
accepts the connection and never answers costs at most that. arXiv asks for at
least 3 s between requests to its hosts (``*.arxiv.org``); other hosts, loopback
included, are not slowed. The pacer is shared by threads (sources on different
hosts are fetched concurrently). Waits are constructor arguments so tests run
without sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
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
DEFAULT_DEADLINE = 60.0


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float = 0.0, *, deadline: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        #: The attempt ended because the fetch's deadline was reached.
        self.deadline = deadline


def is_arxiv_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def host_key(url: str) -> str:
    """Which politeness group ``url`` belongs to: all of arXiv is one, else host and port."""
    if is_arxiv_host(url):
        return "arxiv.org"
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or ''}"


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
        # Held while sleeping: requests to arXiv from several threads queue up in turn.
        self._lock = threading.Lock()

    def wait(self, url: str) -> float:
        """Sleep as long as arXiv's etiquette needs before ``url``; returns the wait."""
        if not is_arxiv_host(url):
            return 0.0
        with self._lock:
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
    honoured Retry-After); pass 0 for both in tests. ``deadline`` bounds one
    ``fetch`` as a whole, every attempt and wait included.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        attempts: int = 4,
        *,
        deadline: float = DEFAULT_DEADLINE,
        initial_wait: float = 1.0,
        max_wait: float = 60.0,
        pacer: HostPacer | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            follow_redirects=True,
            transport=transport,
        )
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.deadline = deadline
        self.clock = clock
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
            backoff = min(max(exc.retry_after, backoff), self.max_wait)
        # Never sleep past the deadline: the next attempt would have no time left.
        end = state.kwargs.get("end")
        return min(backoff, max(0.0, end - self.clock())) if end is not None else backoff

    def _stop(self, state: RetryCallState) -> bool:
        """Stop after the last attempt, or when the deadline leaves no time for another."""
        if state.attempt_number >= self.attempts:
            return True
        end = state.kwargs.get("end")
        return end is not None and self.clock() >= end

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
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        end = self.clock() + self.deadline
        try:
            return retrying(self._attempt, url, headers, end=end, reasons=[])
        except _Retryable as exc:
            made = retrying.statistics.get("attempt_number", self.attempts)
            tries = "1 attempt" if made == 1 else f"{made} attempts"
            if exc.deadline or self.clock() >= end:
                raise SourceError(
                    url,
                    f"{exc} (gave up after {tries}: no answer within the "
                    f"{self.deadline:g} s deadline, NEWSLETTER_FETCH_DEADLINE)",
                ) from exc
            raise SourceError(url, f"{exc} (gave up after {tries})") from exc

    def _attempt(
        self, url: str, headers: dict[str, str], *, end: float, reasons: list[str]
    ) -> Fetched:
        """One attempt; ``reasons`` collects why earlier ones failed (for the final message)."""
        self.pacer.wait(url)
        left = end - self.clock()
        if left <= 0:
            # The back-off used up the deadline: report what the last attempt ran into.
            raise _Retryable(reasons[-1] if reasons else "no time left", deadline=True)
        try:
            return self._request(url, headers, end, httpx.Timeout(min(self.timeout, left)))
        except _Retryable as exc:
            reasons.append(str(exc))
            raise

    def _request(
        self, url: str, headers: dict[str, str], end: float, timeout: httpx.Timeout
    ) -> Fetched:
        """One GET; its timeout is what remains of the deadline, at most ``timeout``."""
        try:
            with self.client.stream("GET", url, headers=headers, timeout=timeout) as response:
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
                    detail = _error_detail(response)
                    raise SourceError(url, f"HTTP {status}{detail}; check the feed URL")
                content = _read_limited(response, url, end, self.clock)
                return Fetched(
                    url,
                    content,
                    etag=response.headers.get("ETag", ""),
                    last_modified=response.headers.get("Last-Modified", ""),
                    content_type=response.headers.get("Content-Type", ""),
                )
        except httpx.TimeoutException as exc:
            late = self.clock() >= end
            raise _Retryable(f"timed out ({type(exc).__name__})", deadline=late) from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from exc


def _read_limited(
    response: httpx.Response, url: str, end: float, clock: Callable[[], float]
) -> bytes:
    """The body, refused past ``MAX_FEED_BYTES`` or the deadline (a server that trickles)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_FEED_BYTES:
            raise SourceError(url, f"the feed is larger than {MAX_FEED_BYTES} bytes")
        if clock() > end:
            raise _Retryable(f"the body was still arriving after {size} bytes", deadline=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(response: httpx.Response) -> str:
    """`` (the API's message)`` from a small JSON error body (Hugging Face's), else ''."""
    if "json" not in response.headers.get("Content-Type", ""):
        return ""
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > 4096:
            return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    message = next((data[k] for k in ("error", "message", "detail") if data.get(k)), "")
    return f" ({' '.join(str(message).split())[:200]})" if message else ""


def _retry_after(value: str) -> float:
    """Seconds from a Retry-After header (delta-seconds form; dates count as 0)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0

"""Fetching from the local feed server: retries, timeouts, conditional GET, arXiv pacing."""

from __future__ import annotations

import socket

import pytest

from newsletter.errors import SourceError
from newsletter.sources.fetch import USER_AGENT, Fetcher, HostPacer, is_arxiv_host
from tests.fakes.feeds import FeedServer, Reply

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


def test_user_agent_names_the_project(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.serve("/feed", BODY)
    assert fetcher.fetch(url).content == BODY
    (request,) = feed_server.hits("/feed")
    assert request.headers["User-Agent"] == USER_AGENT
    assert "daily-ai-insights-newsletter" in USER_AGENT


def test_503_then_200_is_retried(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.script("/feed", Reply(503, b"busy", "text/plain"), Reply(body=BODY))
    assert fetcher.fetch(url).content == BODY
    assert len(feed_server.hits("/feed")) == 2


def test_429_with_retry_after_is_retried(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.script(
        "/feed", Reply(429, b"slow down", "text/plain", {"Retry-After": "120"}), Reply(body=BODY)
    )
    assert fetcher.fetch(url).content == BODY  # max_wait=0 caps the honoured Retry-After


def test_persistent_5xx_gives_up_with_the_reason(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.script("/feed", Reply(502, b"bad gateway", "text/plain"))
    with pytest.raises(SourceError) as info:
        fetcher.fetch(url)
    assert str(info.value) == f"{url}: HTTP 502 (gave up after 3 attempts)"
    assert len(feed_server.hits("/feed")) == 3


def test_404_is_not_retried(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.url("/missing")
    with pytest.raises(SourceError, match="HTTP 404; check the feed URL"):
        fetcher.fetch(url)
    assert len(feed_server.hits("/missing")) == 1


def test_hanging_server_times_out(feed_server: FeedServer) -> None:
    url = feed_server.script("/slow", Reply(hang=True))
    with (
        Fetcher(timeout=0.2, attempts=2, initial_wait=0, max_wait=0) as quick,
        pytest.raises(SourceError, match=r"timed out \(ReadTimeout\) \(gave up after 2 attempts\)"),
    ):
        quick.fetch(url)
    assert len(feed_server.hits("/slow")) == 2


def test_refused_connection_is_reported(fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="connection failed"):
        fetcher.fetch(f"http://127.0.0.1:{port}/feed")


def test_conditional_get_answers_304(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.serve(
        "/feed", BODY, etag='"v1"', last_modified="Fri, 22 Nov 2024 05:00:06 GMT"
    )
    first = fetcher.fetch(url)
    assert (first.etag, first.last_modified) == ('"v1"', "Fri, 22 Nov 2024 05:00:06 GMT")
    second = fetcher.fetch(url, first.etag, first.last_modified)
    assert second.not_modified and second.content == b""
    assert feed_server.hits("/feed")[1].headers["If-None-Match"] == '"v1"'
    assert feed_server.hits("/feed")[1].headers["If-Modified-Since"] == first.last_modified


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_arxiv_hosts_get_three_seconds_between_requests() -> None:
    clock = FakeClock()
    pacer = HostPacer(clock=clock, sleep=clock.sleep)
    assert pacer.wait("https://rss.arxiv.org/rss/cs.AI") == 0
    clock.now += 1.0
    assert pacer.wait("https://export.arxiv.org/api/query") == pytest.approx(2.0)
    assert pacer.wait("https://rss.arxiv.org/rss/cs.LG") == pytest.approx(3.0)
    assert clock.slept == [pytest.approx(2.0), pytest.approx(3.0)]


def test_other_hosts_and_loopback_are_not_slowed() -> None:
    clock = FakeClock()
    pacer = HostPacer(clock=clock, sleep=clock.sleep)
    for url in (
        "http://127.0.0.1:8000/feed",
        "https://huggingface.co/api/daily_papers",
        "https://notarxiv.org/rss",
        "http://127.0.0.1:8000/feed",
    ):
        assert pacer.wait(url) == 0
    assert clock.slept == []
    assert is_arxiv_host("https://arxiv.org/abs/1") and not is_arxiv_host("https://arxiv.org.evil/")

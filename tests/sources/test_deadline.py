"""A source that never answers costs at most its deadline, and does not hold up the others."""

from __future__ import annotations

import pytest

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.errors import SourceError
from newsletter.sources.collect import SourceStats
from newsletter.sources.fetch import Fetcher, host_key
from tests.fakes.feeds import FeedServer, Reply, SilentServer
from tests.sources.conftest import configured


def test_a_server_that_never_answers_is_given_up_at_the_deadline() -> None:
    # Four attempts of 30 s each would take two minutes; the deadline cuts them all short.
    with (
        SilentServer() as silent,
        Fetcher(timeout=30, attempts=4, deadline=0.5, initial_wait=0, max_wait=0) as fetcher,
        pytest.raises(SourceError) as info,
    ):
        fetcher.fetch(silent.url)
    assert info.value.url == silent.url
    assert "timed out (ReadTimeout)" in info.value.reason
    assert "no answer within the 0.5 s deadline, NEWSLETTER_FETCH_DEADLINE" in info.value.reason


def test_back_off_never_sleeps_past_the_deadline(feed_server: FeedServer) -> None:
    # Retry-After asks for two minutes and max_wait would honour one: the deadline wins.
    url = feed_server.script(
        "/busy", Reply(503, b"busy", "text/plain", {"Retry-After": "120"}), Reply(body=b"late")
    )
    with (
        Fetcher(timeout=5, attempts=4, deadline=0.3, initial_wait=0, max_wait=60) as fetcher,
        pytest.raises(SourceError, match=r"HTTP 503 \(gave up after 2 attempts: no answer"),
    ):
        fetcher.fetch(url)


def test_the_deadline_does_not_cut_a_normal_retry(feed_server: FeedServer) -> None:
    url = feed_server.script("/feed", Reply(503, b"busy", "text/plain"), Reply(body=b"ok"))
    with Fetcher(timeout=5, attempts=3, deadline=30, initial_wait=0, max_wait=0) as fetcher:
        assert fetcher.fetch(url).content == b"ok"


def test_politeness_groups_are_arxiv_as_a_whole_else_host_and_port() -> None:
    assert host_key("https://rss.arxiv.org/rss/cs.AI") == host_key("https://export.arxiv.org/api")
    assert host_key("http://127.0.0.1:8001/a") == host_key("http://127.0.0.1:8001/b")
    assert host_key("http://127.0.0.1:8001/a") != host_key("http://127.0.0.1:8002/a")


class ReleaseWhenStored:
    """Progress hooks that end the silent server's hang once another source is stored."""

    def __init__(self, silent: SilentServer, good_url: str) -> None:
        self.silent = silent
        self.good_url = good_url
        self.done: list[str] = []

    def started(self, url: str) -> None: ...

    def parsed(self, url: str, total: int) -> None: ...

    def stored(self, url: str, count: int) -> None: ...

    def finished(self, stats: SourceStats) -> None:
        self.done.append(stats.url)
        if stats.url == self.good_url:
            self.silent.release()


def test_other_hosts_are_collected_while_one_hangs(
    services: Services, feed_server: FeedServer
) -> None:
    """The hanging source comes first; the good one is stored while it still hangs.

    Fetched one after the other, the good source would start only after the hanging
    one had used up its deadline, and the hang would end by that deadline. Fetched
    concurrently, the good source is stored first and its storing ends the hang
    (connection closed), long before the deadline.
    """
    good = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    with (
        SilentServer() as silent,
        Fetcher(timeout=60, attempts=1, deadline=60, initial_wait=0, max_wait=0) as fetcher,
    ):
        progress = ReleaseWhenStored(silent, good)
        report = collect(
            configured(services, feeds=[silent.url, good]), fetcher=fetcher, progress=progress
        )
    stuck, fine = report.sources
    assert progress.done == [good, silent.url]
    assert [stuck.url, fine.url] == [silent.url, good]  # the report keeps the configured order
    assert fine.ok and fine.new == 5
    assert stuck.error.startswith("connection failed") and "deadline" not in stuck.error


def test_run_settings_bound_a_hanging_source(services: Services, feed_server: FeedServer) -> None:
    """NEWSLETTER_FETCH_DEADLINE reaches the fetcher the pipeline builds."""
    good = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    with SilentServer() as silent:
        svc = configured(services, feeds=[silent.url, good], fetch_deadline=0.5, fetch_timeout=30)
        report = collect(svc)
    stuck, fine = report.sources
    assert fine.new == 5
    assert "FAILED" in stuck.line() and "0.5 s deadline" in stuck.line()
    assert not report.ok

"""Hugging Face daily-papers answers that are not a list of papers: reported, never a crash."""

from __future__ import annotations

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.sources.collect import SourceStats
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import JSON, FeedServer, Reply
from tests.sources.conftest import configured

PATH = "/api/daily_papers?date=2024-11-22"


def run(services: Services, fetcher: Fetcher, server: FeedServer, reply: Reply) -> SourceStats:
    hf = server.script(PATH, reply)
    arxiv = server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    report = collect(configured(services, feeds=[arxiv, hf]), fetcher=fetcher)
    arxiv_stats, hf_stats = report.sources
    assert arxiv_stats.ok and arxiv_stats.new == 5  # the other source is not affected
    return hf_stats


def test_an_error_object_is_reported(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    stats = run(
        services,
        fetcher,
        feed_server,
        Reply(body=b'{"error": "Invalid date: must be a weekday"}', content_type=JSON),
    )
    assert (
        stats.status == "FAILED (the API answered with an error: Invalid date: must be a weekday)"
    )


def test_a_404_with_a_json_message_is_reported_with_it(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    stats = run(
        services,
        fetcher,
        feed_server,
        Reply(404, b'{"error": "Daily papers not found"}', content_type=JSON),
    )
    assert stats.error == "HTTP 404 (Daily papers not found); check the feed URL"
    assert len(feed_server.hits(PATH)) == 1  # a 404 is final, not retried


def test_an_empty_list_is_an_empty_day_of_the_list(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    stats = run(services, fetcher, feed_server, Reply(body=b"[]", content_type=JSON))
    assert (stats.ok, stats.kind, stats.seen, stats.new, stats.error) == (
        True,
        "hf-daily",
        0,
        0,
        "",
    )


def test_a_detail_object_is_reported(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    stats = run(
        services, fetcher, feed_server, Reply(body=b'{"detail": "rate limited"}', content_type=JSON)
    )
    assert stats.error == "the API answered with an error: rate limited"

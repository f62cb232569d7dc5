"""Collecting recorded feeds served on loopback into SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.digest import build_digest, render_view
from newsletter.models import Paper, ReaderView
from newsletter.papers import PAPERS, papers_on
from newsletter.sources.collect import CollectReport, SourceStats
from newsletter.sources.dedup import store_papers
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import DATA, FeedServer, Reply
from tests.sources.conftest import configured

FRIDAY = dt.date(2024, 11, 22)
MONDAY = dt.date(2024, 11, 25)
FRIDAY_IDS = {"2411.14405", "2411.14251", "2411.14199", "2411.13676", "2411.14162", "2411.14374"}


def stored_rows(svc: Services) -> dict[str, sa.Row[Any]]:
    with svc.engine.connect() as conn:
        return {r.arxiv_id: r for r in conn.execute(sa.select(PAPERS))}


def run(svc: Services, fetcher: Fetcher, feeds: list[str], **settings: object) -> CollectReport:
    return collect(configured(svc, feeds=feeds, **settings), fetcher=fetcher)


def balanced(s: SourceStats) -> bool:
    return s.seen == s.new + s.duplicate + s.replacements + s.failed


def friday_feeds(server: FeedServer) -> list[str]:
    return [
        server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml"),
        server.serve_file("/rss/cs.LG", "arxiv/cs.LG-2024-11-22.xml"),
    ]


def test_each_paper_is_stored_once_with_all_its_classes(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    report = run(services, fetcher, friday_feeds(feed_server))
    assert report.ok
    ai, lg = report.sources
    assert (ai.seen, ai.new, ai.duplicate, ai.replacements, ai.failed) == (7, 5, 0, 2, 0)
    assert (lg.seen, lg.new, lg.duplicate, lg.replacements, lg.failed) == (4, 1, 2, 1, 0)
    assert balanced(ai) and balanced(lg)
    rows = stored_rows(services)
    assert set(rows) == FRIDAY_IDS
    assert {r.announced for r in rows.values()} == {FRIDAY}
    # Cross-listed into cs.AI, announced as new in cs.LG: one paper, the new announcement leads.
    dpo = rows["2411.14162"]
    assert (dpo.announce_type, dpo.primary_class, dpo.classes) == ("new", "cs.LG", "cs.LG cs.AI")
    assert json.loads(rows["2411.13676"].authors)[0] == "Xin Dong"
    assert [p.arxiv_id for p in papers_on(services.engine, FRIDAY)] == sorted(FRIDAY_IDS)


def test_same_day_duplicate_from_another_feed_adds_its_classes(services: Services) -> None:
    paper = Paper("2411.14162", "T", "A", ("X",), FRIDAY, "cs.LG", ("cs.LG",), 1, "cross")
    assert store_papers(services.engine, [paper]).new == 1
    other = Paper("2411.14162", "T", "A", ("X",), FRIDAY, "cs.AI", ("cs.AI", "cs.NE"), 1, "cross")
    result = store_papers(services.engine, [other])
    assert (result.new, result.duplicate, result.merged) == (0, 1, 1)
    assert stored_rows(services)["2411.14162"].classes == "cs.LG cs.AI cs.NE"
    # A later day's re-announcement changes nothing about the stored paper.
    later = Paper("2411.14162", "T", "A", ("X",), MONDAY, "stat.ML", ("stat.ML",), 1, "cross")
    assert store_papers(services.engine, [later]).merged == 0
    row = stored_rows(services)["2411.14162"]
    assert (row.announced, row.classes) == (FRIDAY, "cs.LG cs.AI cs.NE")


def test_rerun_fetches_and_inserts_nothing_twice(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feeds = friday_feeds(feed_server)
    run(services, fetcher, feeds)
    again = run(services, fetcher, feeds)
    assert again.new == 0
    assert [s.duplicate for s in again.sources] == [5, 3]
    assert len(stored_rows(services)) == len(FRIDAY_IDS)


def test_unchanged_feed_costs_a_304(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml", etag='"fri"')
    first = run(services, fetcher, [url])
    second = run(services, fetcher, [url])
    assert first.new == 5
    (stats,) = second.sources
    assert stats.not_modified and stats.ok and stats.seen == 0
    assert stats.line().startswith(f"{url}: not modified (HTTP 304); seen 0, new 0")
    assert feed_server.hits("/rss/cs.AI")[1].headers["If-None-Match"] == '"fri"'


def test_a_paper_announced_again_on_a_later_day_is_not_repeated(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    run(services, fetcher, friday_feeds(feed_server))
    monday = feed_server.serve_file("/rss/cs.AI-mon", "arxiv/cs.AI-2024-11-25.xml")
    report = run(services, fetcher, [monday])
    (stats,) = report.sources
    assert (stats.seen, stats.new, stats.duplicate, stats.replacements) == (4, 2, 1, 1)
    assert [p.arxiv_id for p in papers_on(services.engine, MONDAY)] == [
        "2411.15124",
        "2411.15296",
    ]
    assert stored_rows(services)["2411.14374"].announced == FRIDAY


def test_replacements_are_stored_as_updated_only_when_asked(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    run(services, fetcher, friday_feeds(feed_server), include_replacements=True)
    rows = stored_rows(services)
    assert rows["2410.21276"].announce_type == "replace"
    assert (rows["2409.12186"].announce_type, rows["2409.12186"].version) == ("replace-cross", 3)
    # Marco-o1 v2 on Monday is a replacement of a paper readers already had.
    monday = feed_server.serve_file("/rss/mon", "arxiv/cs.AI-2024-11-25.xml")
    report = run(services, fetcher, [monday], include_replacements=True)
    assert report.sources[0].duplicate == 2 and report.sources[0].replacements == 0
    assert stored_rows(services)["2411.14405"].announced == FRIDAY


def test_one_failing_source_never_stops_the_others(
    services: Services, feed_server: FeedServer
) -> None:
    feeds = [
        feed_server.serve_file("/html", "other/html-instead.html"),
        feed_server.script("/slow", Reply(hang=True)),
        feed_server.serve_file("/bozo", "other/bozo-no-entries.xml"),
        feed_server.serve_file("/good", "arxiv/cs.AI-2024-11-22.xml"),
        feed_server.serve_file("/cut", "arxiv/cs.CL-truncated.xml"),
        feed_server.serve_file("/bad", "arxiv/cs.AI-bad-entries.xml"),
        feed_server.url("/gone"),
        feed_server.script("/busy", Reply(503, b"busy", "text/plain"), Reply(503), Reply(503)),
    ]
    with Fetcher(timeout=1.0, attempts=1) as quick:
        report = run(services, quick, feeds)
    assert not report.ok
    by_url = {s.url: s for s in report.sources}
    reasons = {url: s.error for url, s in by_url.items()}
    assert reasons[feeds[0]] == "the server sent text/html; charset=utf-8, not an RSS or Atom feed"
    assert reasons[feeds[1]] == "timed out (ReadTimeout) (gave up after 1 attempt)"
    assert reasons[feeds[2]].startswith("malformed XML with no entries (")
    assert reasons[feeds[6]] == "HTTP 404; check the feed URL"
    assert reasons[feeds[7]] == "HTTP 503 (gave up after 1 attempt)"
    assert by_url[feeds[0]].line() == (
        f"{feeds[0]}: FAILED (the server sent text/html; charset=utf-8, not an RSS or Atom "
        "feed); seen 0, new 0, duplicate 0, skipped as replacement 0, failed 0"
    )
    good, cut, bad = by_url[feeds[3]], by_url[feeds[4]], by_url[feeds[5]]
    assert good.ok and good.new == 5
    assert (cut.new, cut.failed) == (2, 1) and cut.status == "partly failed"
    assert cut.problems[0].startswith("malformed XML (")
    assert (bad.new, bad.failed) == (5, 2)
    assert all(balanced(s) for s in report.sources)
    # Every complete entry of every source is stored, nothing else.
    assert len(stored_rows(services)) == 5 + 2 + 5


def test_hostile_title_is_stored_as_text_and_escaped_in_the_mail(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    run(services, fetcher, [feed_server.serve_file("/bad", "arxiv/cs.AI-bad-entries.xml")])
    title = stored_rows(services)["2411.16004"].title
    assert "<script>alert('x')</script>" in title
    digest = build_digest(services, dt.date(2024, 11, 26), "en")
    assert digest is not None
    rendered = render_view(services, digest, ReaderView(digest.slugs, "en"))
    assert "<script" not in rendered.html.lower()
    assert "&lt;script&gt;" in rendered.html
    assert "Bcc: victim@example.com Through Titles" in rendered.html


def test_retry_on_503_then_success_stores_the_papers(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.script(
        "/rss/cs.AI",
        Reply(503, b"", "text/plain", {"Retry-After": "5"}),
        Reply(body=(DATA / "arxiv" / "cs.AI-2024-11-22.xml").read_bytes()),
    )
    report = run(services, fetcher, [url])
    assert report.ok and report.new == 5
    assert len(feed_server.hits("/rss/cs.AI")) == 2


def test_hugging_face_daily_list_joins_the_arxiv_issue_date(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    arxiv = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    hf = feed_server.serve_file(
        "/api/daily_papers?date=2024-11-22", "hf/daily_papers-2024-11-22.json"
    )
    template = hf.replace("2024-11-22", "{date}")
    report = run(services, fetcher, [template, arxiv])
    ai, daily = report.sources  # templated URLs go last: they need arXiv's date
    assert ai.url == arxiv
    assert daily.url == hf and daily.kind == "hf-daily"
    assert (daily.seen, daily.new, daily.duplicate, daily.failed) == (4, 2, 1, 1)
    assert daily.problems == ["entry 4: no id"]
    rows = stored_rows(services)
    assert rows["2411.14405"].source == arxiv  # first seen in arXiv's own feed
    assert rows["2411.14402"].announced == FRIDAY
    assert rows["2411.10440"].announced == FRIDAY


def test_requested_date_fills_the_date_placeholder(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.serve("/api/daily_papers?date=2024-11-25", b"[]", content_type="application/json")
    template = feed_server.url("/api/daily_papers?date={date}")
    report = collect(configured(services, feeds=[template]), MONDAY, fetcher=fetcher)
    assert report.ok and report.sources[0].announced == MONDAY

"""``newsletter collect`` and ``run-once`` on an empty day, through the real CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from newsletter.app import Services
from newsletter.cli import main
from newsletter.collecting import collect
from newsletter.sources.fetch import Fetcher
from newsletter.sources.progress import RichProgress
from tests.fakes.feeds import DATA, FeedServer
from tests.sources.conftest import configured


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> pytest.MonkeyPatch:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSLETTER_FETCH_ATTEMPTS", "1")
    return monkeypatch


def test_collect_prints_one_line_per_source_and_exits_1_on_a_failure(
    cli_env: pytest.MonkeyPatch, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    good = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    bad = feed_server.serve_file("/rss/cs.CL", "arxiv/cs.CL-truncated.xml")
    html = feed_server.serve_file("/rss/cs.LG", "other/html-instead.html")
    cli_env.setenv("NEWSLETTER_FEEDS", json.dumps([good, bad, html]))
    assert main(["collect"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{good}: ok; seen 7, new 5, duplicate 0, skipped as replacement 2, failed 0, "
        "announced 2024-11-22"
    )
    assert out[1] == (
        f"{bad}: partly failed; seen 3, new 2, duplicate 0, skipped as replacement 0, "
        "failed 1, announced 2024-11-27"
    )
    assert out[2].startswith(f"  {bad}: malformed XML (")
    assert out[3] == f"  {bad}: entry 3: cut off (the feed is truncated)"
    assert out[4] == (
        f"{html}: FAILED (the server sent text/html; charset=utf-8, not an RSS or Atom feed); "
        "seen 0, new 0, duplicate 0, skipped as replacement 0, failed 0"
    )
    assert out[-1] == "collected: 7 new papers from 3 sources"
    # Run again: nothing new, nothing failed from the good source.
    assert main(["collect"]) == 1
    assert "new 0, duplicate 5" in capsys.readouterr().out


def test_bad_entries_are_listed_with_the_url_and_reason(
    cli_env: pytest.MonkeyPatch, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-bad-entries.xml")
    cli_env.setenv("NEWSLETTER_FEEDS", bad)
    assert main(["collect"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{bad}: partly failed; seen 7, new 5, duplicate 0, skipped as replacement 0, "
        "failed 2, announced 2024-11-26"
    )
    assert out[1:7] == [
        f"  {bad}: entry 2 ('A Paper Whose Identifier Was Lost'): no id",
        f"  {bad}: entry 3 (2411.16003): no title",
        f"  {bad}: kept: entry 4 (2411.16004): title contains markup; kept as plain text",
        f"  {bad}: kept: entry 5 (2411.16005): line breaks in the title folded into one line",
        f"  {bad}: kept: entry 6 (2411.16006): title of 10000 characters cut to 500",
        "collected: 5 new papers from 1 source",
    ]


def test_collect_exits_0_when_every_source_succeeded(
    cli_env: pytest.MonkeyPatch, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    weekend = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-23-weekend.xml")
    cli_env.setenv("NEWSLETTER_FEEDS", weekend)
    assert main(["collect"]) == 0
    out = capsys.readouterr().out
    assert "arXiv announced nothing on 2024-11-23 (a weekend or holiday)" in out


@pytest.mark.parametrize(
    ("argv", "feeds", "message"),
    [
        (["collect"], "[]", "NEWSLETTER_FEEDS is empty; set at least one feed URL"),
        (["collect", "--date", "2024-02-30"], "http://127.0.0.1:9/x", "invalid date"),
    ],
)
def test_usage_errors_exit_2(
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    feeds: str,
    message: str,
) -> None:
    cli_env.setenv("NEWSLETTER_FEEDS", feeds)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_once_on_an_empty_day_mails_the_note_once(
    cli_env: pytest.MonkeyPatch,
    feed_server: FeedServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    cli_env.setenv(
        "NEWSLETTER_FEEDS", feed_server.serve_file("/rss", "arxiv/cs.AI-2024-11-23-weekend.xml")
    )
    cli_env.setenv("NEWSLETTER_EMPTY_DAY", "note")
    cli_env.setenv("NEWSLETTER_MAIL_BACKEND", "file")
    cli_env.setenv("NEWSLETTER_OUTBOX_DIR", str(outbox))
    assert main(["subscribers", "add", "reader@example.com", "--language", "en"]) == 0
    assert main(["run-once"]) == 0
    assert "mailing the short 'no new papers' note" in capsys.readouterr().out
    assert len(list(outbox.glob("*.eml"))) == 1
    assert main(["run-once"]) == 0
    assert main(["send"]) == 0
    assert len(list(outbox.glob("*.eml"))) == 1


def test_progress_shows_a_bar_per_source(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feeds = [
        feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml"),
        feed_server.url("/missing"),
    ]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    with RichProgress(console) as display:
        collect(configured(services, feeds=feeds), fetcher=fetcher, progress=display)
    shown = screen.getvalue()
    assert "/rss/cs.AI" in shown and "5 new" in shown and "5/5" in shown
    assert "failed: HTTP 404; check the feed URL" in shown


def test_the_summary_names_what_was_refused_and_why(
    cli_env: pytest.MonkeyPatch, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rdf = (DATA / "arxiv" / "hep-ex-rdf-2021-01-05.xml").read_bytes()
    undated = feed_server.serve(
        "/rss/old", rdf.replace(b"<dc:date>2021-01-05T20:30:00-05:00</dc:date>", b"")
    )
    dated = feed_server.serve("/rss/hep-ex", rdf)
    api = feed_server.serve_file("/api/query", "arxiv/api-query-cs.LG.xml")
    cli_env.setenv("NEWSLETTER_FEEDS", json.dumps([undated, dated, api]))
    assert main(["collect"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{undated}: FAILED (an arXiv RSS 1.0 feed without a channel date (dc:date): its papers "
        "cannot be dated, so none were stored); seen 0, new 0, duplicate 0, "
        "skipped as replacement 0, failed 0"
    )
    assert out[1] == (
        f"{dated}: ok; seen 3, new 2, duplicate 0, skipped as replacement 1, failed 0, "
        "announced 2021-01-05"
    )
    assert out[2] == (
        f"{api}: ok; seen 4, new 4, duplicate 0, skipped as replacement 0, failed 0, "
        "announced 2024-11-21"
    )
    assert out[-1] == "collected: 6 new papers from 3 sources"

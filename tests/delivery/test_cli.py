"""``newsletter send`` and ``newsletter deliveries`` as an operator runs them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery.progress import terminal_progress
from tests.delivery.conftest import ONLY_POSTGRESQL, SECRET, add_readers
from tests.fakes.feeds import FeedServer
from tests.fakes.sendgrid_double import API_KEY, SendGridDouble, Step
from tests.fakes.tcp_proxy import CutDatabaseOnSend, TcpProxy

LINE = re.compile(r"^sent: (\d+), skipped: (\d+), failed: (\d+), unknown: (\d+)$")
SETS = (("nlp",), ("llm",))


@pytest.fixture
def env(
    delivery_services: Services, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch
) -> Services:
    for key, value in {
        "DATABASE_URL": delivery_services.settings.database_url,
        "MAIL_BACKEND": "sendgrid",
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_HOST": sendgrid.url,
        "SENDGRID_TIMEOUT": "0.5",
        "SECRET_KEY": SECRET,
        "FROM_EMAIL": "news@example.org",
        "FEEDS": "[]",
        "LANGUAGE": "en",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{key}", value)
    return delivery_services


def send(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, tuple[int, ...], str]:
    code = main(["send", "--date", "2024-11-22", *args])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out
    match = LINE.match(lines[0])
    assert match, lines[0]
    return code, tuple(int(n) for n in match.groups()), err


def test_send_prints_one_line_and_exits_0(
    env: Services, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    add_readers(env, 8, SETS)
    assert send(capsys)[:2] == (0, (8, 0, 0, 0))
    assert send(capsys)[:2] == (0, (0, 0, 0, 0))
    assert len(sendgrid.recipients) == 8


def test_unknown_readers_exit_1_are_listed_and_resent_on_request(
    env: Services, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    add_readers(env, 6, SETS)
    sendgrid.script(Step(hang=30))
    code, counts, err = send(capsys)
    assert (code, counts) == (1, (3, 0, 0, 3))
    assert "--resend-unknown" in err
    assert main(["deliveries", "--status", "unknown", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 3 and {d["status"] for d in listed} == {"unknown"}
    assert all("may have been accepted" in d["error"] for d in listed)
    assert send(capsys)[:2] == (1, (0, 0, 0, 3))  # still unknown: not resent on its own
    assert send(capsys, "--resend-unknown")[:2] == (0, (3, 0, 0, 0))
    assert sorted(sendgrid.recipients.values()) == [1] * 6
    assert main(["deliveries"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 6 and all("\tsent\t" in row for row in rows)


def test_a_dry_run_sends_nothing(
    env: Services, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    add_readers(env, 5, SETS)
    code, counts, err = send(capsys, "--dry-run")
    assert (code, counts) == (0, (5, 0, 0, 0)) and "dry run" in err
    assert sendgrid.seen == []


def test_a_refused_key_exits_1_and_says_why(
    env: Services,
    sendgrid: SendGridDouble,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_readers(env, 4, SETS)
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", "SG.revoked")
    code, counts, err = send(capsys)
    assert code == 1 and counts[0] == 0
    assert "NEWSLETTER_SENDGRID_API_KEY" in err
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", API_KEY)
    assert send(capsys)[:2] == (0, (4, 0, 0, 0))


def test_deliveries_before_any_send_is_a_clear_error(
    env: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deliveries"]) == 2
    assert "run `newsletter send` first" in capsys.readouterr().err
    assert main(["deliveries", "--date", "2031-01-01"]) == 2
    assert "no issue for 2031-01-01" in capsys.readouterr().err


def test_a_bad_status_filter_is_a_usage_error(env: Services) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["deliveries", "--status", "lost"])
    assert caught.value.code == 2


def test_the_progress_bar_counts_readers() -> None:
    with terminal_progress(enabled=True) as progress:
        assert progress is not None
        progress.start(3)
        progress.advance(3)
    with terminal_progress(enabled=False) as nothing:
        assert nothing is None


def test_send_collects_what_is_missing_then_sends(
    settings: Any,
    sendgrid: SendGridDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An empty database: ``send`` collects the date's feed, prepares the issue, mails it."""
    with FeedServer() as feeds:
        feed = feeds.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
        for key, value in {
            "DATABASE_URL": settings.database_url,
            "MAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_HOST": sendgrid.url,
            "SECRET_KEY": SECRET,
            "FROM_EMAIL": "news@example.org",
            "FEEDS": feed,
            "LANGUAGE": "en",
        }.items():
            monkeypatch.setenv(f"NEWSLETTER_{key}", value)
        svc = Services.build(settings)
        try:
            add_readers(svc, 3, (svc.taxonomy.slugs,))
        finally:
            svc.engine.dispose()
        assert send(capsys)[:2] == (0, (3, 0, 0, 0))
        assert len(feeds.hits("/rss/cs.AI")) == 1
        assert send(capsys)[:2] == (0, (0, 0, 0, 0))  # papers stored: no second fetch
        assert len(feeds.hits("/rss/cs.AI")) == 1


@ONLY_POSTGRESQL
def test_a_database_that_drops_mid_send_ends_with_one_line(
    delivery_services: Services,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As found: the run ended with SQLAlchemy's traceback, its SQL and its parameters."""
    add_readers(delivery_services, 6, SETS)
    proxy = TcpProxy(("127.0.0.1", 5432))
    url = delivery_services.settings.database_url.replace(
        "127.0.0.1:5432", f"127.0.0.1:{proxy.port}"
    )
    assert url != delivery_services.settings.database_url
    monkeypatch.setattr(CutDatabaseOnSend, "proxy", proxy)
    for key, value in {
        "DATABASE_URL": url,
        "MAIL_BACKEND": "tests.fakes.tcp_proxy:CutDatabaseOnSend",
        "SECRET_KEY": SECRET,
        "FEEDS": "[]",
        "LANGUAGE": "en",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{key}", value)
    code = main(["send", "--date", "2024-11-22"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines()[-1].startswith("error: the database went away")
    for raw in ("Traceback", "[SQL:", "[parameters:", "INSERT", "UPDATE", "SELECT", "sqlalche.me"):
        assert raw not in err and raw not in out

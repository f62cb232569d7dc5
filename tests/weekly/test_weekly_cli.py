"""The CLI sets a reader's cadence and weekday, and lists them."""

from __future__ import annotations

import json

import pytest

from newsletter.app import Services
from newsletter.cli import main
from subscribers import readers


@pytest.fixture
def cli_env(services: Services, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    return services


def test_add_weekly_reader_and_list_json(
    cli_env: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["subscribers", "add", "w@example.com", "--cadence", "weekly", "--weekday", "thu"]
    assert main(argv) == 0
    assert "weekly on thu" in capsys.readouterr().out
    assert main(["subscribers", "add", "d@example.com"]) == 0
    capsys.readouterr()
    assert main(["subscribers", "list", "--json"]) == 0
    listed = {r["email"]: r for r in json.loads(capsys.readouterr().out)}
    assert (listed["w@example.com"]["cadence"], listed["w@example.com"]["weekday"]) == (
        "weekly",
        "thu",
    )
    assert (listed["d@example.com"]["cadence"], listed["d@example.com"]["weekday"]) == (
        "daily",
        "mon",
    )
    assert {"email", "status", "categories", "language"} <= set(listed["d@example.com"])
    # Adding a known reader again without --cadence keeps their choice.
    assert main(["subscribers", "add", "w@example.com", "--language", "en"]) == 0
    info = readers.get_by_email(cli_env.engine, "w@example.com")
    assert info is not None and (info.cadence, info.weekday) == ("weekly", 3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weekday", "someday"], "unknown weekday 'someday'; use one of mon, tue"),
        (["--weekday", "7"], "unknown weekday '7'"),
    ],
)
def test_bad_weekday_is_refused_and_stores_nothing(
    cli_env: Services, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["subscribers", "add", "w@example.com", "--cadence", "weekly", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert readers.get_by_email(cli_env.engine, "w@example.com") is None


def test_bad_cadence_is_refused_by_the_store(cli_env: Services) -> None:
    from newsletter.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown cadence 'monthly'; use one of daily"):
        readers.add_active(cli_env.engine, cli_env.taxonomy, "m@example.com", cadence="monthly")
    assert readers.get_by_email(cli_env.engine, "m@example.com") is None

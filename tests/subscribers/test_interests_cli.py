"""``newsletter subscribers interests``: shows, sets from text and files, clears; a bad file
changes nothing; showing or setting text loads no heavy module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.startup import HEAVY
from newsletter.app import Services
from newsletter.cli import main
from newsletter.settings import Settings
from subscribers import readers
from subscribers.interests import get_interests
from tests.conftest import DATA
from tests.test_startup import PROBE

BIB = DATA / "interests" / "zotero.bib"
RIS = DATA / "interests" / "zotero.ris"


@pytest.fixture
def cli(services: Services, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", services.settings.database_url)
    readers.add_active(services.engine, services.taxonomy, "r@example.com", ["nlp"], "en")
    return services


def rid(svc: Services) -> int:
    info = readers.get_by_email(svc.engine, "r@example.com")
    assert info is not None
    return info.id


def test_set_show_and_clear(cli: Services, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribers", "interests", "R@Example.com"]) == 0
    assert "r@example.com: no interests" in capsys.readouterr().out
    assert main(["subscribers", "interests", "r@example.com", "--text", "speech, TTS"]) == 0
    assert main(["subscribers", "interests", "r@example.com", "--bibtex", str(BIB)]) == 0
    shown = capsys.readouterr().out.splitlines()[-2:]
    assert shown == ["r@example.com: text 11 characters, 3 liked papers", "speech, TTS"]
    assert main(["subscribers", "interests", "r@example.com", "--ris", str(RIS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["email"] == "r@example.com" and data["text"] == "speech, TTS"
    assert [p["title"] for p in data["papers"]] == [
        "Attention Is All You Need",
        "Diffusion models for protein design",
    ]  # a file replaces the list
    assert main(["subscribers", "interests", "r@example.com", "--clear", "--text", "vision"]) == 0
    now = get_interests(cli.engine, rid(cli))
    assert now is not None and (now.text, now.papers) == ("vision", ())
    assert main(["subscribers", "interests", "r@example.com", "--clear"]) == 0
    assert get_interests(cli.engine, rid(cli)) is None
    capsys.readouterr()
    assert main(["subscribers", "interests", "r@example.com", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"email": "r@example.com"}


def test_errors_change_nothing(
    cli: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["subscribers", "interests", "r@example.com", "--text", "robots"]) == 0
    before = get_interests(cli.engine, rid(cli))
    bad = tmp_path / "bad.bib"
    bad.write_text("@article{a, title={Unclosed\n")
    assert main(["subscribers", "interests", "r@example.com", "--bibtex", str(bad)]) == 2
    assert "malformed near line 1" in capsys.readouterr().err
    long = "x" * 1001
    assert main(["subscribers", "interests", "r@example.com", "--clear", "--text", long]) == 2
    assert "shorten it to 1,000" in capsys.readouterr().err
    missing = str(tmp_path / "none.ris")
    assert main(["subscribers", "interests", "r@example.com", "--ris", missing]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["subscribers", "interests", "nobody@example.com", "--text", "x"]) == 2
    assert "no such subscriber" in capsys.readouterr().err
    assert get_interests(cli.engine, rid(cli)) == before
    readers.unsubscribe_address(cli.engine, "r@example.com")
    assert main(["subscribers", "interests", "r@example.com", "--text", "x"]) == 2
    assert "this reader is unsubscribed" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--text", "graph neural networks"]], ids=["show", "text"])
def test_interests_without_a_file_load_no_heavy_module(tmp_path: Path, extra: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'light.db'}"
    svc = Services.build(Settings(database_url=url))
    readers.add_active(svc.engine, svc.taxonomy, "light@example.com")
    svc.engine.dispose()
    argv = ["subscribers", "interests", "light@example.com", *extra]
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=(*HEAVY, "bibtexparser", "rispy")), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rsplit("HEAVY:", 1)[1].strip() == ""

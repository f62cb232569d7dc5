"""``newsletter preview --subscriber`` and ``newsletter serve``'s arguments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.cli import build_parser, main
from newsletter.preview import load_sample
from subscribers import readers
from tests.web.conftest import Web


def _sections(html: str) -> list[str]:
    return re.findall(r'<h2 id="([a-z-]+)"', html)


def test_preview_for_a_subscriber_uses_their_categories_and_language(
    web: Web, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_sample(web.svc)
    reader = web.subscribe_and_confirm("r@example.com", ["nlp", "llm"], "en")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
    monkeypatch.setenv("NEWSLETTER_FEEDS", "")
    args = ["preview", "--date", "2024-11-22", "--subscriber", "R@Example.com", "--out"]
    assert main([*args, str(tmp_path / "before")]) == 0
    html = next((tmp_path / "before").glob("*.html")).read_text("utf-8")
    assert _sections(html) == ["nlp", "llm"] and 'lang="en"' in html
    readers.update_preferences(web.svc.engine, web.svc.taxonomy, reader.id, ["llm"], "en")
    assert main([*args, str(tmp_path / "after")]) == 0
    html = next((tmp_path / "after").glob("*.html")).read_text("utf-8")
    assert _sections(html) == ["llm"]
    capsys.readouterr()


def test_preview_for_an_unknown_or_ambiguous_subscriber(
    web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    web.subscribe_and_confirm("r@example.com")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
    assert main(["preview", "--subscriber", "nobody@example.com"]) == 2
    assert "no such subscriber" in capsys.readouterr().err
    assert main(["preview", "--subscriber", "r@example.com", "--categories", "nlp"]) == 2
    assert "either --subscriber or --categories" in capsys.readouterr().err


def test_serve_arguments() -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert (args.host, args.port) == ("0.0.0.0", 8123)
    default = build_parser().parse_args(["serve"])
    assert (default.host, default.port) == ("127.0.0.1", 8000)

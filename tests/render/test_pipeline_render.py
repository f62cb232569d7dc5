"""The e-mail through the pipeline and the CLI, on SQLite and PostgreSQL.

A taxonomy with one extra category that no sample paper fits gives a category
with 0 papers on the bundled sample day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import webbrowser
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest, render_view
from newsletter.models import ReaderView
from newsletter.preview import load_sample
from newsletter.sending import send
from newsletter.settings import Settings, load_settings
from subscribers import readers
from tests.render.htmlcheck import parse

SAMPLE_DATE = dt.date(2024, 11, 22)
EMPTY = "quantum-biology"


def _categories_file(tmp_path: Path) -> Path:
    bundled = json.loads(
        resources.files("newsletter").joinpath("data/categories.json").read_text("utf-8")
    )
    bundled.insert(
        0,
        {
            "slug": EMPTY,
            "emoji": "🧬",
            "color": "#2a9d8f",
            "names": {"ko": "양자 생물학", "en": "Quantum Biology"},
            "description": "Nothing in the sample fits here.",
            "arxiv_classes": ["q-bio.ZZ"],
            "keywords": ["zzz-no-such-keyword"],
        },
    )
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(bundled, ensure_ascii=False), "utf-8")
    return path


def _settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(
        database_url=database_url,
        feeds=[],
        mail_backend="memory",
        base_url="https://news.example.org",
        categories_file=_categories_file(tmp_path),
        **overrides,
    )


@pytest.fixture
def svc(database_url: str, tmp_path: Path) -> Iterator[Services]:
    services = Services.build(_settings(database_url, tmp_path))
    load_sample(services)
    yield services
    services.engine.dispose()


def test_reader_whose_categories_all_have_no_paper_gets_no_mail_and_the_log_says_so(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    readers.add_active(svc.engine, svc.taxonomy, "empty@example.com", [EMPTY], "en")
    readers.add_active(svc.engine, svc.taxonomy, "nlp@example.com", [EMPTY, "nlp"], "en")
    backend = MemoryBackend()
    with caplog.at_level(logging.INFO, logger="newsletter.audience"):
        first = send(svc, SAMPLE_DATE, backend)
    second = send(svc, SAMPLE_DATE, backend)
    assert [str(m["To"]) for m in backend.outbox] == ["nlp@example.com"]
    assert (first.sent, second.sent) == (1, 0)
    assert first.skipped >= 1
    assert any(
        "no paper" in r.getMessage() and str(SAMPLE_DATE) in r.getMessage() for r in caplog.records
    )
    html = backend.outbox[0].get_body(preferencelist=("html",))
    assert html is not None
    doc = parse(str(html.get_content()))
    assert doc.section_ids == ["nlp"]  # the empty category is not shown
    assert "Quantum Biology" not in doc.text


def test_render_view_embeds_the_chart_inline_by_default(svc: Services) -> None:
    digest = build_digest(svc, SAMPLE_DATE, "en")
    assert digest is not None and EMPTY not in digest.slugs
    rendered = render_view(svc, digest, ReaderView(("nlp",), "en"))
    assert [i.data for i in rendered.images] == [digest.chart_png]
    assert parse(rendered.html).find("img")[0].attrs["src"].startswith("cid:")


def test_hosted_chart_mode_links_the_archive_png(database_url: str, tmp_path: Path) -> None:
    services = Services.build(_settings(database_url, tmp_path, chart_mode="hosted"))
    try:
        load_sample(services)
        rendered = {}
        for language in ("ko", "en"):  # ko is the default language
            digest = build_digest(services, SAMPLE_DATE, language)
            assert digest is not None
            rendered[language] = render_view(services, digest, ReaderView(("nlp",), language))
    finally:
        services.engine.dispose()
    png = "https://news.example.org/issues/2024-11-22/chart.png"
    for language, expected in (("ko", png), ("en", f"{png}?lang=en")):
        assert rendered[language].images == ()
        assert parse(rendered[language].html).find("img")[0].attrs["src"] == expected


def test_preview_cli_shows_exactly_what_such_a_reader_gets(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("NEWSLETTER_CATEGORIES_FILE", str(svc.settings.categories_file))
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    out = tmp_path / "preview"
    argv = ["preview", "--date", "2024-11-22", "--categories", "llm,nlp", "--language", "en"]
    assert main([*argv, "--out", str(out)]) == 0
    stem = "issue-2024-11-22-nlp-llm"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}.{ext}" for ext in ("html", "txt", "png", "eml")
    )
    html = (out / f"{stem}.html").read_text("utf-8")
    doc = parse(html)
    assert doc.section_ids == ["nlp", "llm"]
    assert doc.find("html")[0].attrs["lang"] == "en"
    assert doc.find("img")[0].attrs["src"] == f"{stem}.png"
    text = (out / f"{stem}.txt").read_text("utf-8")
    assert "Natural Language Processing" in text and "Computer Vision" not in text


def test_preview_of_only_empty_categories_says_that_reader_gets_nothing(
    svc: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("NEWSLETTER_CATEGORIES_FILE", str(svc.settings.categories_file))
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    out = tmp_path / "none"
    assert main(["preview", "--date", "2024-11-22", "--categories", EMPTY, "--out", str(out)]) == 1
    assert "that reader gets no e-mail today" in capsys.readouterr().err
    assert not out.exists()


def test_preview_open_hands_the_html_to_the_browser(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--open`` goes through the standard ``webbrowser`` module, which honours $BROWSER."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # re-read $BROWSER on next open
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("NEWSLETTER_CATEGORIES_FILE", str(svc.settings.categories_file))
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    out = tmp_path / "p"
    argv = ["preview", "--date", "2024-11-22", "--language", "ko", "--out", str(out), "--open"]
    assert main(argv) == 0
    assert opened.read_text() == (out / "issue-2024-11-22.html").resolve().as_uri()

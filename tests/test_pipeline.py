"""The foundation end to end: the demo, idempotent sends, category filtering, bad input."""

from __future__ import annotations

import datetime as dt
import email
import subprocess
import sys
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest
from newsletter.preview import load_sample, preview
from newsletter.sending import send
from subscribers import readers

SAMPLE_DATE = dt.date(2024, 11, 22)


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


class _Headings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.ids += [v or "" for k, v in attrs if k == "id"]


def section_ids(html: str) -> list[str]:
    parser = _Headings()
    parser.feed(html)
    return parser.ids


def test_demo_writes_every_artifact(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "issue-2024-11-22.eml",
        "issue-2024-11-22.html",
        "issue-2024-11-22.png",
        "issue-2024-11-22.txt",
    ]
    assert (out / "issue-2024-11-22.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "issue-2024-11-22.html").read_text("utf-8")
    assert html.lower().startswith("<!doctype html>")
    assert 'src="issue-2024-11-22.png"' in html
    msg = email.message_from_bytes(
        (out / "issue-2024-11-22.eml").read_bytes(),
        _class=EmailMessage,
        policy=email.policy.default,
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "cid:chart-2024-11-22@daily-ai-insights" in _html(msg)


def test_same_date_twice_gives_one_issue_and_one_delivery(services: Services) -> None:
    load_sample(services)
    readers.add_active(services.engine, services.taxonomy, "a@example.com")
    backend = MemoryBackend()
    first = send(services, SAMPLE_DATE, backend)
    second = send(services, SAMPLE_DATE, backend)
    assert (first.sent, second.sent) == (1, 0)
    assert len(backend.outbox) == 1
    from newsletter.issues import issue_dates

    assert issue_dates(services.engine) == {SAMPLE_DATE}


def test_reader_of_nlp_alone_gets_only_nlp(services: Services) -> None:
    load_sample(services)
    readers.add_active(services.engine, services.taxonomy, "nlp@example.com", ["nlp"])
    readers.add_active(services.engine, services.taxonomy, "all@example.com")
    backend = MemoryBackend()
    report = send(services, SAMPLE_DATE, backend)
    assert report.sent == 2
    by_to = {str(m["To"]): m for m in backend.outbox}
    assert section_ids(_html(by_to["nlp@example.com"])) == ["nlp"]
    assert len(section_ids(_html(by_to["all@example.com"]))) > 5
    assert "nlp@example.com" not in _html(by_to["all@example.com"])


def test_links_are_personal_and_signed(services: Services) -> None:
    load_sample(services)
    a = readers.add_active(services.engine, services.taxonomy, "a@example.com", ["nlp"])
    backend = MemoryBackend()
    send(services, SAMPLE_DATE, backend)
    msg = backend.outbox[0]
    unsubscribe = str(msg["List-Unsubscribe"]).strip("<>")
    token = unsubscribe.rsplit("/", 1)[1]
    assert services.signer.unsign(token, "unsubscribe") == a.id
    assert unsubscribe in _html(msg) and unsubscribe in _text(msg)
    assert "NLPH" not in _html(msg) and "NLPH" not in _text(msg)


def test_unsubscribed_reader_is_skipped(services: Services) -> None:
    load_sample(services)
    readers.add_active(services.engine, services.taxonomy, "gone@example.com")
    readers.unsubscribe_address(services.engine, "gone@example.com")
    backend = MemoryBackend()
    assert send(services, SAMPLE_DATE, backend).sent == 0
    assert backend.outbox == []


def test_digest_is_stored_and_reused(services: Services) -> None:
    load_sample(services)
    first = build_digest(services, SAMPLE_DATE)
    second = build_digest(services, SAMPLE_DATE)
    assert first is not None and first == second
    assert first.paper_count == 24  # the replacement entry is left out


def test_preview_with_categories_names_files_by_slug(services: Services, tmp_path: Path) -> None:
    load_sample(services)
    files = preview(services, SAMPLE_DATE, tmp_path / "p", ["nlp", "llm"], "en")
    assert [f.name for f in files] == [
        "issue-2024-11-22-nlp-llm.html",
        "issue-2024-11-22-nlp-llm.txt",
        "issue-2024-11-22-nlp-llm.png",
        "issue-2024-11-22-nlp-llm.eml",
    ]
    assert section_ids(files[0].read_text("utf-8")) == ["nlp", "llm"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["preview", "--date", "2024-13-01"], "invalid date"),
        (["preview", "--categories", "nlp,nope"], "unknown category 'nope'"),
        (["subscribers", "add", "not-an-address"], "invalid e-mail address"),
        (["subscribers", "add", "a@example.com", "--categories", "bogus"], "unknown category"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreachable_database_is_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["subscribers", "list"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the database" in err and "Traceback" not in err


def test_real_mail_refused_with_default_secret(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("NEWSLETTER_MAIL_BACKEND", "smtp")
    assert main(["send", "--date", "2024-11-22"]) == 2
    assert "NEWSLETTER_SECRET_KEY" in capsys.readouterr().err


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, newsletter, newsletter.cli, newsletter.pipeline;"
        "from newsletter.cli import build_parser; build_parser();"
        "print(sorted(m for m in ('litellm','matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

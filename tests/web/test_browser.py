"""A reader in a real browser against ``newsletter serve``, with mail in a file outbox.

Headless Debian Chromium driven by Playwright: subscribe, confirm from the mailed
link, open manage from an issue's link, untick a category, and the operator's
preview for that reader changes; type interests and upload a BibTeX export; a
one-click POST unsubscribes (erasing the interests) and the next send skips them.
Screenshots of every page go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from newsletter.app import Services
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.settings import load_settings
from subscribers import readers
from tests.conftest import DATA
from tests.fakes.browser import chromium
from tests.fakes.webserver import free_port, newsletter_env, run_cli, serve
from tests.web.conftest import html_of, link_path

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
SAMPLE_DATE = "2024-11-22"
NEXT_DATE = dt.date(2024, 11, 25)
READER = "browser.reader@example.com"


@pytest.fixture
def browser_page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 900, "height": 900}, locale="en-US")
        yield context.new_page()
        context.close()


def _mails(outbox: Path) -> dict[Path, EmailMessage]:
    return {
        path: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(outbox.glob("*.eml"))
    }


def _wait_for_mail(outbox: Path, seen: set[Path], subject: str) -> EmailMessage:
    """The first new mail with ``subject`` in it (the web app sends after answering)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for path, msg in _mails(outbox).items():
            if path not in seen and subject in str(msg["Subject"]):
                seen.add(path)
                return msg
        time.sleep(0.05)
    raise AssertionError(f"no mail {subject!r} in {outbox}")


def _sections(preview_dir: Path) -> list[str]:
    html = next(preview_dir.glob("*.html")).read_text("utf-8")
    return re.findall(r'<h2 id="([a-z-]+)"', html)


def _sections_of(msg: EmailMessage) -> list[str]:
    return re.findall(r'<h2 id="([a-z-]+)"', html_of(msg))


def _add_reader(database_url: str, address: str) -> None:
    svc = Services.build(load_settings(database_url=database_url, feeds=[]))
    readers.add_active(svc.engine, svc.taxonomy, address)
    svc.engine.dispose()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _add_next_day(database_url: str) -> None:
    """Papers for a second date, so a later send has a new issue that could reach the reader."""
    svc = Services.build(load_settings(database_url=database_url, feeds=[]))
    load_sample(svc)
    papers = papers_on(svc.engine, dt.date(2024, 11, 22))
    upsert_papers(
        svc.engine,
        [dataclasses.replace(p, arxiv_id=f"{p.arxiv_id}.b", announced=NEXT_DATE) for p in papers],
    )
    svc.engine.dispose()


def test_reader_journey_in_a_real_browser(browser_page: Page, tmp_path: Path) -> None:
    page = browser_page
    port = free_port()
    outbox = tmp_path / "outbox"
    database_url = f"sqlite:///{tmp_path / 'web.db'}"
    env = newsletter_env(
        {
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_MAIL_BACKEND": "file",
            "NEWSLETTER_OUTBOX_DIR": str(outbox),
            "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{port}",
            "NEWSLETTER_FEEDS": "",
        }
    )
    _add_next_day(database_url)
    seen: set[Path] = set()
    with serve(env, tmp_path, port) as base:
        # Subscribe: English page, three categories.
        page.goto(f"{base}/?lang=en")
        _shot(page, "01-subscribe.png")
        page.fill("#email", READER.upper())
        for box in page.query_selector_all("input[name=categories]"):
            if box.get_attribute("value") not in ("nlp", "computer-vision", "llm"):
                box.uncheck()
        page.select_option("#language", "en")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your inbox")
        _shot(page, "02-check-inbox.png")

        # Confirm from the mailed link: the GET shows a button, the POST confirms.
        mail = _wait_for_mail(outbox, seen, "Confirm your Daily AI Insights subscription")
        assert mail["To"] == READER
        page.goto(base + link_path(mail, "confirm"))
        page.wait_for_selector("text=Confirm your subscription")
        _shot(page, "03-confirm.png")
        page.click("button[type=submit]")
        page.wait_for_selector("text=You're subscribed")
        _shot(page, "04-confirmed.png")

        # The operator sends the day's issue; the reader opens manage from it.
        sent = run_cli(["send", "--date", SAMPLE_DATE], env, tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert "sent: 1" in sent.stdout
        issue = _wait_for_mail(outbox, seen, "Daily AI Insights 2024-11-22")
        manage = link_path(issue, "manage")
        assert f'href="{base}{manage}"' in html_of(issue)
        page.goto(base + manage)
        page.wait_for_selector("text=Your subscription")
        _shot(page, "05-manage.png")
        page.uncheck("input[name=categories][value=computer-vision]")
        page.click("button[value=save]")
        page.wait_for_selector("text=Your changes are saved.")
        _shot(page, "06-manage-saved.png")

        # Interests for the For-you block: a sentence, then a Zotero export of liked papers.
        words = "speech recognition & <diffusion> models"
        page.fill("#interests", words)
        page.click("section.interests button[value=save]")
        page.wait_for_selector("text=Your interests are saved.")
        page.set_input_files("#file", str(DATA / "interests" / "zotero.bib"))
        page.click("section.interests button:has-text('Upload papers')")
        page.wait_for_selector("text=3 papers you like are saved.")
        assert page.input_value("#interests") == words
        assert page.is_visible("text=Papers you like, kept: 3 (of at most 500).")
        assert page.is_visible("text=Today's picks for you")  # the sent issue, ranked for them
        _shot(page, "06b-manage-interests.png")

        # Computer vision has papers that day, so only the reader's choice removed it.
        after = run_cli(
            ["preview", "--date", SAMPLE_DATE, "--subscriber", READER, "--out", "p"], env, tmp_path
        )
        assert after.returncode == 0, after.stderr
        assert _sections(tmp_path / "p") == ["nlp", "llm"]
        assert "computer-vision" in _sections_of(issue)

        # The one-button page, then the provider's one-click POST (no cookie, no CSRF).
        unsubscribe_url = str(issue["List-Unsubscribe"]).strip().strip("<>")
        assert issue["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe_url == base + link_path(issue, "unsubscribe")
        page.goto(unsubscribe_url)
        page.wait_for_selector("text=Stop sending Daily AI Insights")
        _shot(page, "07-unsubscribe.png")
        one_click = httpx.post(
            unsubscribe_url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert one_click.status_code == 200
        page.reload()
        page.wait_for_selector("text=You're unsubscribed")
        _shot(page, "08-unsubscribed.png")
        shown = run_cli(["subscribers", "interests", READER, "--json"], env, tmp_path)
        assert json.loads(shown.stdout) == {"email": READER}  # erased with the subscription

        # The next issue goes to another reader, not to them.
        _add_reader(database_url, "other@example.com")
        next_send = run_cli(["send", "--date", NEXT_DATE.isoformat()], env, tmp_path)
        assert next_send.returncode == 0, next_send.stderr
        assert "sent: 1" in next_send.stdout
        recipients = [str(m["To"]) for p, m in _mails(outbox).items() if p not in seen]
        assert recipients == ["other@example.com"]

        # The same pages on a phone, in Korean.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/?lang=ko")
        _shot(page, "09-subscribe-phone-ko.png")

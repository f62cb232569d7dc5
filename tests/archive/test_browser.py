"""The archive in a real browser at phone width: no horizontal scroll, anchors land, no JS needed.

Headless Debian Chromium (Playwright) against ``newsletter serve`` in a subprocess
on a free loopback port. Screenshots go to ``test-artifacts/archive/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.settings import load_settings
from tests.fakes.browser import chromium
from tests.fakes.webserver import free_port, newsletter_env, serve

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "archive"
PHONE: ViewportSize = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample day as a public issue, with a paper built to overflow a narrow screen."""
    tmp_path = tmp_path_factory.mktemp("archive-site")
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    svc = Services.build(load_settings(database_url=url, feeds=[], mail_backend="memory"))
    date = load_sample(svc)
    wide = dataclasses.replace(
        papers_on(svc.engine, date)[0],
        arxiv_id="2411.77777",
        title="Supercalifragilistic" * 12 + " language models",
        authors=("Wolfeschlegelsteinhausenbergerdorff" * 3,),
        abs_url="https://arxiv.org/abs/2411.77777?" + "x" * 150,
    )
    upsert_papers(svc.engine, [wide])
    assert build_digest(svc, date) is not None
    svc.engine.dispose()
    env = newsletter_env({"NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_MAIL_BACKEND": "memory"})
    with serve(env, tmp_path, free_port()) as base:
        yield base


def _no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "() => [window.innerWidth, document.documentElement.scrollWidth, document.body.scrollWidth]"
    )
    assert widths[0] == PHONE["width"], f"the page is not laid out at phone width: {widths}"
    assert max(widths[1:]) <= widths[0], f"horizontal scroll at {page.url}: {widths}"


def test_issue_page_fits_a_phone(browser: Browser, site: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{site}/issues/2024-11-22")
    assert page.locator("h1").first.inner_text().startswith("2024-11-22")
    chart = page.locator('img[src="/issues/2024-11-22/chart.png"]')
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    assert chart.evaluate("img => img.getBoundingClientRect().right") <= PHONE["width"]
    _no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "issue-375.png"), full_page=True)
    for path in ("/issues/2024-11-22?lang=en", "/issues", "/search?q=language+models"):
        page.goto(site + path)
        _no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "search-375.png"), full_page=True)
    context.close()


def test_contents_links_reach_sections_without_javascript(browser: Browser, site: str) -> None:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site}/issues/2024-11-22?lang=en")
    page.get_by_role("link", name="Natural Language Processing").first.click()
    assert page.url.endswith("/issues/2024-11-22?lang=en#nlp")
    section = page.locator("section#nlp")
    assert section.is_visible()
    box = section.bounding_box()
    assert box is not None and 0 <= box["y"] < 5  # scrolled to the section's top
    page.goto(f"{site}/issues")
    page.get_by_role("searchbox").fill("memory")
    page.get_by_role("button", name="검색").click()
    # The click returns once the navigation commits, before the results page has loaded.
    page.wait_for_url(f"{site}/search?q=memory", wait_until="load")
    page.get_by_text("Ultra-Sparse Memory Network").wait_for(state="visible", timeout=10_000)
    context.close()

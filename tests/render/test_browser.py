"""The demo issue in real headless Chromium, as a phone (375 px) and a desktop (1200 px) show it.

Screenshots go to test-artifacts/ at the repository root (gitignored; CI keeps them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, FloatRect, Page

from newsletter.preview import DemoResult, demo
from newsletter.render import render_issue
from newsletter.settings import load_settings
from tests.fakes.browser import chromium
from tests.render.factory import LINKS, taxonomy, view
from tests.render.test_hostile import HOSTILE, _digest

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = {"mobile": 375, "desktop": 1200}
#: The top of the issue (header, chart, contents, first category) for docs/ and the README.
TOP_HEIGHT = {"mobile": 1500, "desktop": 1500}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo_issue(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo")
    settings = load_settings(database_url=f"sqlite:///{out / 'unused.db'}", feeds=[])
    return demo(out, settings)


def _open(
    browser: Browser, html: Path, width: int, scheme: Literal["light", "dark"] = "light"
) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    return page


def _no_horizontal_scroll(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate("document.body.scrollWidth") <= width


@pytest.mark.parametrize("device", sorted(WIDTHS))
def test_demo_issue_fits_and_shows_every_section(
    browser: Browser, demo_issue: DemoResult, device: str
) -> None:
    width = WIDTHS[device]
    html = demo_issue.files[0]
    page = _open(browser, html, width)
    try:
        _no_horizontal_scroll(page, width)
        headings = page.locator("h2[id]")
        assert headings.count() == 12  # every category of the sample day
        for i in range(headings.count()):
            heading = headings.nth(i)
            heading.scroll_into_view_if_needed()
            assert heading.is_visible()
            box = heading.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        chart = page.locator("img").first
        assert chart.evaluate("img => img.complete && img.naturalWidth") > 0
        chart_box = chart.bounding_box()
        assert chart_box is not None and chart_box["width"] <= width
        for footer_link in ("a[href*='/manage/']", "a[href*='/unsubscribe/']"):
            assert page.locator(footer_link).first.is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        top: FloatRect = {"x": 0, "y": 0, "width": width, "height": TOP_HEIGHT[device]}
        page.screenshot(path=str(ARTIFACTS / f"email-{device}.png"), clip=top, full_page=True)
        page.screenshot(path=str(ARTIFACTS / f"email-{device}-full.png"), full_page=True)
    finally:
        page.close()


def test_dark_mode_turns_the_page_and_cards_dark(browser: Browser, demo_issue: DemoResult) -> None:
    page = _open(browser, demo_issue.files[0], 375, scheme="dark")
    try:
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        text = page.evaluate("getComputedStyle(document.querySelector('h2[id]')).color")
        assert background == "rgb(15, 17, 21)"
        assert text == "rgb(240, 243, 246)"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "email-mobile-dark.png"))
    finally:
        page.close()


def test_hostile_issue_keeps_the_phone_layout(browser: Browser, tmp_path: Path) -> None:
    text = " ".join([HOSTILE["long-word"], HOSTILE["rtl"], HOSTILE["llm-html"], HOSTILE["emoji"]])
    rendered = render_issue(_digest(text), view("nlp"), taxonomy(), LINKS)
    html = tmp_path / "hostile.html"
    html.write_text(rendered.html, "utf-8")
    page = _open(browser, html, 375)
    try:
        _no_horizontal_scroll(page, 375)
        assert page.locator("h2#nlp").is_visible()
        assert page.locator("iframe, script").count() == 0
    finally:
        page.close()

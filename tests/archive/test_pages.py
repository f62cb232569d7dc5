"""The archive pages on SQLite and PostgreSQL: list, issue, chart, feed, and their bad input."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.digest import build_digest, render_view
from newsletter.issues import get_issue, update_issue
from newsletter.models import Paper, ReaderView
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from subscribers import readers

from .conftest import fake_issue, issue_content


class _Ids(HTMLParser):
    """Every id attribute and every link of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"] or "")
        if tag == "a" and values.get("href") is not None:
            self.links.append(values["href"] or "")


def parse(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


# -- the list -----------------------------------------------------------------------------


def test_list_shows_public_issues_newest_first_with_counts_and_top_categories(
    services: Services, client: TestClient
) -> None:
    fake_issue(services, dt.date(2024, 11, 20), {"nlp": 7, "llm": 9, "physics": 1})
    fake_issue(services, dt.date(2024, 11, 21), {"computer-vision": 4})
    fake_issue(services, dt.date(2024, 11, 19), {"nlp": 3}, status="empty")
    fake_issue(services, dt.date(2024, 11, 18), {}, status="collected")
    fake_issue(services, dt.date(2024, 11, 17), {"nlp": 2}, status="classified")

    page = client.get("/issues")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.index("2024-11-21") < html.index("2024-11-20")
    for hidden in ("2024-11-19", "2024-11-18", "2024-11-17"):
        assert hidden not in html
        assert client.get(f"/issues/{hidden}").status_code == 404
    assert "17편" in html  # ko is the default language
    # Top categories, biggest first, linking to their section of the issue.
    first, second = html.index("대규모 언어 모델"), html.index("자연어 처리")
    assert first < second
    assert "/issues/2024-11-20#llm" in parse(html).links


def test_list_in_english_keeps_the_language_in_links(
    services: Services, client: TestClient
) -> None:
    fake_issue(services, dt.date(2024, 11, 20), {"nlp": 2})
    html = client.get("/issues?lang=en").text
    assert '<html lang="en"' in html or 'lang="en"' in html
    assert "Natural Language Processing" in html
    assert "/issues/2024-11-20?lang=en" in parse(html).links


def test_list_is_paginated(services: Services, client: TestClient) -> None:
    start = dt.date(2024, 1, 1)
    for i in range(25):
        fake_issue(services, start + dt.timedelta(days=i), {"nlp": i + 1})
    first = client.get("/issues").text
    assert "2024-01-25" in first and "2024-01-06" in first and "2024-01-05" not in first
    assert "/issues?page=2" in parse(first).links
    second = client.get("/issues?page=2").text
    assert "2024-01-05" in second and "2024-01-01" in second and "2024-01-06" not in second
    assert "/issues?page=1" in parse(second).links


def test_empty_archive(client: TestClient) -> None:
    page = client.get("/issues")
    assert page.status_code == 200
    assert "아직 발행된 호가 없습니다." in page.text


def test_list_bad_page_number(services: Services, client: TestClient) -> None:
    fake_issue(services, dt.date(2024, 11, 20), {"nlp": 2})
    for value in ("0", "-1", "abc", "1.5", "9999999", "1e3", ""):
        page = client.get("/issues", params={"page": value})
        assert page.status_code in (400, 404), value
        assert page.headers["content-type"].startswith("text/html")
        assert f"“{value}”쪽은 없습니다" in page.text
        assert "/issues" in parse(page.text).links


def test_list_page_past_the_end_is_not_found(services: Services, client: TestClient) -> None:
    fake_issue(services, dt.date(2024, 11, 20), {"nlp": 2})
    page = client.get("/issues?page=2&lang=en")
    assert page.status_code == 404
    assert "“2” is not a page of this list" in page.text


# -- one issue ----------------------------------------------------------------------------


def test_issue_page_has_every_category_report_and_source(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    digest = build_digest(services, sample_issue)
    assert digest is not None
    page = client.get(f"/issues/{sample_issue}")
    assert page.status_code == 200
    assert "max-age" in page.headers["cache-control"]
    html = page.text
    found = parse(html)
    for section in digest.sections:
        assert section.slug in found.ids
        assert services.taxonomy.get(section.slug).name("ko") in html
        for paper in section.papers:
            assert paper.abs_url in found.links
    for heading in ("주요 주제 및 테마", "주요 발견", "종합 결론 및 전망", "출처"):
        assert heading in html
    assert f'src="/issues/{sample_issue}/chart.png"' in html
    assert '<meta name="viewport"' in html


def test_issue_that_carries_missed_days_says_so(services: Services, client: TestClient) -> None:
    """After an outage the issue holds the papers of the days that had no issue; the page
    names the first of those days, and its papers are on the page."""
    from dataclasses import replace

    date = load_sample(services)
    [first, *_] = papers_on(services.engine, date)
    missed_day = date - dt.timedelta(days=2)
    carried = replace(first, arxiv_id="9901.00001", abs_url="https://arxiv.org/abs/9901.00001")
    upsert_papers(services.engine, [replace(carried, announced=missed_day)])
    fake_issue(services, date - dt.timedelta(days=4), {"nlp": 1})  # the last issue before
    digest = build_digest(services, date)
    assert digest is not None and digest.covers_from == missed_day
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.id is not None
    update_issue(services.engine, issue.id, status="sent")
    page = client.get(f"/issues/{date}?lang=en")
    assert page.status_code == 200
    assert f"papers announced from {missed_day}" in page.text
    assert carried.abs_url in parse(page.text).links
    assert "papers announced from" not in client.get(f"/issues/{date - dt.timedelta(days=4)}").text


def test_email_links_land_on_sections(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    """Every "{base_url}/issues/{date}#slug" in the e-mail is an anchor of the web page."""
    digest = build_digest(services, sample_issue)
    assert digest is not None
    rendered = render_view(services, digest, ReaderView(digest.slugs, "ko"))
    archive = services.archive_url(sample_issue)
    assert archive == f"{services.settings.base_url}/issues/{sample_issue}"
    anchors = set(re.findall(re.escape(archive) + r"#([\w-]+)", rendered.html))
    ids = set(parse(client.get(f"/issues/{sample_issue}").text).ids)
    assert anchors <= ids
    assert set(digest.slugs) <= ids


def test_issue_in_another_language_is_built_once(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    reports = issue_content(services, sample_issue)["reports"]
    assert isinstance(reports, dict) and set(reports) == {"ko"}
    page = client.get(f"/issues/{sample_issue}?lang=en")
    assert page.status_code == 200
    assert 'lang="en"' in page.text and "Main topics and themes" in page.text
    assert f'src="/issues/{sample_issue}/chart.png?lang=en"' in page.text
    after = issue_content(services, sample_issue)
    reports = after["reports"]
    assert isinstance(reports, dict) and set(reports) == {"ko", "en"}
    client.get(f"/issues/{sample_issue}?lang=en")
    assert issue_content(services, sample_issue) == after  # cached, not rebuilt
    # The Korean page links to the English edition and back.
    links = parse(client.get(f"/issues/{sample_issue}").text).links
    assert f"/issues/{sample_issue}?lang=en" in links


def test_unknown_language_is_refused_and_costs_nothing(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    before = issue_content(services, sample_issue)
    for lang in ("fr", "xx", "<script>", "en" * 50):
        for path in (f"/issues/{sample_issue}", f"/issues/{sample_issue}/chart.png", "/issues"):
            page = client.get(path, params={"lang": lang})
            assert page.status_code == 400, (path, lang)
            assert "다음 중에서 고르세요: ko, en" in page.text
            assert "<script>" not in page.text
    assert issue_content(services, sample_issue) == before


def test_unknown_date_is_a_404_page(services: Services, client: TestClient) -> None:
    fake_issue(services, dt.date(2024, 11, 20), {"nlp": 2}, status="empty")
    for date in ("2030-01-01", "2024-11-20"):  # never made / an empty day
        page = client.get(f"/issues/{date}?lang=en")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert f"There is no issue for {date}." in page.text
        assert client.get(f"/issues/{date}/chart.png").status_code == 404


def test_day_with_papers_but_no_issue_yet_is_not_public(
    services: Services, client: TestClient
) -> None:
    """Collected papers are not published, and a visit does not start building the issue."""
    date = load_sample(services)
    assert client.get(f"/issues/{date}").status_code == 404
    assert client.get(f"/issues/{date}/chart.png?lang=en").status_code == 404
    assert get_issue(services.engine, date) is None


MALFORMED_DATES = (
    "yesterday",
    "2024-13-45",
    "2024-02-30",
    "20241122",
    "2024-W47-5",
    "2024-11-22x",
    " 2024-11-22",
    "0000-00-00",
    "%3Cscript%3E",
    "9" * 300,
)


def test_malformed_date_is_a_404_page(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    before = issue_content(services, sample_issue)
    for value in MALFORMED_DATES:
        page = client.get(f"/issues/{value}")
        assert page.status_code == 404, value
        assert page.headers["content-type"].startswith("text/html")
        assert "날짜가 아닙니다" in page.text, value
        assert "<script>" not in page.text
        assert client.get(f"/issues/{value}/chart.png").status_code == 404
    assert issue_content(services, sample_issue) == before


def test_paper_text_is_escaped_and_only_web_links_are_kept(
    services: Services, client: TestClient
) -> None:
    date = load_sample(services)
    evil = Paper(
        arxiv_id="2411.00001",
        title='<script>alert("title")</script> Language models',
        abstract="<img src=x onerror=alert(1)> language model text",
        authors=("<b>Mallory</b>",),
        announced=date,
        abs_url="javascript:alert(1)",
        pdf_url="data:text/html,<script>alert(2)</script>",
    )
    upsert_papers(services.engine, [evil])
    assert build_digest(services, date) is not None
    html = client.get(f"/issues/{date}").text
    assert "<script>alert" not in html and "<b>Mallory" not in html
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; Language models" in html
    assert not any(link.startswith(("javascript:", "data:")) for link in parse(html).links)
    results = client.get("/search", params={"q": "Mallory"}).text
    assert "&lt;b&gt;Mallory" in results and "<b>Mallory" not in results


# -- the chart ----------------------------------------------------------------------------


def test_chart_png_with_cache_headers(client: TestClient, sample_issue: dt.date) -> None:
    chart = client.get(f"/issues/{sample_issue}/chart.png")
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "max-age=86400" in chart.headers["cache-control"]
    etag = chart.headers["etag"]
    again = client.get(f"/issues/{sample_issue}/chart.png", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    english = client.get(f"/issues/{sample_issue}/chart.png?lang=en")
    assert english.status_code == 200 and english.headers["etag"] != etag


# -- no reader data -----------------------------------------------------------------------


def test_no_subscriber_data_on_any_public_page(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    readers.add_active(
        services.engine, services.taxonomy, "secret.reader@example.com", ["nlp"], "en"
    )
    for url in (
        "/issues",
        f"/issues/{sample_issue}",
        f"/issues/{sample_issue}?lang=en",
        "/feed.xml",
        "/search?q=secret+reader+example",
        "/search?q=language",
    ):
        body = client.get(url).text
        assert "secret.reader" not in body and "example.com" not in body, url

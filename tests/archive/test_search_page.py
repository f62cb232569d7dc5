"""GET /search: results from public issues, hostile and long queries answered, never an error."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.models import Paper
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.search import MAX_QUERY_CHARS, parse_query

from .conftest import SAMPLE_DATE
from .test_search import HOSTILE


def test_empty_search_shows_the_form(client: TestClient) -> None:
    page = client.get("/search")
    assert page.status_code == 200
    assert 'name="q"' in page.text and "검색 결과" not in page.text


def test_search_finds_papers_and_links_their_issue(
    client: TestClient, sample_issue: dt.date
) -> None:
    page = client.get("/search", params={"q": "ultra sparse memory", "lang": "en"})
    assert page.status_code == 200
    assert "Ultra-Sparse Memory Network" in page.text
    assert f'href="/issues/{sample_issue}?lang=en"' in page.text
    assert "Papers matching “ultra sparse memory”" in page.text


def test_search_pages(services: Services, client: TestClient) -> None:
    date = load_sample(services)
    zebras = [
        Paper(f"2411.9{i:04d}", f"Zebra stripes {i}", "About zebras.", ("A. Author",), date)
        for i in range(25)
    ]
    upsert_papers(services.engine, zebras)
    assert build_digest(services, date) is not None
    first = client.get("/search", params={"q": "zebra"})
    assert first.text.count("Zebra stripes") == 20
    assert "/search?q=zebra&amp;page=2" in first.text
    second = client.get("/search", params={"q": "zebra", "page": "2"})
    assert second.status_code == 200
    assert second.text.count("Zebra stripes") == 5
    assert '<ol class="sources" start="21">' in second.text
    assert "/search?q=zebra&amp;page=1" in second.text
    assert "page=3" not in second.text


def test_hostile_queries_answer_a_page(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    before = len(papers_on(services.engine, SAMPLE_DATE))
    for raw in HOSTILE:
        page = client.get(f"/search?q={quote(raw)}")
        assert page.status_code == 200, raw
        assert "<script" not in page.text
        if parse_query(raw).empty:
            assert "검색할 단어를 하나 이상 입력하세요." in page.text, raw
    assert len(papers_on(services.engine, SAMPLE_DATE)) == before


def test_very_long_query_is_cut(client: TestClient, sample_issue: dt.date) -> None:
    page = client.get("/search", params={"q": "memory " * 2000, "lang": "en"})
    assert page.status_code == 200
    assert f"only its first {MAX_QUERY_CHARS} characters" in page.text
    assert "Ultra-Sparse Memory Network" in page.text  # "memory" x 12 still finds it


def test_search_query_is_escaped(client: TestClient, sample_issue: dt.date) -> None:
    page = client.get("/search", params={"q": '"><script>alert(1)</script>'})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_search_bad_page(client: TestClient, sample_issue: dt.date) -> None:
    for value in ("0", "x", "-3", "", "1;DROP"):
        page = client.get("/search", params={"q": "learning", "page": value, "lang": "en"})
        assert page.status_code == 400, value
        assert f"“{value}” is not a page of this list" in page.text

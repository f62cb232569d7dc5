"""The Atom feed: parses cleanly with feedparser and lists the latest public issues."""

from __future__ import annotations

import datetime as dt

import feedparser
from fastapi.testclient import TestClient

from newsletter.app import Services

from .conftest import fake_issue

BASE = "http://localhost:8000"


def _parse(client: TestClient, url: str = "/feed.xml") -> feedparser.FeedParserDict:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert "max-age" in response.headers["cache-control"]
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_feed_lists_latest_issues_with_summaries(
    services: Services, client: TestClient, sample_issue: dt.date
) -> None:
    fake_issue(services, dt.date(2024, 11, 21), {"nlp": 3, "llm": 5})
    fake_issue(services, dt.date(2024, 11, 25), {"physics": 1}, status="empty")
    parsed = _parse(client)
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Daily AI Insights : 논문"
    assert parsed.feed.link == f"{BASE}/issues"
    links = [e.link for e in parsed.entries]
    assert links == [f"{BASE}/issues/2024-11-22", f"{BASE}/issues/2024-11-21"]
    newest, older = parsed.entries
    assert "2024-11-22" in newest.title and newest.id == links[0]
    assert newest.updated_parsed is not None
    # The summary: categories with counts, links to their sections, and conclusions.
    assert "대규모 언어 모델" in older.summary and "(5)" in older.summary
    assert f"{BASE}/issues/2024-11-21#llm" in older.summary
    assert "Conclusion about llm on 2024-11-21." in older.summary
    assert "<script" not in newest.summary
    assert "#nlp" in newest.summary


def test_feed_keeps_only_the_latest_twenty(services: Services, client: TestClient) -> None:
    start = dt.date(2024, 1, 1)
    for i in range(23):
        fake_issue(services, start + dt.timedelta(days=i), {"nlp": 1})
    parsed = _parse(client)
    assert len(parsed.entries) == 20
    assert parsed.entries[0].link.endswith("2024-01-23")
    assert parsed.entries[-1].link.endswith("2024-01-04")


def test_feed_in_english(services: Services, client: TestClient) -> None:
    fake_issue(services, dt.date(2024, 11, 21), {"nlp": 3})
    parsed = _parse(client, "/feed.xml?lang=en")
    assert parsed.feed.language == "en"
    assert parsed.entries[0].link == f"{BASE}/issues/2024-11-21?lang=en"
    assert "Natural Language Processing" in parsed.entries[0].summary
    # No English report was made: the feed shows the one it has instead of building one.
    assert "Conclusion about nlp" in parsed.entries[0].summary


def test_empty_feed_is_valid(client: TestClient) -> None:
    parsed = _parse(client)
    assert parsed.entries == []


def test_feed_unknown_language(client: TestClient) -> None:
    for lang in ("fr", "<x>"):
        response = client.get("/feed.xml", params={"lang": lang})
        assert response.status_code == 400
        assert "ko, en" in response.text and "<x>" not in response.text

"""Other source kinds: any RSS/Atom feed, Hugging Face daily papers, and what is no feed."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.errors import SourceError
from newsletter.sources.collect import expand_url, parse_feed
from newsletter.sources.rss import paper_key
from tests.fakes.feeds import DATA

HF_URL = "https://huggingface.co/api/daily_papers?date=2024-11-22"


def test_blog_rss_entries_become_papers_with_stable_keys() -> None:
    feed = parse_feed((DATA / "other" / "blog-rss.xml").read_bytes(), "https://lab.example.org/rss")
    assert feed.kind == "rss"
    first, second = feed.papers
    assert first.arxiv_id == paper_key("https://lab.example.org/blog/long-context-eval")
    assert first.arxiv_id.startswith("web:")
    assert first.title == "How we evaluate long-context models"
    assert first.authors == ("Maya Cohen",)
    assert first.announced == dt.date(2024, 11, 22)
    assert first.abs_url == "https://lab.example.org/blog/long-context-eval"
    # HTML in the description becomes plain text.
    assert first.abstract == (
        "Needle-in-a-haystack tests say little about reasoning over long inputs. "
        "We describe the suite we use instead & what it found."
    )
    assert second.announced == dt.date(2024, 11, 21)
    assert feed.failed == ("entry 3 (https://lab.example.org/blog/untitled-draft): no title",)


def test_atom_feed_with_html_titles() -> None:
    feed = parse_feed(
        (DATA / "other" / "conference-atom.xml").read_bytes(), "https://workshop.example.org/atom"
    )
    assert feed.kind == "rss"
    assert [p.title for p in feed.papers] == [
        "Quantised KV caches at 2 bits",
        "Pruning attention heads after fine-tuning",
    ]
    assert feed.papers[0].authors == ("Rui Santos", "Elif Yilmaz")
    assert feed.papers[1].abstract == "Half of the heads can go after task fine-tuning."


def test_hugging_face_daily_papers_are_arxiv_papers_of_the_list_date() -> None:
    feed = parse_feed((DATA / "hf" / "daily_papers-2024-11-22.json").read_bytes(), HF_URL)
    assert feed.kind == "hf-daily"
    assert feed.announced == dt.date(2024, 11, 22)
    assert [p.arxiv_id for p in feed.papers] == ["2411.14405", "2411.14402", "2411.10440"]
    aim = feed.papers[1]
    assert aim.title == "Multimodal Autoregressive Pre-training of Large Vision Encoders"
    assert aim.authors == ("Enrico Fini", "Mustafa Shukor", "Xiujun Li")
    assert aim.abs_url == "https://arxiv.org/abs/2411.14402"
    assert aim.announced == dt.date(2024, 11, 22)  # the list's date, not arXiv's 2024-11-21
    assert feed.failed == ("entry 4: no id",)
    assert feed.seen == 4


def test_hugging_face_list_without_a_date_in_the_url_uses_the_run_date() -> None:
    content = (DATA / "hf" / "daily_papers-2024-11-22.json").read_bytes()
    feed = parse_feed(
        content, "https://huggingface.co/api/daily_papers", issue_date=dt.date(2024, 11, 25)
    )
    assert feed.announced == dt.date(2024, 11, 25)
    assert {p.announced for p in feed.papers} == {dt.date(2024, 11, 25)}


def test_empty_hugging_face_list_is_not_an_error() -> None:
    feed = parse_feed(b"[]", HF_URL)
    assert (feed.kind, feed.papers, feed.failed) == ("hf-daily", (), ())


def test_date_placeholder_is_replaced() -> None:
    url = "https://huggingface.co/api/daily_papers?date={date}"
    assert expand_url(url, dt.date(2024, 11, 22)) == HF_URL


@pytest.mark.parametrize(
    ("name", "content_type", "reason"),
    [
        ("other/html-instead.html", "text/html; charset=utf-8", "the server sent text/html"),
        ("other/html-instead.html", "", "the server sent an HTML page, not an RSS or Atom feed"),
        ("other/bozo-no-entries.xml", "application/rss+xml", "malformed XML with no entries"),
    ],
)
def test_documents_that_are_not_feeds(name: str, content_type: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason) as info:
        parse_feed((DATA / name).read_bytes(), "http://127.0.0.1:1/feed", content_type=content_type)
    assert info.value.url == "http://127.0.0.1:1/feed"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty response body"),
        (b'{"error": "Invalid date"}', "the API answered with an error: Invalid date"),
        (b'[{"id": 1}]', "JSON that is not a Hugging Face daily papers list"),
        (b"just some text", "not an RSS or Atom feed"),
    ],
)
def test_unreadable_bodies_name_the_reason(content: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        parse_feed(content, "http://127.0.0.1:1/feed")

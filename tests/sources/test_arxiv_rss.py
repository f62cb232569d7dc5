"""Parsing recorded arXiv RSS feeds: announce types, ids and versions, fields, bad entries."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.sources.arxiv_rss import split_id
from newsletter.sources.authors import split_authors
from newsletter.sources.base import MAX_TITLE, ParsedFeed
from newsletter.sources.collect import parse_feed
from tests.fakes.feeds import DATA

FRIDAY = dt.date(2024, 11, 22)


def recorded(
    name: str, url: str = "https://rss.arxiv.org/rss/cs.AI", include_replacements: bool = False
) -> ParsedFeed:
    return parse_feed((DATA / "arxiv" / name).read_bytes(), url, include_replacements)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("oai:arXiv.org:2411.13676v1", ("2411.13676", 1)),
        ("oai:arXiv.org:2411.13676", ("2411.13676", None)),
        ("oai:arXiv.org:2409.12186v12", ("2409.12186", 12)),
        ("http://arxiv.org/abs/2411.13676v2", ("2411.13676", 2)),
        ("https://arxiv.org/abs/2411.01234", ("2411.01234", None)),
        ("oai:arXiv.org:hep-th/9901001v3", ("hep-th/9901001", 3)),
        ("oai:arXiv.org:math.GT/0309136", ("math.GT/0309136", None)),
        ("arXiv:0704.0001v1", ("0704.0001", 1)),
    ],
)
def test_ids_lose_their_version(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "oai:arXiv.org:", "https://example.org/post/1", "2411.1"])
def test_non_arxiv_ids_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not an arXiv id"):
        split_id(raw)


def test_new_and_cross_are_kept_replacements_are_not() -> None:
    feed = recorded("cs.AI-2024-11-22.xml")
    assert feed.kind == "arxiv"
    assert feed.announced == FRIDAY
    by_id = {p.arxiv_id: p for p in feed.papers}
    assert set(by_id) == {"2411.14405", "2411.14251", "2411.14199", "2411.13676", "2411.14162"}
    assert {p.announce_type for p in feed.papers} == {"new", "cross"}
    assert feed.skipped_replacements == 2
    assert (feed.seen, feed.failed, feed.problems) == (7, (), ())


def test_every_field_is_extracted() -> None:
    hymba = next(p for p in recorded("cs.AI-2024-11-22.xml").papers if p.arxiv_id == "2411.13676")
    assert hymba.title == "Hymba: A Hybrid-head Architecture for Small Language Models"
    assert hymba.version == 1
    assert hymba.announce_type == "cross"
    assert hymba.primary_class == "cs.CL"
    assert hymba.classes == ("cs.CL", "cs.AI", "cs.LG")
    assert hymba.authors[:3] == ("Xin Dong", "Yonggan Fu", "Shizhe Diao")
    assert len(hymba.authors) == 13
    assert hymba.abstract.startswith("We propose Hymba, a family of small language models")
    assert "Announce Type" not in hymba.abstract and "arXiv:" not in hymba.abstract
    assert hymba.abs_url == "https://arxiv.org/abs/2411.13676"
    assert hymba.pdf_url == "https://arxiv.org/pdf/2411.13676"
    assert hymba.announced == FRIDAY
    assert hymba.source == "https://rss.arxiv.org/rss/cs.AI"


def test_version_comes_from_the_abstract_line_when_the_guid_has_none() -> None:
    feed = recorded("cs.AI-2024-11-22.xml", include_replacements=True)
    by_id = {p.arxiv_id: p for p in feed.papers}
    assert by_id["2411.14199"].version == 1  # guid without version, a new paper
    assert by_id["2409.12186"].version == 3  # guid without version, "arXiv:2409.12186v3"
    assert by_id["2410.21276"].version == 2  # guid with version


def test_replacements_are_kept_and_marked_when_asked() -> None:
    feed = recorded("cs.AI-2024-11-22.xml", include_replacements=True)
    kinds = {p.arxiv_id: p.announce_type for p in feed.papers}
    assert kinds["2410.21276"] == "replace"
    assert kinds["2409.12186"] == "replace-cross"
    assert feed.skipped_replacements == 0 and len(feed.papers) == 7


def test_recognised_by_content_not_host() -> None:
    local = recorded("cs.AI-2024-11-22.xml", url="http://127.0.0.1:9/whatever.xml")
    assert local.kind == "arxiv" and len(local.papers) == 5
    blog = parse_feed((DATA / "other" / "blog-rss.xml").read_bytes(), "https://arxiv.org/blog")
    assert blog.kind == "rss"


def test_authors_are_a_list() -> None:
    assert split_authors("Lena Fischer and Omar Haddad") == ("Lena Fischer", "Omar Haddad")
    assert split_authors("A. Bee, C. Dee, and E. Eff") == ("A. Bee", "C. Dee", "E. Eff")
    assert split_authors("Alexander Anderson") == ("Alexander Anderson",)
    assert split_authors("") == ()


def test_weekend_feed_is_empty_but_states_its_date() -> None:
    feed = recorded("cs.AI-2024-11-23-weekend.xml")
    assert (feed.kind, feed.announced, feed.papers, feed.seen) == (
        "arxiv",
        dt.date(2024, 11, 23),
        (),
        0,
    )
    assert not feed.failed and not feed.problems


def test_bad_entries_are_reported_and_the_complete_ones_kept() -> None:
    feed = recorded("cs.AI-bad-entries.xml")
    assert feed.failed == (
        "entry 2 ('A Paper Whose Identifier Was Lost'): no id",
        "entry 3 (2411.16003): no title",
    )
    titles = {p.arxiv_id: p.title for p in feed.papers}
    assert set(titles) == {"2411.16001", "2411.16004", "2411.16005", "2411.16006", "2411.16007"}
    # Markup is kept as text (the renderer escapes it), and the report says so.
    assert "<script>alert('x')</script>" in titles["2411.16004"]
    assert "entry 4 (2411.16004): title contains markup; kept as plain text" in feed.notes
    # CR/LF cannot split a line anywhere downstream.
    assert titles["2411.16005"] == "Header Injection Bcc: victim@example.com Through Titles"
    assert "entry 5 (2411.16005): line breaks in the title folded into one line" in feed.notes
    assert not any(c in t for t in titles.values() for c in "\r\n\t")
    # A 10,000-character title is cut, and the cut is reported.
    assert len(titles["2411.16006"]) == MAX_TITLE and titles["2411.16006"].endswith("…")
    assert "entry 6 (2411.16006): title of 10000 characters cut to 500" in feed.notes
    assert feed.seen == len(feed.papers) + len(feed.failed)


def test_truncated_feed_keeps_only_the_whole_entries() -> None:
    feed = recorded("cs.CL-truncated.xml")
    assert [p.arxiv_id for p in feed.papers] == ["2411.17001", "2411.17002"]
    assert feed.failed == ("entry 3: cut off (the feed is truncated)",)
    assert len(feed.problems) == 1 and feed.problems[0].startswith("malformed XML (")
    assert "read the 2 complete entries" in feed.problems[0]


def test_the_same_paper_twice_in_one_feed_is_one_paper_with_all_classes() -> None:
    text = (DATA / "arxiv" / "cs.LG-2024-11-22.xml").read_text("utf-8")
    start = text.index("<item>")
    first = text[start : text.index("</item>", start) + len("</item>")]
    twin = (
        first.replace("<category>cs.AI</category>", "<category>cs.NE</category>")
        .replace("Announce Type: new", "Announce Type: cross")
        .replace("<arxiv:announce_type>new<", "<arxiv:announce_type>cross<")
    )
    doubled = text.replace(first, twin + "\n" + first, 1)
    feed = parse_feed(doubled.encode(), "https://rss.arxiv.org/rss/cs.LG")
    paper = next(p for p in feed.papers if p.arxiv_id == "2411.14162")
    assert feed.merged == 1
    assert paper.announce_type == "new"  # the new announcement leads the cross-list
    assert paper.primary_class == "cs.LG"
    assert set(paper.classes) == {"cs.LG", "cs.AI", "cs.NE"}

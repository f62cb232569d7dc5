"""Feeds in each real format: current arXiv RSS with affiliations, the old RSS 1.0/RDF,
the API's Atom, and the rule that an item without a usable id or date is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.errors import SourceError
from newsletter.papers import papers_on
from newsletter.sources.base import ParsedFeed
from newsletter.sources.collect import parse_feed
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import DATA, FeedServer
from tests.sources.conftest import configured

RDF = "arxiv/hep-ex-rdf-2021-01-05.xml"
API = "arxiv/api-query-cs.LG.xml"
AFFILIATIONS = "arxiv/physics.chem-ph-affiliations-2025-03-14.xml"


def recorded(
    name: str, url: str = "https://rss.arxiv.org/rss/x", include_replacements: bool = False
) -> ParsedFeed:
    return parse_feed((DATA / name).read_bytes(), url, include_replacements)


def test_current_rss_affiliations_are_not_authors() -> None:
    feed = recorded(AFFILIATIONS)
    assert (feed.kind, feed.announced, feed.seen, feed.failed) == (
        "arxiv",
        dt.date(2025, 3, 14),
        3,
        (),
    )
    authors = {p.arxiv_id: p.authors for p in feed.papers}
    assert authors == {
        "2503.10011": ("M. R. Nirmal", "S. Lakshmi", "K. Ramanathan"),
        "2503.10027": ("Ana Garc\\'ia", 'Jonas Schr\\"oder', "Li Wei"),
        "2503.10102": ("Priya Raman", "Tomás Novak", "Ulrike Berg"),
    }


def test_old_rdf_feed_is_read_as_arxiv() -> None:
    feed = recorded(RDF, include_replacements=True)
    assert (feed.kind, feed.announced, feed.seen, feed.failed) == (
        "arxiv-rdf",
        dt.date(2021, 1, 5),  # the channel's dc:date in its own zone, not the machine's
        3,
        (),
    )
    new, cross, updated = feed.papers
    assert (new.arxiv_id, new.version, new.announce_type) == ("2101.00001", 1, "new")
    assert new.title == "Search for long-lived particles decaying to displaced muon pairs"
    assert new.authors == ("Jane Doe", "Chidi Okafor", "Maja Lindqvist")
    assert (new.primary_class, new.classes) == ("hep-ex", ("hep-ex",))
    assert new.abstract.startswith("A search for long-lived particles decaying to pairs")
    assert "<p>" not in new.abstract
    assert (cross.arxiv_id, cross.announce_type, cross.primary_class) == (
        "2101.00342",
        "cross",
        "cs.LG",
    )
    assert (updated.arxiv_id, updated.version, updated.announce_type) == (
        "2012.14412",
        2,
        "replace",
    )
    assert updated.title == "Precision measurement of the $W$ boson mass"
    assert {p.announced for p in feed.papers} == {dt.date(2021, 1, 5)}


def test_old_rdf_updated_items_are_replacements_skipped_by_default() -> None:
    feed = recorded(RDF)
    assert [p.arxiv_id for p in feed.papers] == ["2101.00001", "2101.00342"]
    assert feed.skipped_replacements == 1


def test_old_rdf_feed_without_a_channel_date_is_refused() -> None:
    content = (
        (DATA / RDF).read_bytes().replace(b"<dc:date>2021-01-05T20:30:00-05:00</dc:date>", b"")
    )
    with pytest.raises(SourceError, match="without a channel date \\(dc:date\\)"):
        parse_feed(content, "https://example.org/old.rdf")


def test_api_atom_is_arxiv_with_every_author_and_class() -> None:
    feed = recorded(API, url="http://export.arxiv.org/api/query?search_query=cat:cs.LG")
    assert (feed.kind, feed.seen, feed.failed, feed.notes) == ("arxiv-api", 4, (), ())
    by_id = {p.arxiv_id: p for p in feed.papers}
    assert set(by_id) == {"2411.13676", "2411.14162", "2411.14251", "hep-th/9901001"}
    hymba = by_id["2411.13676"]
    assert hymba.authors == ("Xin Dong", "Yonggan Fu", "Shizhe Diao", "Wonmin Byeon")
    assert (hymba.primary_class, hymba.classes) == ("cs.CL", ("cs.CL", "cs.AI", "cs.LG"))
    assert (hymba.version, hymba.announced) == (1, dt.date(2024, 11, 20))
    dpo = by_id["2411.14162"]
    assert len(dpo.authors) == 7 and dpo.authors[-1] == "Pedro Alves"
    assert (dpo.version, dpo.announced) == (2, dt.date(2024, 11, 21))  # published, not updated
    assert (
        dpo.title == "Stable Preference Optimization for Language Models without a Reference Model"
    )
    assert len(by_id["2411.14251"].authors) == 9
    assert by_id["hep-th/9901001"].abs_url == "https://arxiv.org/abs/hep-th/9901001"


def test_api_atom_is_recognised_by_content_from_any_host() -> None:
    assert recorded(API, url="http://127.0.0.1:9/recorded.xml").kind == "arxiv-api"


def test_api_entry_without_a_published_date_is_refused() -> None:
    content = (DATA / API).read_bytes().replace(b"<published>2024-11-20T20:58:41Z</published>", b"")
    feed = parse_feed(content, "http://127.0.0.1:9/api")
    assert feed.failed == ("entry 1 (2411.13676): no published date",)
    assert len(feed.papers) == 3


RSS_WITHOUT_DATES = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>lab</title><link>https://lab.example.org/</link>
<item><title>Dated by nothing</title><link>https://lab.example.org/a</link>
<description>An entry with no date anywhere.</description></item>
<item><title>No link, no id</title><description>x</description>
<pubDate>Fri, 22 Nov 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_items_without_a_usable_id_or_date_are_refused_not_guessed(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.serve("/lab.xml", RSS_WITHOUT_DATES)
    good = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-22.xml")
    report = collect(configured(services, feeds=[url, good]), fetcher=fetcher)
    lab, arxiv = report.sources
    assert (lab.seen, lab.new, lab.failed) == (2, 0, 2)
    assert lab.problems == [
        "entry 1 (https://lab.example.org/a): no date in the entry or the channel",
        "entry 2: no id and no link",
    ]
    assert lab.status == "refused (no item was usable; the reasons follow)"
    assert arxiv.ok and arxiv.new == 5
    assert not papers_on(services.engine, dt.date.today())


def test_an_rss_item_without_its_own_date_takes_the_channel_date() -> None:
    content = RSS_WITHOUT_DATES.replace(
        b"<link>https://lab.example.org/</link>",
        b"<link>https://lab.example.org/</link><pubDate>Thu, 21 Nov 2024 08:00:00 GMT</pubDate>",
    )
    feed = parse_feed(content, "https://lab.example.org/rss")
    assert [p.announced for p in feed.papers] == [dt.date(2024, 11, 21)]


def test_an_old_rdf_feed_dates_the_hugging_face_list_like_the_current_one(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    rdf = feed_server.serve_file("/rss/hep-ex", RDF)
    feed_server.serve("/api/daily_papers?date=2021-01-05", b"[]", content_type="application/json")
    hf = feed_server.url("/api/daily_papers?date={date}")
    report = collect(configured(services, feeds=[hf, rdf]), fetcher=fetcher)
    assert [(s.kind, s.announced) for s in report.sources] == [
        ("arxiv-rdf", dt.date(2021, 1, 5)),
        ("hf-daily", dt.date(2021, 1, 5)),
    ]

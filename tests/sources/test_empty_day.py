"""Empty days: arXiv announced nothing, so no issue; a short note at most once per date."""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage

import pytest

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.delivery.memory import MemoryBackend
from newsletter.issues import get_issue, issue_dates
from newsletter.models import Paper
from newsletter.pipeline import run_once
from newsletter.sending import send
from newsletter.sources import empty_days
from newsletter.sources.dedup import store_papers
from newsletter.sources.fetch import Fetcher
from subscribers.readers import add_active, unsubscribe_address
from tests.fakes.feeds import FeedServer, Reply
from tests.sources.conftest import configured

SATURDAY = dt.date(2024, 11, 23)
SKIP_NOTE = (
    "arXiv announced no papers on 2024-11-23 (a weekend or holiday); no issue is sent "
    "(NEWSLETTER_EMPTY_DAY=note mails a short note instead)"
)


def weekend(svc: Services, server: FeedServer, fetcher: Fetcher, **settings: object) -> Services:
    url = server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-23-weekend.xml")
    svc = configured(svc, feeds=[url], **settings)
    report = collect(svc, fetcher=fetcher)
    assert report.ok and report.new == 0
    return svc


def readers(svc: Services) -> None:
    add_active(svc.engine, svc.taxonomy, "en@example.com", ["nlp"], "en")
    add_active(svc.engine, svc.taxonomy, "ko@example.com", None, "ko")


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def test_weekend_is_recorded_as_an_empty_day(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    weekend(services, feed_server, fetcher)
    issue = get_issue(services.engine, SATURDAY)
    assert issue is not None and (issue.status, issue.paper_count) == ("empty", 0)
    assert empty_days.is_empty_day(services.engine, SATURDAY)
    assert empty_days.latest_empty_day(services.engine) == SATURDAY


def test_skip_sends_nothing_and_says_why(
    services: Services,
    feed_server: FeedServer,
    fetcher: Fetcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = weekend(services, feed_server, fetcher)
    readers(svc)
    backend = MemoryBackend()
    with caplog.at_level(logging.INFO, logger="newsletter.sending"):
        report = send(svc, None, backend)
    assert report.date == SATURDAY and report.sent == 0 and report.ok
    assert report.notes == [SKIP_NOTE]
    assert backend.outbox == []
    assert "no issue is sent (NEWSLETTER_EMPTY_DAY=skip)" in caplog.text


def test_note_goes_to_every_active_reader_once(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    svc = weekend(services, feed_server, fetcher, empty_day="note")
    readers(svc)
    add_active(svc.engine, svc.taxonomy, "gone@example.com", None, "en")
    unsubscribe_address(svc.engine, "gone@example.com")
    backend = MemoryBackend()
    first = send(svc, None, backend)
    assert (first.date, first.sent, first.failed) == (SATURDAY, 2, 0)
    by_to = {str(m["To"]): m for m in backend.outbox}
    assert set(by_to) == {"en@example.com", "ko@example.com"}
    en, ko = by_to["en@example.com"], by_to["ko@example.com"]
    assert str(en["Subject"]) == "2024-11-23 · No new papers were announced today."
    assert "오늘은 새로 발표된 논문이 없습니다." in body(ko, "plain")
    assert "No new papers were announced today." in body(en, "html")
    unsubscribe = str(en["List-Unsubscribe"]).strip("<>")
    assert unsubscribe in body(en, "html") and unsubscribe in body(en, "plain")
    assert "NLPH" not in body(en, "html") + body(en, "plain")
    # Again, by date, and through run-once: nobody gets it twice.
    assert send(svc, SATURDAY, backend).sent == 0
    _, again = run_once(svc, None, backend)
    assert again.sent == 0
    assert len(backend.outbox) == 2


def test_a_failed_source_never_turns_into_a_no_papers_note(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    empty = feed_server.serve_file("/rss/cs.AI", "arxiv/cs.AI-2024-11-23-weekend.xml")
    broken = feed_server.script("/rss/cs.LG", Reply(500, b"oops", "text/plain"))
    svc = configured(services, feeds=[empty, broken], empty_day="note")
    readers(svc)
    report = collect(svc, fetcher=fetcher)
    assert not report.ok
    assert not empty_days.is_empty_day(svc.engine, SATURDAY)
    backend = MemoryBackend()
    result = send(svc, None, backend)
    assert result.sent == 0 and backend.outbox == []
    assert send(svc, SATURDAY, backend).notes == [
        "no papers were announced on 2024-11-23; no issue is sent"
    ]


def test_malformed_feed_is_not_an_empty_day(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.serve_file("/rss/cs.AI", "other/bozo-no-entries.xml")
    report = collect(configured(services, feeds=[url]), fetcher=fetcher)
    assert report.sources[0].error.startswith("malformed XML with no entries")
    assert empty_days.stated_empty_dates(report) == set()
    assert issue_dates(services.engine) == set()


def test_an_empty_day_older_than_the_newest_papers_is_stale(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    weekend(services, feed_server, fetcher)
    friday = Paper("2411.14405", "T", "A", ("X",), dt.date(2024, 11, 22))
    store_papers(services.engine, [friday])
    assert empty_days.latest_empty_day(services.engine) == SATURDAY
    monday = Paper("2411.15124", "T", "A", ("X",), dt.date(2024, 11, 25))
    store_papers(services.engine, [monday])
    assert empty_days.latest_empty_day(services.engine) is None
    # A date with papers is never an empty day, even if a feed once stated it empty.
    assert empty_days.record(services.engine, {dt.date(2024, 11, 25)}) == []

"""Weekly readers: one digest per week window, mailed within the daily sends."""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage

from newsletter.app import Services
from newsletter.delivery.memory import MemoryBackend
from newsletter.issue_state import IssueContent
from newsletter.issues import get_issue, update_content
from newsletter.models import Paper
from newsletter.papers import upsert_papers
from newsletter.sending import send
from newsletter.weekly import is_due, window_start
from subscribers import readers

MONDAY = dt.date(2024, 11, 18)


def day(offset: int) -> dt.date:
    return MONDAY + dt.timedelta(days=offset)


def add_papers(svc: Services, date: dt.date) -> tuple[str, str]:
    """One vision and one security paper announced on ``date``; returns their ids."""
    stamp = date.strftime("%m%d")
    vision = Paper(
        arxiv_id=f"2411.{stamp}1",
        title=f"Image segmentation of video frames {stamp}",
        abstract="We segment every image of a video with a vision transformer.",
        authors=("A. Author",),
        announced=date,
        primary_class="cs.CV",
        classes=("cs.CV",),
    )
    security = Paper(
        arxiv_id=f"2411.{stamp}2",
        title=f"Malware attack detection {stamp}",
        abstract="An adversarial attack on malware detectors and a defence.",
        authors=("B. Author",),
        announced=date,
        primary_class="cs.CR",
        classes=("cs.CR",),
    )
    upsert_papers(svc.engine, [vision, security])
    return vision.arxiv_id, security.arxiv_id


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def to(backend: MemoryBackend, address: str) -> list[EmailMessage]:
    return [m for m in backend.outbox if m["To"] == address]


def add_reader(svc: Services, email: str, cadence: str = "daily", weekday: int = 0) -> None:
    readers.add_active(
        svc.engine,
        svc.taxonomy,
        email,
        ["computer-vision"],
        "en",
        cadence=cadence,
        weekday=weekday,
    )


def test_window_rule() -> None:
    assert window_start(day(4), 0) == MONDAY  # Friday's window opened on Monday
    assert window_start(MONDAY, 0) == MONDAY
    assert window_start(MONDAY, 2) == day(-5)  # Wednesday's window: the Wednesday before
    assert is_due(day(1), 0, None)  # a Monday holiday: Tuesday catches up
    assert not is_due(day(1), 0, MONDAY)
    assert is_due(day(7), 0, day(1))  # the next Monday mails again


def test_weekly_reader_gets_one_digest_a_week(services: Services) -> None:
    ids = {day(n): add_papers(services, day(n)) for n in range(5)}
    add_reader(services, "weekly@example.com", "weekly", 0)
    add_reader(services, "daily@example.com")
    backend = MemoryBackend()
    reports = [send(services, day(n), backend) for n in range(5)]

    weekly_mail = to(backend, "weekly@example.com")
    assert len(weekly_mail) == 1
    assert "weekly" in str(weekly_mail[0]["Subject"])
    # Mailed with Monday's send, it covers the week so far: Monday's papers only.
    text = text_of(weekly_mail[0])
    assert ids[MONDAY][0] in text and ids[MONDAY][1] not in text
    assert len(to(backend, "daily@example.com")) == 5
    assert all("weekly" not in str(m["Subject"]) for m in to(backend, "daily@example.com"))
    assert [r.sent for r in reports] == [2, 1, 1, 1, 1]
    assert [r.skipped for r in reports] == [0, 1, 1, 1, 1]  # "not their day"

    # The next Monday covers the seven days ending on it, vision papers only.
    next_ids = add_papers(services, day(7))
    send(services, day(7), backend)
    weekly_mail = to(backend, "weekly@example.com")
    assert len(weekly_mail) == 2
    text = text_of(weekly_mail[1])
    for vision, security in [*(ids[day(n)] for n in range(1, 5)), next_ids]:
        assert vision in text
        assert security not in text
    assert ids[MONDAY][0] not in text  # eight days before: last week's digest had it


def test_monday_holiday_moves_the_mail_to_tuesday(services: Services) -> None:
    for n in range(1, 5):  # no papers on Monday
        add_papers(services, day(n))
    add_reader(services, "weekly@example.com", "weekly", 0)
    backend = MemoryBackend()
    for n in range(1, 5):
        send(services, day(n), backend)
    mails = to(backend, "weekly@example.com")
    assert len(mails) == 1
    assert "2024-11-19" in str(mails[0]["Subject"])

    add_papers(services, day(7))
    send(services, day(7), backend)
    assert len(to(backend, "weekly@example.com")) == 2


def test_rerunning_a_date_sends_nothing_twice(services: Services) -> None:
    add_papers(services, MONDAY)
    add_reader(services, "weekly@example.com", "weekly", 0)
    add_reader(services, "daily@example.com")
    backend = MemoryBackend()
    first = send(services, MONDAY, backend)
    issue = get_issue(services.engine, MONDAY)
    assert issue is not None
    stored = json.loads(issue.content)["weekly"]
    assert set(stored["reports"]) == {"en"} | {services.settings.language}
    again = send(services, MONDAY, backend)
    assert (first.sent, again.sent, again.already) == (2, 0, 2)
    assert len(backend.outbox) == 2
    unchanged = get_issue(services.engine, MONDAY)
    assert unchanged is not None and unchanged.content == issue.content


def test_weekly_reader_on_another_weekday(services: Services) -> None:
    """Wednesday's reader is mailed once between Monday and Friday: on their first send
    (no mail yet in the window that opened last Wednesday), then next on Wednesday."""
    for n in range(5):
        add_papers(services, day(n))
    add_reader(services, "wed@example.com", "weekly", 2)
    backend = MemoryBackend()
    sent_on = []
    for n in range(5):
        before = len(backend.outbox)
        send(services, day(n), backend)
        if len(backend.outbox) > before:
            sent_on.append(day(n))
    assert sent_on == [MONDAY, day(2)]


def test_weekly_reader_gets_no_empty_day_note(services: Services) -> None:
    from newsletter.sources import empty_days

    add_reader(services, "weekly@example.com", "weekly", 5)
    add_reader(services, "daily@example.com")
    saturday = day(5)
    empty_days.record(services.engine, {saturday})
    settings = services.settings.model_copy(update={"empty_day": "note"})
    backend = MemoryBackend()
    send(Services(settings, services.engine, services.taxonomy, services.signer), saturday, backend)
    assert [m["To"] for m in backend.outbox] == ["daily@example.com"]


def test_weekly_digest_reuses_each_days_classification(services: Services) -> None:
    """A day's stored classification is what the week uses; a day without one is classified."""
    from newsletter.digest import build_digest, build_weekly_digest

    ids = {day(n): add_papers(services, day(n)) for n in range(5)}
    assert build_digest(services, MONDAY) is not None
    monday = get_issue(services.engine, MONDAY)
    assert monday is not None and monday.id is not None
    # The operator's (or a model's) word for Monday: its security paper is about vision too.
    security = ids[MONDAY][1]

    def relabel(content: IssueContent) -> IssueContent:
        assert content.classification is not None
        content.classification[security] = ("computer-vision",)
        return content

    update_content(services.engine, monday.id, relabel)
    week = build_weekly_digest(services, day(4), "en")
    assert week is not None and week.period_start == day(-2) and week.paper_count == 10
    vision = week.section("computer-vision")
    assert vision is not None
    assert {p.arxiv_id for p in vision.papers} == {v for v, _ in ids.values()} | {security}
    assert get_issue(services.engine, day(2)) is None  # no day issue made for the week
    again = build_weekly_digest(services, day(4), "en")
    assert again == week


def test_weekly_rendering_says_weekly_and_keeps_its_chart_inline(services: Services) -> None:
    from newsletter.digest import build_weekly_digest, render_view
    from newsletter.models import ReaderView

    add_papers(services, MONDAY)
    hosted = Services(
        services.settings.model_copy(update={"chart_mode": "hosted"}),
        services.engine,
        services.taxonomy,
        services.signer,
    )
    week = build_weekly_digest(hosted, MONDAY, "ko")
    assert week is not None
    rendered = render_view(hosted, week, ReaderView(("computer-vision",), "ko"))
    assert rendered.subject == "Daily AI Insights 주간 2024-11-12~2024-11-18: 새 논문 1편"
    assert "주간 다이제스트" in rendered.html
    assert [i.content_id for i in rendered.images] == ["chart-weekly-2024-11-18@daily-ai-insights"]

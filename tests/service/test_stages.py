"""The issue row walks collected -> ... -> sent, each stage stored, and a stop resumes cleanly."""

from __future__ import annotations

import datetime as dt
import json

from newsletter.app import Services
from newsletter.collecting import resolve_date
from newsletter.delivery import ledger
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest, render_stage
from newsletter.issues import ensure_issue, get_issue
from newsletter.papers import papers_on, upsert_papers
from newsletter.pipeline import run_once
from newsletter.preview import load_sample
from newsletter.sending import SendReport, send
from newsletter.statuses import IssueStatus, advance
from tests.service.conftest import add_readers, seed


def _status(svc: Services, date: dt.date) -> str:
    issue = get_issue(svc.engine, date)
    assert issue is not None
    return issue.status


def test_status_walks_every_stage_and_each_output_is_stored(services: Services) -> None:
    date = seed(services, readers=3)
    ensure_issue(services.engine, date)
    assert _status(services, date) == "collected"
    digest = build_digest(services, date)
    assert digest is not None
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.status == "summarized"
    content = json.loads(issue.content)
    assert {"classification", "reports", "charts"} <= set(content)
    render_stage(services, digest)
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.status == "rendered"
    stored = json.loads(issue.content)["rendered"][digest.language]
    assert stored["subject"] and "<html" in stored["html"].lower() and stored["text"]
    report = send(services, date, MemoryBackend())
    assert report.sent == 3 and _status(services, date) == "sent"
    # A re-run repeats nothing and never moves the status backwards.
    again = send(services, date, MemoryBackend())
    assert (again.sent, again.already) == (0, 3) and _status(services, date) == "sent"


def test_advance_never_goes_backwards() -> None:
    assert advance("collected", IssueStatus.CLASSIFIED) == "classified"
    assert advance("sending", IssueStatus.SUMMARIZED) == "sending"
    assert advance("sent", IssueStatus.SENDING) == "sent"
    assert advance("rendered", IssueStatus.RENDERED) == "rendered"


def _send_cut_after_first_group(
    svc: Services, groups: int, readers: int
) -> tuple[dt.date, MemoryBackend, SendReport]:
    """The sample day, ``groups`` groups of readers (one category each), and a send that is
    asked to stop once the first group has been mailed."""
    date = load_sample(svc)
    digest = build_digest(svc, date)
    assert digest is not None
    for slug in digest.slugs[:groups]:
        add_readers(svc, readers, prefix=f"{slug}-", categories=(slug,))
    backend = MemoryBackend()
    report = send(svc, date, backend, should_stop=lambda: len(backend.outbox) > 0)
    return date, backend, report


def test_stop_between_batches_then_resume_mails_everyone_once(services: Services) -> None:
    """Three groups of readers (one category each); the stop is asked for after the first."""
    date, backend, first = _send_cut_after_first_group(services, groups=3, readers=4)
    assert first.stopped and first.sent == 4
    assert any("stopped on request" in note for note in first.notes)
    assert _status(services, date) == "sending"  # not "sent": readers are left
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.id is not None
    assert ledger.counts(services.engine, issue.id) == {"sent": 4}

    second = send(services, date, backend)
    assert not second.stopped and second.sent == 8 and second.already == 4
    recipients = [str(m["To"]) for m in backend.outbox]
    assert len(recipients) == len(set(recipients)) == 12
    assert _status(services, date) == "sent"


def test_an_interrupted_issue_overtaken_by_a_newer_day_is_finished_first(
    services: Services,
) -> None:
    """A send cut off on day D, and the next start comes after D+1 was announced: the rest of
    D's readers still get D, then everyone gets D+1, which does not repeat D's papers."""
    from dataclasses import replace

    date, backend, cut = _send_cut_after_first_group(services, groups=2, readers=3)
    assert cut.stopped and cut.sent == 3 and _status(services, date) == "sending"
    next_day = date + dt.timedelta(days=3)  # the Monday after
    upsert_papers(
        services.engine,
        [
            replace(p, arxiv_id=f"99{i:02}.00001", announced=next_day)
            for i, p in enumerate(papers_on(services.engine, date)[:30])
        ],
    )
    _collected, report = run_once(services, None, backend)
    assert report.date == next_day and report.ok
    assert any(f"finished the interrupted issue of {date}" in n for n in report.notes)
    assert _status(services, date) == _status(services, next_day) == "sent"
    for day in (date, next_day):  # each reader got each issue exactly once
        readers = [str(m["To"]) for m in backend.outbox if day.isoformat() in str(m["Subject"])]
        assert len(readers) == len(set(readers)) == 6
    assert len(backend.outbox) == 12
    later = build_digest(services, next_day)
    assert later is not None and later.covers_from is None
    assert {p.announced for s in later.sections for p in s.papers} == {next_day}


def test_missed_days_are_not_sent_late(services: Services) -> None:
    """After the newest issue went out, an older unsent announcement is not picked."""
    date = seed(services, readers=1)
    older = [p for p in papers_on(services.engine, date)[:3]]
    from dataclasses import replace

    upsert_papers(
        services.engine,
        [
            replace(p, arxiv_id=f"9{i}01.0000{i}", announced=date - dt.timedelta(days=1))
            for i, p in enumerate(older)
        ],
    )
    assert resolve_date(services, None) == date
    send(services, date, MemoryBackend())
    assert resolve_date(services, None) is None
    _collected, report = run_once(services, None, MemoryBackend())
    assert report.date is None and report.sent == 0
    # The operator can still send it on purpose.
    assert resolve_date(services, date - dt.timedelta(days=1)) == date - dt.timedelta(days=1)


def test_run_once_skips_a_date_held_by_another_process(services: Services) -> None:
    from newsletter.locks import date_lock

    date = load_sample(services)
    add_readers(services, 2)
    backend = MemoryBackend()
    with date_lock(services.engine, date) as held:
        assert held
        _, report = run_once(services, None, backend)
    assert report.locked and report.sent == 0 and backend.outbox == []
    assert any("another process" in note for note in report.notes)
    _, report = run_once(services, None, backend)
    assert report.sent == 2 and not report.locked

"""The daily run left alone: catch-up at start, retries when the database is down, reports.

The clock is controlled with time-machine; the scheduler is APScheduler's real
BackgroundScheduler with the database job store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy.engine import Engine

from newsletter import runs
from newsletter.app import Services
from newsletter.daemon import build_scheduler, run_daemon
from newsletter.daily_run import DailyRun, missed_run
from newsletter.db import make_engine
from newsletter.delivery.memory import MemoryBackend
from newsletter.issues import issue_dates
from newsletter.papers import papers_on, upsert_papers
from newsletter.sending import send
from tests.service.conftest import SAMPLE_DATE, seed, text_of

SEOUL = ZoneInfo("Asia/Seoul")


def with_settings(svc: Services, **values: object) -> Services:
    return dataclasses.replace(svc, settings=svc.settings.model_copy(update=values))


def factory(backend: MemoryBackend) -> Callable[[], MemoryBackend]:
    return lambda: backend


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _announced_wait(record: logging.LogRecord) -> float:
    """The back-off (seconds) a "retrying in" warning announces: its last %-argument."""
    assert isinstance(record.args, tuple)
    wait = record.args[-1]
    assert isinstance(wait, int | float)
    return float(wait)


def dead_engine(database_url: str, tmp_path: Path) -> Engine:
    """An engine for the same kind of database that cannot be reached."""
    if database_url.startswith("sqlite"):
        return make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'gone.db'}")
    return make_engine("postgresql://postgres@127.0.0.1:1/test")


def run_daemon_until(svc: Services, backend: MemoryBackend, done: Callable[[], bool]) -> None:
    """``run_daemon`` (scheduler only) in a thread until ``done``, then a graceful stop."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_daemon, args=(svc, factory(backend)), kwargs={"web": False, "stop": stop}
    )
    thread.start()
    try:
        wait_for(done)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_started_at_0900_without_the_days_issue_runs_it_once(services: Services) -> None:
    seed(services, readers=3)
    backend = MemoryBackend()
    nine = dt.datetime(2024, 11, 22, 9, 0, tzinfo=SEOUL)
    with time_machine.travel(nine, tick=True):
        run_daemon_until(
            services, backend, lambda: any(r.finished_at for r in runs.recent_runs(services.engine))
        )
        [run] = runs.recent_runs(services.engine)
        assert (run.trigger, run.outcome, run.date) == ("catch-up", "sent", SAMPLE_DATE)
        assert run.scheduled_for == dt.datetime(2024, 11, 22, 7, 0, tzinfo=SEOUL)
        assert len(backend.outbox) == 3
        # A restart half an hour later: the 07:00 run completed, so nothing runs again.
    with time_machine.travel(nine + dt.timedelta(minutes=30), tick=True):
        sched = build_scheduler(services, DailyRun(services, factory(backend)))
        assert missed_run(services, sched) is None
    assert len(backend.outbox) == 3 and len(runs.recent_runs(services.engine)) == 1


def test_no_catch_up_outside_the_window(services: Services) -> None:
    seed(services, readers=1)
    svc = with_settings(services, catchup_hours=1.0)
    sched = build_scheduler(svc, DailyRun(svc, factory(MemoryBackend())))
    assert missed_run(svc, sched, dt.datetime(2024, 11, 22, 9, 0, tzinfo=SEOUL)) is None
    assert missed_run(svc, sched, dt.datetime(2024, 11, 22, 7, 30, tzinfo=SEOUL)) is not None


def test_a_run_skipped_for_a_holder_that_then_died_is_caught_up(services: Services) -> None:
    """Replica B skips the date while A holds it; A is killed mid-send. A's restart must
    still catch up: B's skip does not count as the 07:00 run being done."""
    from newsletter.locks import date_lock

    seed(services, readers=2)
    backend = MemoryBackend()
    with date_lock(services.engine, SAMPLE_DATE) as held:  # replica A, about to die
        assert held
        skipped = DailyRun(services, factory(backend))("schedule", None)
    assert (skipped.outcome, backend.outbox) == ("skipped", [])
    sched = build_scheduler(services, DailyRun(services, factory(backend)))
    at_nine = dt.datetime(2024, 11, 22, 9, 0, tzinfo=SEOUL)
    assert missed_run(services, sched, at_nine) == dt.datetime(2024, 11, 22, 7, 0, tzinfo=SEOUL)
    assert DailyRun(services, factory(backend))("catch-up", None).outcome == "sent"
    assert sorted(str(m["To"]) for m in backend.outbox) == [
        "reader0@example.com",
        "reader1@example.com",
    ]
    assert missed_run(services, sched, at_nine) is None


def test_database_down_is_retried_with_back_off_reported_and_caught_up_later(
    services: Services,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(services, readers=2)
    live = with_settings(
        services, admin_email="ops@example.com", run_attempts=3, run_retry_seconds=0.01
    )
    down = dataclasses.replace(live, engine=dead_engine(database_url, tmp_path))
    backend = MemoryBackend()
    caplog.set_level(logging.WARNING, logger="newsletter.retry")
    outcome = DailyRun(down, factory(backend))("schedule", None)
    assert outcome.outcome == "failed"
    assert "unreachable after 3 attempts" in outcome.detail
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2
    waits = [_announced_wait(r) for r in retries]
    assert waits[1] > waits[0] > 0  # exponential back-off
    # The admin is told through the mail backend; no reader got anything.
    [report] = backend.outbox
    assert str(report["To"]) == "ops@example.com"
    assert "failed" in str(report["Subject"])
    assert "unreachable after 3 attempts" in text_of(report)
    assert issue_dates(live.engine, status="sent") == set()
    # The database is back: the next start sees the 07:00 run never completed and catches up.
    sched = build_scheduler(live, DailyRun(live, factory(backend)))
    at_nine = dt.datetime(2024, 11, 22, 9, 0, tzinfo=SEOUL)
    assert missed_run(live, sched, at_nine) == dt.datetime(2024, 11, 22, 7, 0, tzinfo=SEOUL)
    assert DailyRun(live, factory(backend))("catch-up", None).outcome == "sent"
    readers = sorted(str(m["To"]) for m in backend.outbox[1:])
    assert readers == ["reader0@example.com", "reader1@example.com"]
    down.engine.dispose()


def test_failed_send_is_reported_to_the_admin(services: Services) -> None:
    from newsletter.delivery.base import MailBackend, MessageBatch
    from newsletter.errors import DeliveryError

    class Broken(MailBackend):
        def send(self, batch: MessageBatch) -> NoReturn:
            raise DeliveryError("relay refused the connection", status=421)

    seed(services, readers=1)
    svc = with_settings(services, admin_email="ops@example.com")
    admin_mail = MemoryBackend()
    backends = iter([Broken("newsletter@localhost"), admin_mail])
    outcome = DailyRun(svc, lambda: next(backends))("schedule", None)
    assert outcome.outcome == "failed" and "relay refused" in outcome.detail
    [mail] = admin_mail.outbox
    assert "relay refused" in text_of(mail)
    [run] = runs.recent_runs(services.engine)
    assert run.outcome == "failed" and "relay refused" in run.detail


def test_without_admin_email_the_failure_is_logged(
    services: Services, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = dataclasses.replace(
        with_settings(services, run_attempts=1), engine=dead_engine(database_url, tmp_path)
    )
    backend = MemoryBackend()
    caplog.set_level(logging.WARNING, logger="newsletter.daily_run")
    assert DailyRun(down, factory(backend))().outcome == "failed"
    assert backend.outbox == []
    assert any("NEWSLETTER_ADMIN_EMAIL is not set" in r.getMessage() for r in caplog.records)
    down.engine.dispose()


def test_days_missed_in_an_outage_go_into_the_next_issue_up_to_a_week_back(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    from newsletter import i18n
    from newsletter.collecting import CATCH_UP_DAYS
    from newsletter.digest import build_digest

    seed(services, readers=1)
    papers = papers_on(services.engine, SAMPLE_DATE)[:3]
    ago = {days: SAMPLE_DATE - dt.timedelta(days=days) for days in (12, 10, 2)}
    upsert_papers(
        services.engine,
        [
            dataclasses.replace(paper, arxiv_id=f"99{days:02}.00001", announced=ago[days])
            for days, paper in zip(ago, papers, strict=True)
        ],
    )
    backend = MemoryBackend()
    send(services, ago[12], backend)  # the last issue before a long outage
    caplog.set_level(logging.INFO, logger="newsletter.daily_run")
    outcome = DailyRun(services, factory(backend))("catch-up", None)
    assert (outcome.outcome, outcome.date) == ("sent", SAMPLE_DATE)
    # Two days back: carried into this issue. Ten days back: beyond the week, not sent.
    assert "2024-11-20 had no issue of their own" in outcome.detail
    assert "2024-11-12 were missed" in outcome.detail and "not sent late" in outcome.detail
    assert f"at most {CATCH_UP_DAYS} days" in outcome.detail
    assert any("2024-11-20 had no issue" in r.getMessage() for r in caplog.records)
    digest = build_digest(services, SAMPLE_DATE)
    assert digest is not None and digest.covers_from == ago[2]
    ids = {p.arxiv_id for section in digest.sections for p in section.papers}
    assert "9902.00001" in ids and "9910.00001" not in ids
    assert issue_dates(services.engine, status="sent") == {ago[12], SAMPLE_DATE}
    [_, mail] = backend.outbox
    text = text_of(mail)
    assert i18n.long_date(ago[2], "en") in text  # the reader (English) sees the range it covers
    # The next issue starts after this one: nothing is carried twice.
    assert build_digest(services, SAMPLE_DATE + dt.timedelta(days=1)) is None


def test_clock_jumps_neither_double_nor_skip_a_day(services: Services) -> None:
    seed(services, readers=2)
    backend = MemoryBackend()
    job = DailyRun(services, factory(backend))
    sched = build_scheduler(services, job)
    count = lambda: len(runs.recent_runs(services.engine, 50))  # noqa: E731
    finished = lambda: [r for r in runs.recent_runs(services.engine, 50) if r.finished_at]  # noqa: E731
    before_seven = dt.datetime(2024, 11, 22, 6, 59, 59, 500000, tzinfo=SEOUL)
    with time_machine.travel(before_seven, tick=True) as clock:
        sched.start()
        try:
            wait_for(lambda: len(finished()) == 1)
            assert finished()[0].outcome == "sent" and len(backend.outbox) == 2
            # The clock jumps back a minute: 07:00 comes again, but the job's next time is tomorrow.
            clock.move_to(before_seven - dt.timedelta(minutes=1))
            sched.wakeup()
            time.sleep(0.5)
            assert count() == 1
            # The clock jumps forward past tomorrow's 07:00: one coalesced run, nothing resent.
            clock.move_to(before_seven + dt.timedelta(days=1, hours=2))
            sched.wakeup()
            wait_for(lambda: len(finished()) == 2)
            time.sleep(0.3)
        finally:
            sched.shutdown()
            job.idle.wait(10)
    assert count() == 2
    assert finished()[0].outcome == "nothing" and len(backend.outbox) == 2


def test_runs_of_a_killed_process_are_closed_at_the_next_start(services: Services) -> None:
    import socket
    import subprocess
    import sys

    from newsletter.locks import owner_gone, owner_id

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{ended.stdout.strip()}:deadbeef"
    runs.start_run(services.engine, "schedule", None, dead)
    runs.start_run(services.engine, "schedule", None, owner_id())  # this process: alive
    runs.start_run(services.engine, "schedule", None, "elsewhere:1:cafe")  # another host
    assert runs.close_interrupted(services.engine, owner_gone) == 1
    outcomes = sorted(r.outcome for r in runs.recent_runs(services.engine))
    assert outcomes == ["failed", "running", "running"]
    [closed] = [r for r in runs.recent_runs(services.engine) if r.outcome == "failed"]
    assert "interrupted" in closed.detail and closed.finished_at is not None


def test_an_unexpected_error_is_recorded_logged_and_reported(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    from newsletter.delivery.base import MailBackend, MessageBatch

    class Buggy(MailBackend):
        def send(self, batch: MessageBatch) -> NoReturn:
            raise RuntimeError("a bug in a backend")

    seed(services, readers=1)
    svc = with_settings(services, admin_email="ops@example.com")
    admin_mail = MemoryBackend()
    backends = iter([Buggy("newsletter@localhost"), admin_mail])
    caplog.set_level(logging.ERROR, logger="newsletter.daily_run")
    outcome = DailyRun(svc, lambda: next(backends))("schedule", None)
    assert outcome.outcome == "failed"
    assert outcome.detail == "unexpected RuntimeError: a bug in a backend"
    assert any(r.exc_info for r in caplog.records)  # the traceback is in the log
    [run] = runs.recent_runs(services.engine)
    assert run.outcome == "failed" and run.finished_at is not None
    assert len(admin_mail.outbox) == 1

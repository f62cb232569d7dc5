"""newsletter.health: what ``/healthz`` and ``newsletter status`` report, here or elsewhere."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
import time_machine

from newsletter import runs
from newsletter.app import Services
from newsletter.cli import main
from newsletter.daemon import build_scheduler
from newsletter.daily_run import DailyRun
from newsletter.delivery.memory import MemoryBackend
from newsletter.health import health, status_lines
from tests.service.conftest import seed
from tests.service.test_daily_run import SEOUL, dead_engine, factory, wait_for


def test_health_reports_database_scheduler_issue_and_next_run(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    seed(services, readers=1)
    data = health(services)
    assert data["ok"] and data["database"] == "ok"
    assert data["scheduler"]["alive"] is False and data["last_issue_date"] is None
    backend = MemoryBackend()
    job = DailyRun(services, factory(backend))
    assert job("manual", None).outcome == "sent"
    sched = build_scheduler(services, job)
    with time_machine.travel(dt.datetime(2024, 11, 22, 12, 0, tzinfo=SEOUL), tick=True):
        sched.start()
        try:
            wait_for(lambda: bool(runs.live_schedulers(services.engine)))
            here = health(services, sched)
            elsewhere = health(services)  # e.g. `newsletter status` or a web-only replica
        finally:
            sched.shutdown()
    tomorrow = "2024-11-23T07:00:00+09:00"
    assert here["ok"] and here["scheduler"]["alive"] and here["scheduler"]["in_this_process"]
    assert here["scheduler"]["next_run_time"] == tomorrow
    assert elsewhere["scheduler"]["alive"] and not elsewhere["scheduler"]["in_this_process"]
    assert elsewhere["scheduler"]["next_run_time"] == tomorrow  # in the schedule's zone
    assert here["last_issue_date"] == "2024-11-22"
    assert here["last_run"]["outcome"] == "sent"
    lines = "\n".join(status_lines(here))
    assert "alive" in lines and "2024-11-22" in lines and tomorrow in lines
    down = dataclasses.replace(services, engine=dead_engine(database_url, tmp_path))
    broken = health(down)
    assert not broken["ok"] and broken["database"].startswith("unreachable")
    down.engine.dispose()


def test_status_command(
    services: Services,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(services, readers=1)
    DailyRun(services, factory(MemoryBackend()))("manual", None)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["last_issue_date"] == "2024-11-22" and data["database"] == "ok"
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "last issue sent:   2024-11-22" in out and "not running" in out

"""GET /healthz of the web app: database, scheduler, last issue and next run; 503 when sick."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.daemon import build_scheduler
from newsletter.daily_run import DailyRun
from newsletter.delivery.memory import MemoryBackend
from newsletter.logs import configure_logging
from subscribers.web_app import create_app
from tests.service.conftest import seed
from tests.service.test_daily_run import dead_engine

SEOUL = ZoneInfo("Asia/Seoul")


def test_healthz_reports_the_service(services: Services, database_url: str, tmp_path: Path) -> None:
    seed(services, readers=1)
    backend = MemoryBackend()
    job = DailyRun(services, lambda: backend)
    job("manual", None)
    app = create_app(services, backend)
    client = TestClient(app)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["last_issue_date"] == "2024-11-22"
    assert body["last_run"]["outcome"] == "sent" and body["last_run"]["detail"] == ""
    assert body["scheduler"]["in_this_process"] is False

    sched = build_scheduler(services, job)
    app.state.scheduler = sched
    with time_machine.travel(dt.datetime(2024, 11, 22, 12, 0, tzinfo=SEOUL), tick=True):
        sched.start()
        try:
            body = client.get("/healthz").json()
        finally:
            sched.shutdown()
    assert body["scheduler"]["alive"] is True
    assert body["scheduler"]["next_run_time"] == "2024-11-23T07:00:00+09:00"
    # The scheduler of this process has stopped: the container is unhealthy.
    stopped = client.get("/healthz")
    assert stopped.status_code == 503 and stopped.json()["status"] == "error"

    app.state.scheduler = None
    app.state.services = dataclasses.replace(services, engine=dead_engine(database_url, tmp_path))
    down = client.get("/healthz")
    assert down.status_code == 503
    # No connection string, host or driver message leaks to the public endpoint.
    assert down.json()["database"] == "unreachable"
    app.state.services.engine.dispose()


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO, "json")
    try:
        logging.getLogger("newsletter.daily_run").info(
            "daily run finished: %s", "sent", extra={"outcome": "sent", "date": "2024-11-22"}
        )
        logging.getLogger("apscheduler.scheduler").info("noise kept out at INFO")
    finally:
        configure_logging(logging.WARNING, "text")
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["message"] == "daily run finished: sent"
    assert record["level"] == "INFO" and record["logger"] == "newsletter.daily_run"
    assert (record["outcome"], record["date"]) == ("sent", "2024-11-22")
    assert dt.datetime.fromisoformat(record["time"]).tzinfo is not None

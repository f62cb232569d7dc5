"""Real ``newsletter`` processes: SIGTERM mid-send then restart, two replicas, the web side.

Each process runs the real CLI against the test's database with the file backend,
so the outbox directory is the ground truth of what readers received.
"""

from __future__ import annotations

import email
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.issues import get_issue, issue_dates
from newsletter.preview import load_sample
from newsletter.settings import load_settings
from newsletter.statuses import RunOutcome
from tests.conftest import pg_schema_url
from tests.service.conftest import SAMPLE_DATE, add_readers, cli_env, newsletter_cmd, seed

#: Every minute, so a process started now finds the last scheduled time just passed.
EVERY_MINUTE = "* * * * *"


def recipients(outbox: Path) -> list[str]:
    """The To of every message in the outbox (headers only: the bodies are large)."""
    found = []
    for path in outbox.glob("*.eml"):
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        msg = email.message_from_bytes(head, _class=EmailMessage, policy=default_policy)
        found.append(str(msg["To"]))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


class Proc:
    """A ``newsletter`` subprocess whose log goes to a file (a pipe could fill and block it)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.popen = subprocess.Popen(
            newsletter_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=self.handle
        )

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code; the process must be gone within ``timeout`` seconds."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.handle.close()

    def log_lines(self) -> list[str]:
        return self.log.read_text("utf-8").splitlines()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.close()


def issue_status(svc: Services) -> str | None:
    issue = get_issue(svc.engine, SAMPLE_DATE)
    return None if issue is None else issue.status


def test_sigterm_mid_send_then_restart_mails_everyone_once(
    services: Services, database_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """Three groups of readers (one category each): the stop comes after the first group."""
    date = load_sample(services)
    digest = build_digest(services, date, "en")
    assert digest is not None
    group = 25
    for slug in digest.slugs[:3]:
        add_readers(services, group, prefix=f"{slug}-", categories=(slug,))
    readers = 3 * group
    env = cli_env(
        database_url, tmp_path, NEWSLETTER_SCHEDULE=EVERY_MINUTE, NEWSLETTER_LOG_FORMAT="json"
    )
    outbox = tmp_path / "outbox"
    first = Proc(["start", "--no-web"], env, tmp_path / "first.log")
    procs.append(first)
    wait_for(lambda: outbox.exists() and any(outbox.glob("*.eml")))
    assert first.terminate() == 0
    after_stop = recipients(outbox)
    assert 0 < len(after_stop) < readers  # stopped mid-send, after a whole group
    assert len(after_stop) % group == 0
    assert issue_status(services) == "sending"
    messages = [json.loads(line)["message"] for line in first.log_lines()]
    assert any("received SIGTERM" in m for m in messages)
    assert any("daily run finished: stopped" in m for m in messages)

    second = Proc(["start", "--no-web"], env, tmp_path / "second.log")
    procs.append(second)
    wait_for(lambda: issue_status(services) == "sent")
    assert second.terminate() == 0
    everyone = recipients(outbox)
    assert len(everyone) == len(set(everyone)) == readers


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_schema_url()


@pytest.mark.postgres
def test_two_schedulers_on_postgresql_send_one_issue(
    pg_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    svc = Services.build(load_settings(database_url=pg_url, feeds=[]))
    readers = 20
    seed(svc, readers=readers)
    env = cli_env(pg_url, tmp_path, NEWSLETTER_SCHEDULE=EVERY_MINUTE)
    for name in ("a", "b"):
        procs.append(Proc(["start", "--no-web"], env, tmp_path / f"{name}.log"))
    from newsletter import runs

    # Both start and find the scheduled time missed; whichever takes the date's lock sends,
    # the other skips it (or, if it comes later, finds the run completed or nothing to send).
    def settled() -> bool:
        started = all(any("scheduler started" in line for line in p.log_lines()) for p in procs)
        recent = runs.recent_runs(svc.engine, 10)
        sent = issue_dates(svc.engine, status="sent") == {SAMPLE_DATE}
        return started and sent and all(r.finished_at for r in recent)

    wait_for(settled)
    assert [p.terminate() for p in procs] == [0, 0]
    everyone = recipients(tmp_path / "outbox")
    assert len(everyone) == len(set(everyone)) == readers
    assert issue_dates(svc.engine) == {SAMPLE_DATE}
    outcomes = sorted(r.outcome for r in runs.recent_runs(svc.engine, 10) if r.finished_at)
    assert outcomes.count(RunOutcome.SENT) == 1
    assert set(outcomes) <= {"sent", "skipped", "nothing"}
    svc.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_start_serves_the_web_app_and_the_scheduler_in_one_process(
    sqlite_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    port = free_port()
    env = cli_env(sqlite_url, tmp_path)
    proc = Proc(["start", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "s.log")
    procs.append(proc)
    health: dict[str, object] = {}

    def healthy() -> bool:
        nonlocal health
        try:
            status, health = get_json(f"http://127.0.0.1:{port}/healthz")
        except OSError:
            return False
        return status == 200

    wait_for(healthy)
    scheduler = health["scheduler"]
    assert isinstance(scheduler, dict)
    assert scheduler["alive"] and scheduler["in_this_process"]
    assert str(scheduler["next_run_time"]).endswith("07:00:00+09:00")
    assert health["database"] == "ok" and health["status"] == "ok"
    assert proc.terminate() == 0

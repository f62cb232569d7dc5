"""The process's edges: a batch outliving the grace period, a busy port, a late database."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.daemon import DaemonExit, run_daemon
from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.memory import MemoryBackend
from newsletter.models import SendResult
from tests.service.conftest import seed
from tests.service.test_daily_run import with_settings


class Stuck(MailBackend):
    """A relay that never answers until released: the batch cannot finish in time."""

    def __init__(self) -> None:
        super().__init__("newsletter@localhost")
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, batch: MessageBatch) -> list[SendResult]:
        self.entered.set()
        self.release.wait(30)
        return MemoryBackend().send(batch)


def test_a_batch_that_outlives_the_grace_period_asks_for_a_hard_exit(services: Services) -> None:
    seed(services, readers=1)
    backend = Stuck()
    stop = threading.Event()
    result: list[DaemonExit] = []
    # A schedule every minute: the start catches up at once and enters the send.
    svc = with_settings(services, schedule="* * * * *")
    thread = threading.Thread(
        target=lambda: result.append(
            run_daemon(svc, lambda: backend, web=False, stop=stop, grace=0.3)
        )
    )
    thread.start()
    try:
        assert backend.entered.wait(30)
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive()
        [ended] = result
        assert (ended.code, ended.hard) == (1, True)
    finally:
        backend.release.set()


def test_a_busy_port_stops_the_service_with_exit_1(services: Services) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ended = run_daemon(services, MemoryBackend, port=port, scheduler=False)
    assert (ended.code, ended.hard) == (1, False)


def test_start_waits_for_the_database_then_gives_up_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("NEWSLETTER_RUN_ATTEMPTS", "3")
    monkeypatch.setenv("NEWSLETTER_RUN_RETRY_SECONDS", "0.01")
    assert main(["start", "--no-web"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert sum("database unreachable at start" in line for line in err) == 2
    assert any(line.startswith("error: cannot reach the database") for line in err)
    assert "Traceback" not in "\n".join(err)

"""The one web server of ``serve`` and ``start``: no link token in the log, no Server header.

Both commands run as real processes under ``--debug`` (the access log is on), because
``start`` is what Docker, systemd and Kubernetes run: a token in its log is a bearer
credential in every log collector.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from subscribers.tokens import Signer
from tests.service.conftest import cli_env
from tests.service.test_processes import Proc, free_port, procs, wait_for

__all__ = ["procs"]  # the fixture, shared with the process tests

COMMANDS = {
    "start": ["--debug", "start", "--no-scheduler"],
    "serve": ["--debug", "serve"],
}


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, str]]:
    """Status and lower-cased headers; an error page is an answer too."""
    try:
        with urllib.request.urlopen(url, data=data, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_debug_web_server_logs_no_token_and_sends_no_server_header(
    command: str, sqlite_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    key = "web-server-test-secret-key-0123456789"
    env = cli_env(sqlite_url, tmp_path, NEWSLETTER_SECRET_KEY=key)
    port = free_port()
    proc = Proc([*COMMANDS[command], "--port", str(port)], env, tmp_path / f"{command}.log")
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return fetch(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(up)
    signer = Signer(key)
    tokens = {
        "manage": signer.sign(1, "manage"),
        "unsubscribe": signer.sign(1, "unsubscribe"),
        "confirm": signer.sign(1, "confirm", "nonce"),
    }
    for purpose, token in tokens.items():
        status, headers = fetch(f"{base}/{purpose}/{token}?lang=en")
        assert status in (200, 400)
        assert "server" not in headers
    status, headers = fetch(f"{base}/unsubscribe/{tokens['unsubscribe']}", b"")
    assert "server" not in headers
    proc.terminate()
    log = proc.log.read_text("utf-8")
    # The access log is on under --debug (the requests are in it), but never the tokens.
    assert "/manage/[token]" in log and "/unsubscribe/[token]" in log
    for token in tokens.values():
        assert token not in log

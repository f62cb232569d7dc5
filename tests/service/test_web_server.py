"""The one web server of ``serve`` and ``start``: no link token in the log, no Server header.

Both commands run as real processes under ``--debug`` (the access log is on), because
``start`` is what Docker, systemd and Kubernetes run: a token in its log is a bearer
credential in every log collector.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from newsletter.errors import ConfigurationError
from newsletter.settings import DEV_SECRET_KEY, load_settings
from subscribers.tokens import Signer
from tests.service.conftest import cli_env, newsletter_cmd
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


FORGED_KEY_ENVS = {
    # As the probe found it: no key at all, the default file backend.
    "built-in key": {},
    "deploy/.env.example's placeholder": {
        "NEWSLETTER_SECRET_KEY": "replace-with-a-long-random-value"
    },
    "short key": {"NEWSLETTER_SECRET_KEY": "short-but-secret"},
    "built-in key still accepted as an old key": {
        "NEWSLETTER_SECRET_KEY": "web-server-test-secret-key-0123456789",
        "NEWSLETTER_OLD_SECRET_KEYS": "dev-insecure-secret-change-me",
    },
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(FORGED_KEY_ENVS))
def test_web_server_beyond_loopback_refuses_a_key_anyone_can_sign_with(
    command: str, case: str, sqlite_url: str, tmp_path: Path
) -> None:
    """``serve`` on 0.0.0.0 with the key in the source accepted forged manage links."""
    env = cli_env(sqlite_url, tmp_path, **FORGED_KEY_ENVS[case])
    if case == "built-in key":
        env.pop("NEWSLETTER_SECRET_KEY", None)
    args = [*COMMANDS[command][1:], "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(
        newsletter_cmd(*args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "would accept forged links" in result.stderr
    assert "NEWSLETTER_" in result.stderr and "127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("news.example.com", False),
    ],
)
def test_the_built_in_key_serves_on_loopback_only(host: str, allowed: bool) -> None:
    settings = load_settings(feeds=[])
    assert settings.secret_key == DEV_SECRET_KEY
    if allowed:
        settings.require_serving_secret(host)
    else:
        with pytest.raises(ConfigurationError, match="forged links"):
            settings.require_serving_secret(host)
    load_settings(feeds=[], secret_key="k" * 32).require_serving_secret(host)


def _subscribe_answers(base: str, forwarded_for: list[str]) -> list[int]:
    """One subscribe POST per entry, each claiming to come from that X-Forwarded-For."""
    answers = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i, claimed in enumerate(forwarded_for):
            response = client.post(
                "/subscribe",
                data={"email": f"r{i}@example.com", "categories": "nlp"},
                headers={"X-Forwarded-For": claimed},
            )
            answers.append(response.status_code)
    return answers


@pytest.mark.parametrize("trusted", ["", "127.0.0.1", "10.0.0.0/8"])
def test_forwarded_for_is_believed_from_trusted_proxies_only(
    trusted: str, sqlite_url: str, tmp_path: Path, procs: list[Proc]
) -> None:
    """As found: a local client changing X-Forwarded-For got 15 of 15 subscribes past 10/minute."""
    env = cli_env(sqlite_url, tmp_path, NEWSLETTER_TRUSTED_PROXIES=trusted)
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return fetch(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(up)
    # Under the limit the form answers 403 (no CSRF token); over it, 429 first.
    answers = _subscribe_answers(base, [f"203.0.113.{i}" for i in range(15)])
    if trusted == "127.0.0.1":
        # The proxy (this test, on loopback) is trusted: each client has its own allowance.
        assert answers == [403] * 15
    else:
        assert answers == [403] * 10 + [429] * 5


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert load_settings(trusted_proxies="10.0.0.5, 10.1.0.0/16,::1").trusted_proxies == [
        "10.0.0.5",
        "10.1.0.0/16",
        "::1",
    ]
    with pytest.raises(ConfigurationError, match=r"NEWSLETTER_TRUSTED_PROXIES.*not an IP"):
        load_settings(trusted_proxies="proxy.internal")

"""`newsletter llm check`: one tiny classify and report per model, speed, schema mode,
recommended settings, exit 1 when unusable; `newsletter demo` with a configured model."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from newsletter.cli import main
from tests.fakes.llm_server import FakeLLMServer, Step


@pytest.fixture
def env(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> pytest.MonkeyPatch:
    make_settings()  # sets the model, endpoint and key in the environment
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSLETTER_FEEDS", "[]")
    return monkeypatch


def test_check_reports_speed_schema_mode_and_settings(
    env: pytest.MonkeyPatch, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("NEWSLETTER_LLM_API_BASE", llm_server.base_url.replace("127.0.0.1", "localhost"))
    assert main(["llm", "check"]) == 0
    text = capsys.readouterr().out
    assert "openai/test-model: usable" in text
    assert "tokens/s" in text and "JSON-schema mode: works" in text
    assert "NEWSLETTER_LLM_CONCURRENCY=1" in text  # a local server: match its slots
    assert [s.task for s in llm_server.seen] == ["classify", "report"]
    assert main(["llm", "check", "--json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["usable"] and data["schema_mode"] is True
    assert set(data["recommended"]) == {"timeout", "batch_size", "concurrency"}
    assert data["read_tokens_per_s"] > 0 and data["write_tokens_per_s"] > 0


def test_check_without_schema_support(
    env: pytest.MonkeyPatch, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.schema_supported = False
    assert main(["llm", "check"]) == 0
    assert "JSON-schema mode: refused" in capsys.readouterr().out


def test_check_fails_for_a_model_that_cannot_answer(
    env: pytest.MonkeyPatch, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("NEWSLETTER_LANGUAGE", "en")
    llm_server.script(Step("loop"), Step("no_citation", task="report"))
    assert main(["llm", "check"]) == 1
    text = capsys.readouterr().out
    assert "UNUSABLE" in text and "output cap" in text and "cites none of its papers" in text


def test_check_fails_when_the_server_is_down(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.setenv("NEWSLETTER_LLM_API_BASE", f"http://127.0.0.1:{port}/v1")
    env.setenv("NEWSLETTER_LLM_MAX_RETRIES", "0")
    assert main(["llm", "check"]) == 1
    assert "cannot reach the model" in capsys.readouterr().out


def test_demo_uses_the_configured_model_and_says_so(
    env: pytest.MonkeyPatch,
    llm_server: FakeLLMServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert "Asking openai/test-model (NEWSLETTER_LLM_MODEL)" in text
    assert "with openai/test-model from NEWSLETTER_LLM_MODEL" in text
    assert llm_server.count_of("classify") == 1 and llm_server.count_of("report") > 0
    env.delenv("NEWSLETTER_LLM_MODEL")
    llm_server.reset()
    assert main(["demo", "--out", str(tmp_path / "offline")]) == 0
    assert "offline: rule-based, extractive" in capsys.readouterr().out
    assert llm_server.count == 0

"""LLM fixtures: one fake OpenAI-compatible server per session, settings that point at it.

The real litellm client makes real HTTP requests to the fake server; importing
litellm costs seconds, so it happens once per session (``_warm_litellm``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from newsletter.settings import Settings, load_settings
from tests.fakes.llm_server import FakeLLMServer
from tests.llm.helpers import DAY


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    from newsletter.llm import _litellm

    _litellm()
    yield server
    server.stop()


@pytest.fixture
def llm_server(_llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    _llm_server.reset()
    yield _llm_server
    _llm_server.reset()


@pytest.fixture
def make_settings(
    database_url: str, tmp_path: Any, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings from the environment the issue names, plus per-test overrides.

    Retry waits are zero and timeouts short so failure tests stay fast; one call
    at a time so scripted misbehaviour hits a predictable request.
    """
    monkeypatch.setenv("NEWSLETTER_LLM_MODEL", "openai/test-model")
    monkeypatch.setenv("NEWSLETTER_LLM_API_BASE", llm_server.base_url)
    monkeypatch.setenv("NEWSLETTER_LLM_API_KEY", "sk-test")
    # Qualification has its own tests (test_quality.py); elsewhere the model is trusted,
    # as a hosted model that qualified on an earlier day is (also in child processes).
    monkeypatch.setenv("NEWSLETTER_LLM_QUALIFY", "false")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "outbox_dir": tmp_path / "outbox",
            "feeds": [],
            "mail_backend": "memory",
            "llm_retry_wait": 0,
            "llm_retry_max_wait": 5,
            "llm_timeout": 5,
            "llm_max_retries": 2,
            "llm_concurrency": 1,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def llm_services(make_settings: Callable[..., Settings]) -> Iterator[Any]:
    from newsletter.app import Services

    svc = Services.build(make_settings())
    yield svc
    svc.engine.dispose()


@pytest.fixture
def llm_client(llm_services: Any) -> Any:
    from newsletter.llm_client import LLMClient

    return LLMClient(llm_services.settings, llm_services.engine, DAY)

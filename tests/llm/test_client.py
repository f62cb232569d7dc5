"""LLMClient against the fake server through the real litellm: schema, cache, ledger,
repair, retries, timeouts, fallbacks and the circuit breaker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter import llm_store
from newsletter.app import prepare_database
from newsletter.categories import load_taxonomy
from newsletter.classify import ClassificationAnswer, batch_prompt
from newsletter.db import make_engine
from newsletter.errors import LLMError, LLMTimeout
from newsletter.llm_client import Answer, LLMClient
from newsletter.settings import Settings
from tests.fakes.llm_server import FakeLLMServer, Step
from tests.llm.helpers import DAY, paper

TAXONOMY = load_taxonomy()
PAPERS = [
    paper("2411.00001", "Reranking retrieved documents with a cross-encoder"),
    paper("2411.00002", "Panoptic segmentation for driving scenes", cls="cs.CV"),
]


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LLMClient]]:
    engines = []

    def build(**overrides: Any) -> LLMClient:
        settings = make_settings(**overrides)
        engine = make_engine(settings.database_url)
        prepare_database(engine)
        engines.append(engine)
        return LLMClient(settings, engine, DAY)

    yield build
    for engine in engines:
        engine.dispose()


def ask(c: LLMClient, papers: list[Any] = PAPERS) -> Answer[ClassificationAnswer]:
    return c.ask("classify", batch_prompt(papers, TAXONOMY), ClassificationAnswer, max_tokens=200)


def calls(c: LLMClient) -> list[dict[str, Any]]:
    with c.engine.connect() as conn:
        rows = conn.execute(sa.select(llm_store.CALLS).order_by(llm_store.CALLS.c.id))
        return [dict(r._mapping) for r in rows]


def test_answer_is_validated_cached_and_ledgered(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client()
    first = ask(c)
    assert [p.id for p in first.value.papers] == ["2411.00001", "2411.00002"]
    assert first.model == "openai/test-model" and not first.cached
    body = llm_server.seen[0].body
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False

    again = ask(client())  # a new client (another run) finds the answer in the database
    assert again.cached and again.value == first.value
    assert llm_server.count == 1
    rows = calls(c)
    assert [(r["outcome"], r["cache_hit"]) for r in rows] == [("ok", False), ("cached", True)]
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["completion_tokens"] > 0
    assert rows[0]["day"] == DAY and rows[0]["purpose"] == "classify"
    assert rows[0]["cost"] is None  # test-model has no price in litellm's map
    assert rows[1]["prompt_tokens"] == 0


def test_changed_input_or_model_misses_the_cache(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    ask(client())
    ask(client(), PAPERS[:1])
    ask(client(llm_model="openai/other-model"))
    assert llm_server.count == 3


@pytest.mark.parametrize("kind", ["invalid_json", "wrong_shape", "empty"])
def test_unusable_answer_is_repaired_once(
    kind: str, client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client()
    llm_server.script(Step(kind))
    answer = ask(c)
    assert len(answer.value.papers) == 2
    assert llm_server.count == 2
    repair = llm_server.seen[1].messages
    # the repair restates the task (no long bad answer sent back) and names the problem
    assert [m["role"] for m in repair] == ["system", "user"]
    assert repair[0]["content"] == llm_server.seen[0].messages[0]["content"]
    assert repair[1]["content"].startswith(llm_server.seen[0].messages[1]["content"])
    assert "could not be used" in repair[-1]["content"]
    assert "exactly one JSON object" in repair[-1]["content"]
    expected = {"invalid_json": "not valid JSON", "wrong_shape": "wrong shape", "empty": "empty"}
    assert expected[kind] in repair[-1]["content"]
    assert [r["outcome"] for r in calls(c)] == ["invalid", "ok"]
    assert [r["purpose"] for r in calls(c)] == ["classify", "classify:repair"]


def test_answer_still_unusable_after_repair_fails_and_caches_nothing(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client()
    llm_server.script(Step("invalid_json"), Step("wrong_shape"))
    with pytest.raises(LLMError, match=r"no model gave a usable answer.*wrong shape") as err:
        ask(c)
    assert "NEWSLETTER_LLM_FALLBACKS" in str(err.value)
    assert llm_server.count == 2
    with c.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(llm_store.CACHE)).scalar() == 0
    ask(c)  # a bad answer does not trip the circuit breaker: the next ask goes out
    assert llm_server.count == 3


def test_fenced_json_answer_is_accepted(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    llm_server.script(Step("fenced"))
    assert len(ask(client()).value.papers) == 2
    assert llm_server.count == 1


def test_429_waits_as_retry_after_asks(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = client()
    llm_server.script(Step("status", status=429, headers={"Retry-After": "1"}))
    with caplog.at_level(logging.WARNING, logger="newsletter.llm"):
        answer = ask(c)
    assert len(answer.value.papers) == 2
    assert llm_server.count == 2
    assert "waiting 1.00 s as Retry-After asks" in caplog.text
    assert [r["outcome"] for r in calls(c)] == ["error", "ok"]
    assert "RateLimitError" in calls(c)[0]["error"]


def test_retry_after_ms_and_the_cap(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm_server.script(
        Step("status", status=429, headers={"retry-after-ms": "30"}),
        Step("status", status=429, headers={"Retry-After": "3600"}),
    )
    with caplog.at_level(logging.WARNING, logger="newsletter.llm"):
        ask(client(llm_retry_max_wait=0.05))
    assert "waiting 0.03 s" in caplog.text and "waiting 0.05 s" in caplog.text
    assert llm_server.count == 3


def test_500_is_retried(client: Callable[..., LLMClient], llm_server: FakeLLMServer) -> None:
    llm_server.script(Step("status", status=500), Step("status", status=503))
    assert len(ask(client()).value.papers) == 2
    assert llm_server.count == 3


def test_a_timeout_asks_the_caller_to_shrink_the_work(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client(llm_timeout=0.5)
    llm_server.script(Step("hang", seconds=5))
    with pytest.raises(LLMTimeout) as err:
        ask(c)
    for setting in ("TIMEOUT", "BATCH_SIZE", "CONCURRENCY"):
        assert f"NEWSLETTER_LLM_{setting}" in str(err.value)
    assert llm_server.count == 1  # not retried at the same size
    first = calls(c)[0]
    assert first["outcome"] == "timeout" and "no answer for 0.5 s" in first["error"]
    assert not c.down()  # slow is not dead: the next ask goes out
    assert len(ask(c, PAPERS[:1]).value.papers) == 1


def test_fallback_model_answers_when_the_primary_is_down(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client(llm_fallbacks="openai/backup-model", llm_max_retries=1)
    llm_server.script(Step("status", status=500), Step("status", status=500))
    answer = ask(c)
    assert answer.model == "openai/backup-model"
    assert [s.body["model"] for s in llm_server.seen] == [
        "test-model",
        "test-model",
        "backup-model",
    ]
    # the primary is not asked again in this run: the next question goes to the backup
    assert ask(c, PAPERS[:1]).model == "openai/backup-model"
    assert [s.body["model"] for s in llm_server.seen][3:] == ["backup-model"]
    # the answer is cached under the configured model, so a re-run asks nobody
    rerun = ask(client(llm_fallbacks="openai/backup-model"))
    assert rerun.cached and rerun.model == "openai/backup-model"
    assert llm_server.count == 4


def test_outage_trips_the_circuit_breaker(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client(llm_max_retries=1)
    llm_server.script(*[Step("status", status=502)] * 2)
    with pytest.raises(LLMError, match=r"openai/test-model: HTTP 502: .*scripted HTTP 502"):
        ask(c)
    assert llm_server.count == 2
    with pytest.raises(LLMError, match="skipped, the model is unavailable in this run"):
        ask(c, PAPERS[:1])
    assert llm_server.count == 2  # no request for the second ask


def test_bad_credentials_are_not_retried(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client()
    llm_server.script(Step("status", status=401))
    with pytest.raises(LLMError, match="check NEWSLETTER_LLM_MODEL"):
        ask(c)
    assert llm_server.count == 1
    with pytest.raises(LLMError, match="skipped"):
        ask(c)
    assert llm_server.count == 1


def test_provider_without_json_schema_gets_the_schema_in_the_prompt(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    llm_server.schema_supported = False
    c = client()
    assert len(ask(c).value.papers) == 2
    assert llm_server.count == 2
    refused, retried = llm_server.seen
    assert "response_format" in refused.body and "response_format" not in retried.body
    assert "matches this JSON schema" in retried.system and '"papers"' in retried.system
    ask(c, PAPERS[:1])  # the client remembers: no second refusal
    assert llm_server.count == 3 and "response_format" not in llm_server.seen[2].body


def test_prompt_json_mode_never_sends_response_format(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    ask(client(llm_json_mode="prompt"))
    assert "response_format" not in llm_server.seen[0].body
    assert "JSON schema" in llm_server.seen[0].system


def test_known_model_has_a_cost(
    client: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    c = client(llm_model="openai/gpt-4o-mini")
    ask(c)
    assert calls(c)[0]["cost"] > 0
    (line,) = llm_store.usage(c.engine, DAY)
    assert line.model == "openai/gpt-4o-mini" and line.cost is not None and line.cost > 0
    assert line.calls == 1 and line.cache_hits == 0

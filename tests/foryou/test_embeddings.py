"""For you with NEWSLETTER_EMBEDDING_MODEL: through litellm to the fake OpenAI-compatible
server's /v1/embeddings, cached by (model, text hash), counted in the LLM ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from newsletter.app import Services
from newsletter.delivery.memory import MemoryBackend
from newsletter.foryou_today import block_for
from newsletter.llm_store import usage
from newsletter.sending import send
from subscribers.interests import LikedPaper, set_interests
from tests.delivery.conftest import SAMPLE_DATE, add_readers
from tests.fakes.llm_server import FakeLLMServer, Step
from tests.foryou.test_send import MANIPULATION

MODEL = "openai/fake-embed"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    fake = FakeLLMServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def svc(delivery_services: Services, server: FakeLLMServer) -> Services:
    server.reset()
    settings = delivery_services.settings.model_copy(
        update={
            "embedding_model": MODEL,
            "llm_api_base": server.base_url,
            "llm_api_key": "sk-test",
            "llm_retry_wait": 0,
            "llm_max_retries": 1,
            "embedding_batch_size": 10,
        }
    )
    return dataclasses.replace(delivery_services, settings=settings)


def mailed(backend: MemoryBackend) -> dict[str, str]:
    out = {}
    for message in backend.outbox:
        html = message.get_body(preferencelist=("html",))
        assert html is not None
        out[str(message["To"])] = str(html.get_content())
    return out


def test_papers_and_interests_are_embedded_once_and_counted(
    svc: Services, server: FakeLLMServer
) -> None:
    every = (svc.taxonomy.slugs,)
    first, second = add_readers(svc, 2, every)
    text = "tactile sensing for dexterous robot hands"
    set_interests(svc.engine, first, text=text)
    liked = [LikedPaper("Dexterous manipulation with tactile rewards", "sim-to-real hands")]
    set_interests(svc.engine, second, papers=liked)
    backend = MemoryBackend()
    report = send(svc, SAMPLE_DATE, backend)
    assert report.sent == 2 and report.for_you_blocks == 2
    requests = server.count_of("embed")
    embedded = [t for s in server.seen if s.task == "embed" for t in s.body["input"]]
    # 24 papers in batches of 10, then the two readers' texts: each text once.
    assert len(embedded) == len(set(embedded)) == 24 + 2 and requests == 3 + 1
    assert all(s.body["model"] == "fake-embed" for s in server.seen)
    bodies = mailed(backend)
    assert MANIPULATION in bodies["reader0@example.com"]
    assert (
        "Close to your paper: Dexterous manipulation with tactile rewards"
        in bodies["reader1@example.com"]
    )
    lines = [u for u in usage(svc.engine, SAMPLE_DATE) if u.purpose == "foryou-embed"]
    assert len(lines) == 1 and lines[0].calls == requests and lines[0].model == MODEL
    assert lines[0].prompt_tokens > 0 and lines[0].failed == 0

    # A re-run (new readers with the same interests, the same day) makes no embedding call.
    third, fourth = add_readers(svc, 2, every, start=10)
    set_interests(svc.engine, third, text=text)
    set_interests(svc.engine, fourth, papers=liked)
    again = send(svc, SAMPLE_DATE, MemoryBackend())
    assert again.sent == 2 and again.for_you_blocks == 2
    assert server.count_of("embed") == requests
    # The manage page ranks from the cache alone.
    block = block_for(svc.engine, svc.settings, third)
    assert block is not None and MANIPULATION in [p.title for p in block.picks]
    assert server.count_of("embed") == requests


def test_a_failing_model_falls_back_to_bm25(svc: Services, server: FakeLLMServer) -> None:
    (reader,) = add_readers(svc, 1, (svc.taxonomy.slugs,))
    set_interests(svc.engine, reader, text="tactile sensing for dexterous robot hands")
    server.script(Step("status", task="embed", status=401))
    backend = MemoryBackend()
    report = send(svc, SAMPLE_DATE, backend)
    assert report.sent == 1 and report.for_you_blocks == 1
    assert MANIPULATION in mailed(backend)["reader0@example.com"]
    assert server.count_of("embed") == 1  # refused credentials: not retried, not asked again
    (line,) = [u for u in usage(svc.engine, SAMPLE_DATE) if u.purpose == "foryou-embed"]
    assert line.failed == 1


def test_the_manage_page_never_calls_the_model(svc: Services, server: FakeLLMServer) -> None:
    (reader,) = add_readers(svc, 1, (svc.taxonomy.slugs,))
    set_interests(svc.engine, reader, text="tactile sensing for dexterous robot hands")
    block = block_for(svc.engine, svc.settings, reader)  # nothing cached: BM25
    assert block is not None and block.picks[0].title == MANIPULATION
    assert server.count_of("embed") == 0

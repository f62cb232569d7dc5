"""What small, slow local models do, taught to the fake server: loops until the cap, every
category for one paper, fenced answers with trailing text, a second object appended,
labels in the taxonomy's order, an id twice, slow streaming that keeps writing, one slot."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter import llm_store
from newsletter.app import Services
from newsletter.categories import load_taxonomy
from newsletter.classify import batch_prompt, classify_llm, classify_one
from newsletter.classify_batches import TOKENS_PER_PAPER, batch_schema
from newsletter.llm_client import LLMClient
from newsletter.settings import Settings
from newsletter.summarize import llm_report, write_reports
from tests.fakes.llm_server import FakeLLMServer, Step, data_rows
from tests.llm.helpers import DAY, day_of, paper

TAXONOMY = load_taxonomy()
MODEL = "openai/test-model"


@pytest.fixture
def build(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LLMClient]]:
    services: list[Services] = []

    def make(**overrides: Any) -> LLMClient:
        svc = Services.build(make_settings(**overrides))
        services.append(svc)
        return LLMClient(svc.settings, svc.engine, DAY)

    yield make
    for svc in services:
        svc.engine.dispose()


def outcomes(client: LLMClient) -> list[str]:
    with client.engine.connect() as conn:
        rows = conn.execute(sa.select(llm_store.CALLS.c.outcome).order_by(llm_store.CALLS.c.id))
        return [r[0] for r in rows]


def test_requests_are_bounded_and_the_schema_is_tight(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    papers = day_of(6)
    classify_llm(papers, TAXONOMY, build(llm_temperature=0.1), 40)
    body = llm_server.seen[0].body
    assert body["max_tokens"] == TOKENS_PER_PAPER * 6 + 60
    assert body["temperature"] == 0.1
    assert body["stream"] is True
    schema = body["response_format"]["json_schema"]["schema"]
    items = schema["properties"]["papers"]
    assert items["minItems"] == items["maxItems"] == 6
    label = items["items"]["properties"]
    assert label["id"]["enum"] == [p.arxiv_id for p in papers]
    assert label["categories"]["items"]["enum"] == list(TAXONOMY.slugs)
    assert label["categories"]["maxItems"] == 2


def test_a_loop_until_the_cap_is_invalid_and_the_batch_is_split(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build()
    papers = day_of(8)
    llm_server.script(Step("loop", task="classify"))
    result = classify_llm(papers, TAXONOMY, client, 8)
    # the capped answer is not repaired (it would loop again): its halves are asked
    assert [len(data_rows(s.body)) for s in llm_server.seen] == [8, 4, 4]
    assert result.by_rules == 0
    assert outcomes(client) == ["capped", "ok", "ok"]
    (line,) = llm_store.usage(client.engine, DAY)
    assert line.failed == 1


def test_a_streamed_loop_is_cut_off_long_before_the_cap(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build()
    llm_server.script(Step("loop", task="classify"))
    classify_llm(day_of(8), TAXONOMY, client, 8)
    with client.engine.connect() as conn:
        error = conn.execute(
            sa.select(llm_store.CALLS.c.error).order_by(llm_store.CALLS.c.id).limit(1)
        ).scalar_one()
    assert "repeated the same words over and over" in error


def test_only_a_long_run_of_one_piece_counts_as_a_loop() -> None:
    from newsletter.llm import looping

    assert looping('{"papers": [{"id": "1", "categories": [' + '"computer-vision", ' * 20)
    assert looping("정리하면 " + "토플리케이션 " * 40)
    assert not looping('"computer-vision", ' * 5)  # a few repeats are an answer
    table = "| a | b |\n|---|---|\n" + "".join(f"| {i} | x{i} |\n" for i in range(40))
    assert not looping(table)
    prose = " ".join(f"Paper [2411.{i:05d}] improves step {i} of the method." for i in range(20))
    assert not looping(prose)
    assert not looping("-" * 120)  # a long rule is under the span


def test_every_category_for_one_paper_is_degenerate(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    llm_server.schema_supported = False  # JSON in the prompt: nothing enforces maxItems
    papers = day_of(8)
    llm_server.script(Step("all_categories", task="classify"))
    result = classify_llm(papers, TAXONOMY, build(llm_json_mode="prompt"), 8)
    sizes = [len(data_rows(s.body)) for s in llm_server.seen]
    assert sizes == [8, 4, 4]  # nothing of the answer was usable: halves
    assert result.by_rules == 0
    assert all(len(s) <= 2 for s in result.classification.values())


@pytest.mark.parametrize("kind", ["taxonomy_order", "duplicate_id"])
def test_labels_that_ignore_the_papers_are_not_trusted(
    kind: str, build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    papers = day_of(8)
    llm_server.script(Step(kind, task="classify"))
    result = classify_llm(papers, TAXONOMY, build(), 8)
    assert [len(data_rows(s.body)) for s in llm_server.seen] == [8, 4, 4]
    assert result.by_rules == 0


@pytest.mark.parametrize("kind", ["fenced_trailing", "second_object"])
def test_extra_text_around_the_first_object_is_ignored(
    kind: str, build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build()
    llm_server.script(Step(kind, task="classify"), Step(kind, task="report"))
    result = classify_llm(day_of(5), TAXONOMY, client, 40)
    report = llm_report(TAXONOMY.get("nlp"), day_of(4), "en", client)
    assert result.by_rules == 0 and report.made_by == MODEL
    assert llm_server.count == 2  # no repair turn was needed


def test_slow_streaming_that_keeps_writing_is_not_cut_off(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build(llm_timeout=0.5)
    # ~60 pieces, 0.05 s apart: ~3 s in all, far past the timeout, never 0.5 s silent
    llm_server.script(Step("slow_stream", task="report", seconds=0.05))
    report = llm_report(TAXONOMY.get("nlp"), day_of(4), "en", client)
    assert report.made_by == MODEL and llm_server.count == 1
    assert outcomes(client) == ["ok"]


def test_a_timeout_shrinks_the_batch_and_later_batches_start_smaller(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = build(llm_timeout=1.5)  # wide of a loaded machine's scheduling delays
    papers = day_of(16)
    llm_server.script(Step("hang", task="classify", seconds=6))
    result = classify_llm(papers, TAXONOMY, client, 8)
    # batch 1 timed out: its halves; batch 2 starts at the size that worked
    assert [len(data_rows(s.body)) for s in llm_server.seen] == [8, 4, 4, 4, 4]
    assert result.by_rules == 0 and not client.down()
    # a re-run (a fresh issue) finds the split answers in the cache: no call, no timeout
    again = classify_llm(papers, TAXONOMY, LLMClient(client.settings, client.engine, DAY), 8)
    assert llm_server.count == 5 and again.classification == result.classification


def test_repeated_stalls_on_the_smallest_work_mark_the_model_down(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = build(llm_timeout=1.0, llm_min_batch=2)  # wide of a loaded machine's delays
    llm_server.script(*[Step("hang", task="classify", seconds=5)] * 3)
    with caplog.at_level(logging.WARNING, logger="newsletter.classify"):
        result = classify_llm(day_of(4), TAXONOMY, client, 4)
    # 4 papers time out, then 2 (the floor) twice: stalled, down; nothing more is asked
    assert [len(data_rows(s.body)) for s in llm_server.seen] == [4, 2, 2]
    assert result.by_rules == 4
    assert "stalled 2 times" in client.down()[MODEL]
    (summary,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "NEWSLETTER_LLM_TIMEOUT" in summary and "NEWSLETTER_LLM_CONCURRENCY" in summary


def test_one_slot_server_drops_concurrency_to_one(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm_server.slots = 1
    client = build(llm_concurrency=4, llm_timeout=0.6)
    grouped = {slug: tuple(day_of(3)) for slug in ("nlp", "llm", "computer-vision")}
    # each answer takes ~1 s to write; the queued calls hear nothing meanwhile
    llm_server.script(*[Step("slow_stream", task="report", seconds=0.06)] * 3)
    with caplog.at_level(logging.WARNING):
        reports = write_reports(grouped, TAXONOMY, "en", client)
    assert all(r.made_by == MODEL for r in reports.values())
    assert client.concurrency == 1
    assert "one call at a time from now on" in caplog.text
    assert not client.down()


def test_copied_notable_lines_are_dropped(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    papers = day_of(4)
    llm_server.script(Step("copied", task="report"))
    report = llm_report(TAXONOMY.get("nlp"), papers, "en", build())
    assert report.made_by == MODEL and llm_server.count == 1
    assert report.notable == ()  # every notable line was an abstract copied
    assert report.findings  # the findings are the model's own and cite their papers


def test_a_report_that_cites_nothing_climbs_the_ladder(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build()
    llm_server.script(*[Step("no_citation", task="report")] * 2)
    report = llm_report(TAXONOMY.get("nlp"), day_of(4), "en", client)
    assert report.made_by == MODEL
    assert "cites none of its papers" in llm_server.seen[1].user  # the repair turn
    assert "response_format" not in llm_server.seen[2].body  # then JSON in the prompt
    assert outcomes(client) == ["invalid", "invalid", "ok"]


def test_the_plain_text_rung_is_parsed_leniently(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    client = build()
    papers = day_of(4)
    llm_server.script(*[Step("loop", task="report")] * 2)  # schema and JSON rungs hit the cap
    report = llm_report(TAXONOMY.get("nlp"), papers, "ko", client)
    assert "headings" in llm_server.seen[-1].system
    assert report.made_by == MODEL and report.conclusion and report.findings
    assert [n.arxiv_id for n in report.notable] == [p.arxiv_id for p in papers[:3]]
    assert report.keywords == ("벤치마크", "데이터", "확장성")


def test_a_label_against_strong_keyword_evidence_goes_to_the_rules(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer
) -> None:
    physics = paper(
        "2411.00001",
        "Quantum error correction decoders for superconducting qubits",
        "We decode quantum error correction syndromes of superconducting qubits with a "
        "neural decoder for quantum computing.",
        cls="quant-ph",
    )
    llm_server.script(
        Step("raw", content='{"papers": [{"id": "2411.00001", "categories": ["cybersecurity"]}]}')
    )
    result = classify_llm([physics], TAXONOMY, build(), 40)
    assert result.classification["2411.00001"] == classify_one(physics, TAXONOMY) == ("physics",)
    assert result.by_rules == 1


def test_prompt_names_the_batch_and_is_short(llm_server: FakeLLMServer) -> None:
    prompt = batch_prompt(day_of(2), TAXONOMY)
    assert "the order of the list above means nothing" in prompt.system
    assert len(batch_schema(day_of(2), TAXONOMY)["properties"]["papers"]["items"]) == 4


def test_a_run_that_spent_its_time_budget_falls_back_for_the_rest(
    build: Callable[..., LLMClient], llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = build(llm_run_budget=0.5)
    grouped = {slug: tuple(day_of(3)) for slug in ("nlp", "llm", "computer-vision")}
    # the first report takes a second to come; the budget is spent when it arrives
    llm_server.script(Step("hang", task="report", seconds=1.0))
    with caplog.at_level(logging.WARNING):
        reports = write_reports(grouped, TAXONOMY, "en", client)
    assert [r.made_by for r in reports.values()] == [MODEL, "extractive", "extractive"]
    assert llm_server.count == 1
    assert "NEWSLETTER_LLM_RUN_BUDGET=0.5 s" in caplog.text

"""LLM category reports: language, citations limited to the category, the token budget,
and the extractive fallback when the answer cannot be used."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from newsletter.categories import load_taxonomy
from newsletter.llm_client import LLMClient
from newsletter.settings import Settings
from newsletter.summarize import llm_report, write_reports
from tests.fakes.llm_server import UNSENT_ID, FakeLLMServer, Step, data_rows
from tests.llm.helpers import DAY, day_of

TAXONOMY = load_taxonomy()
NLP = TAXONOMY.get("nlp")


def _hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def test_report_is_in_the_language_and_cites_only_its_papers(
    llm_client: LLMClient, llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    papers = day_of(6)
    llm_server.script(Step("unsent_id", task="report"))
    with caplog.at_level(logging.WARNING, logger="newsletter.summarize"):
        report = llm_report(NLP, papers, "ko", llm_client)
    assert llm_server.count == 1
    request = llm_server.seen[0]
    assert "Write every text value in Korean" in request.system
    assert [r["id"] for r in data_rows(request.body)] == [p.arxiv_id for p in papers]
    ids = {p.arxiv_id for p in papers}
    assert [n.arxiv_id for n in report.notable] == [p.arxiv_id for p in papers[:3]]
    assert all(n.arxiv_id in ids for n in report.notable)
    assert not any(UNSENT_ID in text for text in (*report.findings, report.conclusion))
    assert len(report.findings) == 3  # the finding that only cited the unsent id lost it
    assert f"cited '{UNSENT_ID}', which is not in the category; removed" in caplog.text
    assert _hangul(report.conclusion)
    assert (report.covered, report.total, report.made_by) == (6, 6, "openai/test-model")
    assert report.themes and report.keywords and report.language == "ko"


def test_english_for_a_korean_report_is_repaired(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.script(Step("wrong_language", task="report"))
    report = llm_report(NLP, day_of(4), "ko", llm_client)
    assert llm_server.count == 2
    assert "not in Korean" in llm_server.seen[1].user
    assert _hangul(report.conclusion)


def test_english_report_passes_the_language_check(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    report = llm_report(NLP, day_of(4), "en", llm_client)
    assert llm_server.count == 1 and not _hangul(report.conclusion)


def test_unusable_report_falls_back_to_extractive(
    llm_client: LLMClient, llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    papers = day_of(5)
    # every rung of the ladder: schema, its repair, JSON in the prompt, plain text, then
    # the last rung's note on each paper
    llm_server.script(*[Step("wrong_language", task="report")] * 4)
    llm_server.script(*[Step("copied", task="note")] * 5)
    with caplog.at_level(logging.WARNING):
        reports = write_reports(
            {"nlp": tuple(papers), "llm": tuple(papers[:2])}, TAXONOMY, "ko", llm_client
        )
    assert reports["nlp"].made_by == "extractive"
    assert reports["nlp"].covered == 5 and reports["nlp"].notable
    assert reports["llm"].made_by == "openai/test-model"  # the other category is unaffected
    assert llm_server.count == 10
    ladder = [("response_format" in s.body, "headings" in s.system) for s in llm_server.seen[:4]]
    assert ladder == [(True, False), (True, False), (False, False), (False, True)]
    # one summary line for the language, not one per category
    summary = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert summary == [
        "1 of 2 ko reports quote the abstracts instead of the model's: no usable answer: "
        f"nlp (e.g. {summary[0].split('(e.g. ', 1)[1]}"
    ]


def test_large_category_is_cut_to_the_token_budget_most_relevant_first(
    make_settings: Callable[..., Settings], llm_server: FakeLLMServer
) -> None:
    from newsletter.app import Services

    svc = Services.build(make_settings(llm_max_input_tokens=2500))
    try:
        papers = day_of(40)
        report = llm_report(NLP, papers, "en", LLMClient(svc.settings, svc.engine, DAY))
    finally:
        svc.engine.dispose()
    rows = data_rows(llm_server.seen[0].body)
    assert 1 < report.covered < 40 and report.total == 40
    assert [r["id"] for r in rows] == [p.arxiv_id for p in papers[: report.covered]]
    assert "most relevant of the category's 40 papers" in llm_server.seen[0].user
    # notable papers may be any of the category's papers, covered or not
    assert all(n.arxiv_id in {p.arxiv_id for p in papers} for n in report.notable)

"""The LLM inside the whole run: what readers get, free re-runs (also in another
process), per-language reports, outages that still send, and `newsletter llm usage`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter import llm_store
from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest
from newsletter.issue_state import IssueContent, made_with
from newsletter.issues import ISSUES, get_issue
from newsletter.papers import upsert_papers
from newsletter.preview import load_sample
from newsletter.sending import send
from subscribers import readers
from tests.fakes.llm_server import FakeLLMServer, Step
from tests.llm.helpers import DAY

MODEL = "openai/test-model"
SAMPLE = 24  # papers in the bundled sample for DAY


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


def test_readers_in_two_languages_get_llm_reports_once(
    llm_services: Services, llm_server: FakeLLMServer
) -> None:
    load_sample(llm_services)
    readers.add_active(llm_services.engine, llm_services.taxonomy, "ko@example.com", language="ko")
    readers.add_active(llm_services.engine, llm_services.taxonomy, "en@example.com", language="en")
    backend = MemoryBackend()
    report = send(llm_services, DAY, backend)
    assert report.sent == 2
    digest = build_digest(llm_services, DAY, "en")
    assert digest is not None
    k = len(digest.sections)
    assert llm_server.count_of("classify") == math.ceil(SAMPLE / 40)
    assert llm_server.count_of("report") == 2 * k  # one per category and language
    by_to = {str(m["To"]): m for m in backend.outbox}
    english, korean = _text(by_to["en@example.com"]), _text(by_to["ko@example.com"])
    assert f"{SAMPLE} of {SAMPLE} papers sorted and {k} of {k} reports written by test-model." in (
        english
    )
    assert (
        f"test-model 모델이 논문 {SAMPLE}편 중 {SAMPLE}편을 분류하고 보고서 {k}개 중 {k}개를"
        in (korean)
    )
    calls = llm_server.count
    again = send(llm_services, DAY, backend)
    assert again.sent == 0 and llm_server.count == calls and len(backend.outbox) == 2


def test_outage_still_sends_and_the_footer_says_so(
    make_settings: Any, llm_server: FakeLLMServer
) -> None:
    svc = Services.build(make_settings(llm_max_retries=1, language="en"))
    try:
        load_sample(svc)
        readers.add_active(svc.engine, svc.taxonomy, "a@example.com", language="en")
        llm_server.script(*[Step("status", status=503)] * 2)
        backend = MemoryBackend()
        assert send(svc, DAY, backend).sent == 1
        assert llm_server.count == 2  # one round of retries, then the circuit breaker
        digest = build_digest(svc, DAY)
        assert digest is not None
        expected = f"{MODEL} (offline fallback for: classification, all reports)"
        assert digest.made_with == expected
        # the footer credits the model with nothing: it did nothing
        footer = _text(backend.outbox[0])
        assert "Offline mode: papers from arXiv, sorted into categories by keyword rules" in footer
        assert "test-model" not in footer
        assert all(s.report.made_by == "extractive" for s in digest.sections)
        issue = get_issue(svc.engine, DAY)
        assert issue is not None and issue.made_with == expected
        (line,) = llm_store.usage(svc.engine, DAY)
        assert (line.calls, line.failed, line.purpose) == (2, 2, "classify")
    finally:
        svc.engine.dispose()


def test_fallbacks_are_asked_again_on_a_later_build_until_sent(
    make_settings: Any, llm_server: FakeLLMServer
) -> None:
    svc = Services.build(make_settings(llm_max_retries=1, language="en"))
    try:
        load_sample(svc)
        llm_server.script(*[Step("status", status=503)] * 2)  # the model is down
        first = build_digest(svc, DAY)
        assert first is not None and all(s.report.made_by == "extractive" for s in first.sections)
        assert first.made_note.startswith("Offline mode")
        # the model is back: only the parts that fell back are asked (classification, then
        # every report of the new grouping); the footer now credits the model
        llm_server.reset()
        again = build_digest(svc, DAY)
        assert again is not None
        k = len(again.sections)
        assert llm_server.count_of("classify") == 1 and llm_server.count_of("report") == k
        assert all(s.report.made_by == MODEL for s in again.sections)
        assert again.made_note.startswith(f"{SAMPLE} of {SAMPLE} papers sorted and {k} of {k}")
        issue = get_issue(svc.engine, DAY)
        assert issue is not None and issue.made_with == MODEL
        # nothing fell back any more: a third build asks nothing
        calls = llm_server.count
        assert build_digest(svc, DAY) == again and llm_server.count == calls
    finally:
        svc.engine.dispose()


def test_a_report_that_fell_back_alone_is_asked_again_alone(
    llm_services: Services, llm_server: FakeLLMServer
) -> None:
    load_sample(llm_services)
    llm_server.script(*[Step("wrong_language", task="report")] * 4)  # the whole ladder fails
    llm_server.script(*[Step("copied", task="note")] * 5)  # and so does its last rung
    first = build_digest(llm_services, DAY)
    assert first is not None
    fell = [s.slug for s in first.sections if s.report.made_by == "extractive"]
    assert len(fell) == 1
    calls = llm_server.count
    again = build_digest(llm_services, DAY)
    assert again is not None and llm_server.count == calls + 1
    assert llm_server.seen[-1].task == "report"
    assert all(s.report.made_by == MODEL for s in again.sections)


def test_a_sent_issue_keeps_its_fallbacks(make_settings: Any, llm_server: FakeLLMServer) -> None:
    svc = Services.build(make_settings(llm_max_retries=1, language="en"))
    try:
        load_sample(svc)
        readers.add_active(svc.engine, svc.taxonomy, "a@example.com", language="en")
        llm_server.script(*[Step("status", status=503)] * 2)
        assert send(svc, DAY, MemoryBackend()).sent == 1
        llm_server.reset()
        digest = build_digest(svc, DAY)
        assert digest is not None and digest.made_note.startswith("Offline mode")
        assert llm_server.count == 0  # what readers got is what the archive keeps
    finally:
        svc.engine.dispose()


def test_reports_down_after_classification_marks_only_reports(
    llm_services: Services, llm_server: FakeLLMServer
) -> None:
    load_sample(llm_services)
    llm_server.script(*[Step("status", status=500, task="report")] * 3)
    digest = build_digest(llm_services, DAY)
    assert digest is not None
    assert digest.made_with == f"{MODEL} (offline fallback for: all reports)"
    assert llm_server.count == 1 + 3


# SQLite only: this test adds process independence (stable cache keys) to the fresh-row
# re-run that test_classify checks on both databases, and a new process pays litellm's import.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rerun_in_another_process_makes_no_call(
    llm_services: Services, llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    load_sample(llm_services)
    first = build_digest(llm_services, DAY)
    assert first is not None
    calls = llm_server.count
    with llm_services.engine.begin() as conn:
        conn.execute(sa.delete(ISSUES))  # a fresh issue row: nothing stored on it
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": llm_services.settings.database_url,
        "NEWSLETTER_FEEDS": "[]",
    }
    command = ["preview", "--date", DAY.isoformat(), "--out", str(tmp_path / "preview")]
    out = subprocess.run(
        [sys.executable, "-m", "newsletter.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert llm_server.count == calls
    again = build_digest(llm_services, DAY)
    assert again is not None and again.sections == first.sections
    hits = sum(u.cache_hits for u in llm_store.usage(llm_services.engine, DAY))
    assert hits == calls


def test_budget_cut_shows_in_the_email(make_settings: Any, llm_server: FakeLLMServer) -> None:
    from newsletter.digest import render_view
    from newsletter.models import ReaderView
    from tests.llm.helpers import day_of

    svc = Services.build(make_settings(llm_max_input_tokens=1500, language="en"))
    try:
        upsert_papers(svc.engine, day_of(60))
        digest = build_digest(svc, DAY)
        assert digest is not None
        cut = [s for s in digest.sections if s.report.covered < s.report.total]
        assert cut
        rendered = render_view(svc, digest, ReaderView((cut[0].slug,), "en"))
        r = cut[0].report
        assert f"This report covers {r.covered} of {r.total} papers." in rendered.text
    finally:
        svc.engine.dispose()


def test_the_footer_statement_says_exactly_what_the_model_did() -> None:
    from newsletter.issue_state import (
        ClassificationProvenance,
        Provenance,
        QualificationNote,
        ReportsProvenance,
    )

    made = Provenance(
        llm="openai/qwen",
        classification=ClassificationProvenance(papers=24, models=["openai/qwen"], rules=0),
        reports={
            "en": ReportsProvenance(
                categories=12, models=["openai/qwen"], extractive=["cybersecurity", "physics"]
            )
        },
    )
    assert made.statement("en") == (
        "24 of 24 papers sorted and 10 of 12 reports written by qwen; "
        "2 reports quote the abstracts (cybersecurity, physics)."
    )
    assert made.counts()["reports"] == {"en": {"model": 10, "offline": 2}}
    made.classification = ClassificationProvenance(
        papers=24,
        rules=24,
        unqualified=QualificationNote(model="openai/qwen", model_right=8, rules_right=16, total=19),
    )
    assert made.statement("en") == (
        "10 of 12 reports written by qwen; 24 papers sorted by keyword rules; openai/qwen placed "
        "8 of 19 calibration papers right, the keyword rules 16; 2 reports quote the abstracts "
        "(cybersecurity, physics)."
    )
    made.reports = {}
    assert made.statement("en").startswith("Offline mode") and "8 of 19" in made.statement("en")


def test_made_with_wording() -> None:
    def content(rules: int, extractive: list[str], models: list[str]) -> IssueContent:
        return IssueContent.model_validate(
            {
                "made": {
                    "llm": MODEL,
                    "classification": {"models": [MODEL], "rules": rules, "papers": 50},
                    "reports": {
                        "ko": {"models": models, "extractive": extractive, "categories": 4}
                    },
                }
            }
        )

    assert made_with(content(0, [], [MODEL]), "ko") == MODEL
    assert (
        made_with(content(12, ["nlp"], [MODEL]), "ko")
        == f"{MODEL} (offline fallback for: classification of 12 papers, report nlp)"
    )
    assert (
        made_with(content(0, ["nlp", "llm"], [MODEL]), "ko")
        == f"{MODEL} (offline fallback for: 2 reports)"
    )
    assert made_with(content(0, [], [MODEL]), "en") == MODEL  # no English reports yet
    stored_before = IssueContent.load('{"made_with": "offline"}')
    assert made_with(stored_before, "ko") == "offline"  # issues stored before
    offline = {"made": {"llm": "", "classification": {"models": [], "rules": 3}, "reports": {}}}
    assert made_with(IssueContent.model_validate(offline), "ko") == "offline"


def test_llm_usage_command(
    llm_services: Services,
    llm_server: FakeLLMServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_sample(llm_services)
    build_digest(llm_services, DAY)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", llm_services.settings.database_url)
    assert main(["llm", "usage", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_purpose = {row["purpose"]: row for row in data}
    assert set(by_purpose) == {"classify", "report"}
    assert by_purpose["classify"]["calls"] == 1 and by_purpose["classify"]["day"] == "2024-11-22"
    assert by_purpose["report"]["calls"] == llm_server.count - 1
    assert by_purpose["report"]["prompt_tokens"] > 0 and by_purpose["report"]["cost_usd"] is None
    assert main(["llm", "usage", "--date", "2024-11-22", "--json"]) == 0
    dated = json.loads(capsys.readouterr().out)
    assert {row["purpose"] for row in dated["calls"]} == {"classify", "report"}
    k = by_purpose["report"]["calls"]
    assert dated["provenance"]["classification"] == {"model": 24, "rules": 0}
    assert dated["provenance"]["reports"] == {"ko": {"model": k, "offline": 0}}
    assert main(["llm", "usage", "--date", "2024-11-22"]) == 0
    text = capsys.readouterr().out
    assert "classify" in text and "unknown" in text and MODEL in text
    assert main(["llm", "usage", "--date", "2024-11-23"]) == 0
    assert "no LLM calls recorded for 2024-11-23" in capsys.readouterr().out
    assert main(["llm", "usage", "--date", "yesterday"]) == 2
    assert "invalid date" in capsys.readouterr().err


def test_rebuild_command(
    make_settings: Any,
    llm_server: FakeLLMServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc = Services.build(make_settings(llm_max_retries=1, language="en"))
    try:
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", svc.settings.database_url)
        monkeypatch.setenv("NEWSLETTER_LANGUAGE", "en")
        load_sample(svc)
        llm_server.script(*[Step("no_citation", task="report")] * 4)  # one report falls back
        build_digest(svc, DAY)
        calls = llm_server.count
        # a rebuild of the reports asks only the one that fell back; the rest are cached
        assert main(["rebuild", "--date", "2024-11-22", "--part", "reports"]) == 0
        assert llm_server.count == calls + 1
        assert "reports written by test-model." in capsys.readouterr().out
        readers.add_active(svc.engine, svc.taxonomy, "a@example.com", language="en")
        assert send(svc, DAY, MemoryBackend()).sent == 1
        assert main(["rebuild", "--date", "2024-11-22"]) == 2
        assert "already mailed" in capsys.readouterr().err
        assert main(["rebuild", "--date", "2024-11-22", "--archive-only"]) == 0
        assert llm_server.count == calls + 1  # the classification and reports were cached
        issue = get_issue(svc.engine, DAY)
        assert issue is not None and issue.status == "sent"
        assert "en" in IssueContent.load(issue.content).rendered
    finally:
        svc.engine.dispose()

"""An issue's stored content: legacy rows read with their defaults, a round trip keeps
everything, and the update under the row lock works on the typed model."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.issue_state import (
    ClassificationProvenance,
    IssueContent,
    Provenance,
    Rendering,
    ReportsProvenance,
    made_with,
    rules_provenance,
)
from newsletter.issues import get_issue, update_content, update_issue
from newsletter.models import CategoryReport, NotablePaper
from newsletter.preview import load_sample

DATE = dt.date(2024, 11, 22)

REPORT = {
    "slug": "nlp",
    "language": "ko",
    "themes": ["parsing"],
    "keywords": ["tokens"],
    "findings": ["a finding"],
    "notable": [{"arxiv_id": "2411.00001", "line": "why it matters"}],
    "conclusion": "in short",
    "covered": 1,
    "total": 1,
}


def test_a_row_stored_before_windows_and_provenance_reads_with_defaults() -> None:
    legacy = {
        "classification": {"2411.00001": ["nlp"]},
        "made_with": "openai/old-model",
        "reports": {"ko": {"nlp": REPORT}},  # no made_by: written before it was stored
        "charts": {"ko": "iVBORw0="},
    }
    content = IssueContent.load(json.dumps(legacy))
    assert content.window(DATE) == DATE - dt.timedelta(days=1)  # its own day only
    assert made_with(content, "ko") == "openai/old-model"
    report = content.reports["ko"]["nlp"]
    assert report.made_by == "extractive"
    assert report.notable == (NotablePaper("2411.00001", "why it matters"),)
    assert content.classification == {"2411.00001": ("nlp",)}
    assert content.weekly is None and content.rendered == {}


def test_an_empty_row_is_nothing_stored_yet() -> None:
    for raw in (None, "", "{}"):
        content = IssueContent.load(raw)
        assert content.classification is None and content.window(DATE) is None
        assert made_with(content, "ko") == "offline"
        assert content.dump() == '{"reports":{},"charts":{},"rendered":{}}'


def test_round_trip_keeps_every_stage_and_unknown_keys() -> None:
    report = CategoryReport(
        slug="nlp",
        language="ko",
        themes=("a",),
        keywords=("b",),
        findings=("c",),
        notable=(NotablePaper("2411.00001", "line"),),
        conclusion="한국어 결론",
        covered=1,
        total=2,
        made_by="openai/x",
    )
    content = IssueContent(
        window_after=DATE - dt.timedelta(days=3),
        classification={"2411.00001": ("nlp", "llm")},
        made=Provenance(
            llm="openai/x",
            classification=rules_provenance(["2411.00001"], ["openai/x"], 0),
            reports={"ko": ReportsProvenance.of({"nlp": report})},
        ),
        reports={"ko": {"nlp": report}},
        rendered={"ko": Rendering(subject="s", html="<html></html>", text="t")},
    )
    content.set_chart("ko", b"\x89PNG")
    content.weekly_state().classification = {"2411.00001": ("nlp",)}
    raw = content.dump()
    assert "한국어" in raw  # stored as UTF-8 text, not escaped
    data = json.loads(raw)
    data["written_by_a_newer_version"] = {"kept": True}
    again = IssueContent.load(json.dumps(data))
    assert again.model_dump(exclude={"written_by_a_newer_version"}) == content.model_dump()
    assert again.chart_png("ko") == b"\x89PNG"
    assert json.loads(again.dump())["written_by_a_newer_version"] == {"kept": True}
    assert made_with(again, "ko") == "openai/x"


def test_provenance_keeps_what_the_rules_and_the_abstracts_did() -> None:
    reports = {
        "nlp": CategoryReport("nlp", "en", (), (), (), (), "", 1, 1, made_by="openai/x"),
        "llm": CategoryReport("llm", "en", (), (), (), (), "", 1, 1),
    }
    written = ReportsProvenance.of(reports)
    assert (written.categories, written.by_model, written.extractive) == (2, 1, ["llm"])
    assert written.models == ["openai/x"]
    ids = ["a", "b", "c"]
    assert rules_provenance(ids, ["m"], 0).rules_ids == []
    assert rules_provenance(ids, [], 3).rules_ids == ids
    partly = rules_provenance(ids, ["m"], 1)
    assert (partly.rules, partly.by_model, partly.rules_ids) == (1, 2, None)
    # A row written before papers were counted still reads.
    assert ClassificationProvenance.model_validate({"models": [], "rules": 3}).papers == 0


def test_a_malformed_row_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(ValidationError):
        IssueContent.load('{"classification": "not a mapping"}')


def test_a_legacy_row_is_built_on_not_recomputed(services: Services) -> None:
    """An issue stored before windows and provenance keeps its classification and reports."""
    date = load_sample(services)
    first = build_digest(services, date)
    assert first is not None
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.id is not None
    legacy = json.loads(issue.content)
    for key in ("window_after", "made"):
        legacy.pop(key)
    legacy["made_with"] = "openai/old-model"
    for report in legacy["reports"][first.language].values():
        report.pop("made_by")
    update_issue(services.engine, issue.id, content=json.dumps(legacy))
    again = build_digest(services, date)
    assert again is not None
    assert again.sections == first.sections and again.covers_from is None
    assert again.made_with == "openai/old-model"


def test_update_content_that_keeps_the_stored_content_still_writes_the_columns(
    services: Services,
) -> None:
    date = load_sample(services)
    assert build_digest(services, date) is not None
    issue = get_issue(services.engine, date)
    assert issue is not None and issue.id is not None
    before = issue.content
    kept = update_content(services.engine, issue.id, lambda _stored: None, paper_count=7)
    after = get_issue(services.engine, date)
    assert after is not None and after.content == before and after.paper_count == 7
    assert kept.classification == IssueContent.load(before).classification


@pytest.mark.parametrize("module", ["newsletter.db", "newsletter.published"])
def test_core_modules_do_not_load_the_pipeline(module: str) -> None:
    heavy = ["newsletter.pipeline", "newsletter.llm", "httpx", "litellm"]
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

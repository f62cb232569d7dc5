"""Per-reader language: each chosen language is written once; an unread one costs nothing.

Runs the real LLM client against the local fake OpenAI-compatible server, so the
requests counted here are the LLM bill.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest
from newsletter.issues import get_issue, update_issue
from newsletter.preview import load_sample
from newsletter.sending import send
from newsletter.settings import load_settings
from subscribers import readers
from tests.fakes.llm_server import LANGUAGE, FakeLLMServer

from .conftest import issue_content, make_app

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_services(
    database_url: str, tmp_path: Path, llm_server: FakeLLMServer
) -> Iterator[Services]:
    llm_server.reset()
    settings = load_settings(
        database_url=database_url,
        outbox_dir=tmp_path / "outbox",
        feeds=[],
        mail_backend="memory",
        llm_model="openai/test-model",
        llm_api_base=llm_server.base_url,
        llm_api_key="sk-test",
        llm_retry_wait=0,
        llm_timeout=5,
        llm_max_retries=1,
        llm_concurrency=1,
    )
    svc = Services.build(settings)
    yield svc
    svc.engine.dispose()


def _report_languages(server: FakeLLMServer) -> list[str]:
    found = []
    for seen in server.seen:
        if seen.task == "report":
            match = LANGUAGE.search(seen.system + seen.user)
            found.append(match.group(1) if match else "?")
    return found


def _readers(svc: Services, *languages: str) -> None:
    for i, language in enumerate(languages):
        readers.add_active(svc.engine, svc.taxonomy, f"reader{i}@example.org", None, language)


def _send(svc: Services) -> tuple[dt.date, MemoryBackend]:
    date = load_sample(svc)
    backend = MemoryBackend()
    report = send(svc, date, backend)
    assert report.ok, report
    return date, backend


def test_a_language_nobody_reads_is_never_written(
    llm_services: Services, llm_server: FakeLLMServer
) -> None:
    _readers(llm_services, "ko", "ko")
    date, backend = _send(llm_services)
    assert len(backend.outbox) == 2
    assert set(_report_languages(llm_server)) == {"ko"}
    reports = issue_content(llm_services, date)["reports"]
    assert isinstance(reports, dict) and set(reports) == {"ko"}


def test_each_chosen_language_is_written_once(
    llm_services: Services, llm_server: FakeLLMServer
) -> None:
    _readers(llm_services, "ko", "en", "en", "ko", "en")
    date, backend = _send(llm_services)
    assert len(backend.outbox) == 5
    languages = _report_languages(llm_server)
    digest = build_digest(llm_services, date, "ko")
    assert digest is not None
    sections = len(digest.sections)
    assert sorted(languages) == ["en"] * sections + ["ko"] * sections
    assert llm_server.count_of("classify") >= 1
    classified = llm_server.count_of("classify")
    subjects = sorted(str(m["Subject"]) for m in backend.outbox)
    assert sum("new papers" in s for s in subjects) == 3
    assert sum("새 논문" in s for s in subjects) == 2
    # The web archive reads the stored editions: no further request.
    with TestClient(make_app(llm_services)) as client:
        for lang in ("ko", "en"):
            assert client.get(f"/issues/{date}?lang={lang}").status_code == 200
    assert _report_languages(llm_server) == languages
    assert llm_server.count_of("classify") == classified


def test_llm_cache_is_keyed_by_language(llm_services: Services, llm_server: FakeLLMServer) -> None:
    """Re-writing both editions costs nothing, and neither gets the other's text."""
    date = load_sample(llm_services)
    ko = build_digest(llm_services, date, "ko")
    en = build_digest(llm_services, date, "en")
    assert ko is not None and en is not None
    asked = llm_server.count
    issue = get_issue(llm_services.engine, date)
    assert issue is not None and issue.id is not None
    content = json.loads(issue.content)
    content["reports"], content["charts"] = {}, {}
    update_issue(llm_services.engine, issue.id, content=json.dumps(content))
    again_en = build_digest(llm_services, date, "en")
    again_ko = build_digest(llm_services, date, "ko")
    assert again_en is not None and again_ko is not None
    assert llm_server.count == asked  # every answer came from the LLM cache
    assert [s.report for s in again_en.sections] == [s.report for s in en.sections]
    assert [s.report for s in again_ko.sections] == [s.report for s in ko.sections]
    en_text = " ".join(s.report.conclusion for s in again_en.sections)
    ko_text = " ".join(s.report.conclusion for s in again_ko.sections)
    assert not HANGUL.search(en_text) and HANGUL.search(ko_text)
    assert all(s.report.made_by != "extractive" for s in again_en.sections)

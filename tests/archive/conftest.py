"""Archive fixtures: the router on an app, the sample day as a public issue, quick fake issues."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.issue_state import IssueContent
from newsletter.issues import ensure_issue, get_issue, update_issue
from newsletter.models import CategoryReport
from newsletter.preview import load_sample

SAMPLE_DATE = dt.date(2024, 11, 22)


def make_app(svc: Services) -> FastAPI:
    """The web app when it exists, else a bare app with the same ``app.state``."""
    try:
        from subscribers.web_app import create_app
    except ImportError:
        from subscribers.archive import router

        app = FastAPI()
        app.state.services = svc
        app.include_router(router)
        return app
    from newsletter.delivery.memory import MemoryBackend

    return create_app(svc, MemoryBackend())


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(make_app(services)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def _sample_issue_row(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The sample day's issue row as the real build_digest leaves it, built once per session.

    Building costs ~0.5 s (chart, reports); each test copies the stored result instead.
    """
    from newsletter.settings import load_settings

    url = f"sqlite:///{tmp_path_factory.mktemp('sample') / 'sample.db'}"
    svc = Services.build(load_settings(database_url=url, feeds=[], mail_backend="memory"))
    try:
        date = load_sample(svc)
        assert build_digest(svc, date) is not None
        issue = get_issue(svc.engine, date)
        assert issue is not None
        return {
            "content": issue.content,
            "status": issue.status,
            "paper_count": issue.paper_count,
            "made_with": issue.made_with,
        }
    finally:
        svc.engine.dispose()


@pytest.fixture
def sample_issue(services: Services, _sample_issue_row: dict[str, object]) -> dt.date:
    """The bundled sample feed stored with its default-language issue: one public issue."""
    date = load_sample(services)
    assert date == SAMPLE_DATE
    issue = ensure_issue(services.engine, date)
    assert issue.id is not None
    update_issue(services.engine, issue.id, **_sample_issue_row)
    return date


def issue_content(svc: Services, date: dt.date) -> dict[str, object]:
    issue = get_issue(svc.engine, date)
    assert issue is not None
    content: dict[str, object] = json.loads(issue.content)
    return content


def fake_issue(
    svc: Services,
    date: dt.date,
    counts: dict[str, int],
    *,
    status: str = "sent",
    language: str = "ko",
) -> None:
    """An issue row as build_digest leaves it, without papers or chart: cheap list/feed data."""
    issue = ensure_issue(svc.engine, date)
    assert issue.id is not None
    classification: dict[str, tuple[str, ...]] = {}
    for slug, n in counts.items():
        for i in range(n):
            classification[f"{date.isoformat()}-{slug}-{i}"] = (slug,)
    reports = {
        slug: CategoryReport(
            slug, language, (), (), (), (), f"Conclusion about {slug} on {date.isoformat()}.", n, n
        )
        for slug, n in counts.items()
    }
    content = IssueContent(classification=classification, reports={language: reports})
    update_issue(
        svc.engine,
        issue.id,
        content=content.dump(),
        status=status,
        paper_count=sum(counts.values()),
    )

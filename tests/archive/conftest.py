"""Archive fixtures: the router on an app, the sample day as a public issue, quick fake issues."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsletter import store
from newsletter.pipeline import Services, build_digest, load_sample

SAMPLE_DATE = dt.date(2024, 11, 22)


def make_app(svc: Services) -> FastAPI:
    """The web app when it exists, else a bare app with the same ``app.state``."""
    try:
        from subscribers.web import create_app
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


@pytest.fixture
def sample_issue(services: Services) -> dt.date:
    """The bundled sample feed stored and its default-language digest built: one public issue."""
    date = load_sample(services)
    assert date == SAMPLE_DATE
    assert build_digest(services, date) is not None
    return date


def issue_content(svc: Services, date: dt.date) -> dict[str, object]:
    issue = store.get_issue(svc.engine, date)
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
    issue = store.ensure_issue(svc.engine, date)
    assert issue.id is not None
    classification: dict[str, list[str]] = {}
    for slug, n in counts.items():
        for i in range(n):
            classification[f"{date.isoformat()}-{slug}-{i}"] = [slug]
    reports = {
        slug: {"conclusion": f"Conclusion about {slug} on {date.isoformat()}."} for slug in counts
    }
    content = {"classification": classification, "reports": {language: reports}, "charts": {}}
    store.update_issue(
        svc.engine,
        issue.id,
        content=json.dumps(content),
        status=status,
        paper_count=sum(counts.values()),
    )

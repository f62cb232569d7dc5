"""Fixtures for collection tests: the local feed server and a fetcher that never sleeps."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from newsletter.app import Services
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import FeedServer


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    """Three attempts, no back-off: retries are exercised without real waiting."""
    with Fetcher(timeout=10, attempts=3, initial_wait=0, max_wait=0) as f:
        yield f


def configured(svc: Services, **settings: Any) -> Services:
    """The same services (same database) with some settings changed."""
    return dataclasses.replace(svc, settings=svc.settings.model_copy(update=settings))

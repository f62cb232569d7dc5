"""The web app under TestClient, with a memory mail backend, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.delivery.memory import MemoryBackend
from subscribers import readers
from subscribers.web_app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^/\s]+(/(?:confirm|manage|unsubscribe)/[A-Za-z0-9_.\-]+)")


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def link_path(msg: EmailMessage, kind: str) -> str:
    """The path of the ``kind`` link (confirm, manage, unsubscribe) in a mail's text part."""
    for path in LINK.findall(text_of(msg)):
        if path.startswith(f"/{kind}/"):
            return str(path)
    raise AssertionError(f"no {kind} link in: {text_of(msg)}")


def title_of(response: httpx2.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text[:500]
    return found.group(1).strip()


@dataclasses.dataclass
class Web:
    """A TestClient on the app plus the things a test looks at afterwards."""

    svc: Services
    backend: MemoryBackend
    client: TestClient

    def csrf(self, path: str = "/") -> str:
        found = CSRF.search(self.client.get(path).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    def subscribe(
        self,
        email: str,
        categories: Iterable[str] = ("nlp",),
        language: str = "en",
        **extra: Any,
    ) -> httpx2.Response:
        data: dict[str, Any] = {
            "csrf_token": self.csrf(),
            "email": email,
            "categories": list(categories),
            "language": language,
        }
        data.update(extra)
        return self.client.post("/subscribe", data=data)

    def confirm(self, path: str) -> httpx2.Response:
        """Open the confirm page, then press its button (a used link has no button)."""
        found = CSRF.search(self.client.get(path).text)
        token = found.group(1) if found else self.csrf()
        return self.client.post(path, data={"csrf_token": token})

    def subscribe_and_confirm(
        self, email: str, categories: Iterable[str] = ("nlp",), language: str = "en"
    ) -> readers.SubscriberInfo:
        assert self.subscribe(email, categories, language).status_code == 200
        assert self.confirm(link_path(self.backend.outbox[-1], "confirm")).status_code == 200
        info = self.reader(email)
        assert info is not None and info.status == "active"
        return info

    def reader(self, email: str) -> readers.SubscriberInfo | None:
        return readers.get_by_email(self.svc.engine, email)

    def count(self) -> int:
        return len(readers.list_subscribers(self.svc.engine))

    def manage_path(self, subscriber_id: int) -> str:
        return f"/manage/{self.svc.signer.sign(subscriber_id, 'manage')}"

    def unsubscribe_path(self, subscriber_id: int) -> str:
        return f"/unsubscribe/{self.svc.signer.sign(subscriber_id, 'unsubscribe')}"


def make_web(services: Services, **settings: Any) -> Web:
    svc = services
    if settings:
        svc = dataclasses.replace(services, settings=services.settings.model_copy(update=settings))
    backend = MemoryBackend()
    return Web(svc, backend, TestClient(create_app(svc, backend)))


@pytest.fixture
def web(services: Services) -> Iterator[Web]:
    """The app on SQLite and on PostgreSQL: for everything that reads or writes readers."""
    w = make_web(services)
    yield w
    w.client.close()


@pytest.fixture
def page_web(sqlite_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on SQLite only: for pages and headers that never touch the database."""
    from newsletter.settings import load_settings

    svc = Services.build(
        load_settings(
            database_url=sqlite_url,
            outbox_dir=tmp_path / "outbox",
            feeds=[],
            mail_backend="memory",
        )
    )
    w = make_web(svc)
    yield w
    w.client.close()
    svc.engine.dispose()

"""Shared fixtures: databases (SQLite and PostgreSQL, one schema per test) and services.

Real parts only: a fresh SQLite file per test and a fresh PostgreSQL schema per
test, so tests cannot see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.settings import Settings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NEWSLETTER_* from the developer's shell or .env leaks into a test."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_") and key != "NEWSLETTER_TEST_PG_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def _pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def pg_schema_url() -> Generator[str, None, None]:
    """A URL whose search_path is a brand-new schema, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        yield from pg_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    from newsletter.settings import load_settings

    return load_settings(
        database_url=database_url,
        outbox_dir=tmp_path / "outbox",
        feeds=[],
        mail_backend="memory",
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    from newsletter.app import Services

    svc = Services.build(settings)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def sample_feed() -> bytes:
    from importlib import resources

    return resources.files("newsletter").joinpath("data/sample-arxiv.xml").read_bytes()


#: Files whose tests start real processes and kill them (seconds each): the fast lane
#: (``./scripts/test -m "not slow"``) leaves them out, the full run keeps them.
SLOW_FILES = {"test_crash.py", "test_processes.py", "test_shutdown.py", "test_web_server.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Real-browser tests and the process-killing files are ``slow``."""
    for item in items:
        if item.get_closest_marker("browser") or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)

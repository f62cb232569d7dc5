"""The database: engine, migrations and the tables of papers and issues.

One code path for SQLite and PostgreSQL. The engine is made by ``make_engine`` from
settings at start, never at import time.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from newsletter.errors import DatabaseError

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table behind a SQLModel class, typed (sqlmodel leaves ``__table__`` untyped).

    Each table's owning module calls this once and keeps the result as a module constant.
    """
    mapper = sa.inspect(model)
    table = mapper.local_table if mapper is not None else None
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def insert_ignore(engine: Engine, table: sa.Table) -> Any:
    """An INSERT that skips rows whose key already exists, on SQLite and PostgreSQL."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class PaperRow(SQLModel, table=True):
    __tablename__ = "papers"

    arxiv_id: str = Field(primary_key=True, max_length=64)
    version: int = 1
    title: str
    abstract: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    authors: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # JSON list
    primary_class: str = ""
    classes: str = ""  # space-separated
    announce_type: str = "new"
    abs_url: str = ""
    pdf_url: str = ""
    source: str = ""
    announced: dt.date = Field(index=True)
    first_seen: dt.datetime = Field(default_factory=utcnow)


class IssueRow(SQLModel, table=True):
    """One issue per announcement date; ``content`` holds each stage's stored output."""

    __tablename__ = "issues"

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date = Field(sa_column=sa.Column(sa.Date, unique=True, nullable=False))
    status: str = "collected"
    content: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    made_with: str = "offline"
    paper_count: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)
    sent_at: dt.datetime | None = None


class FeedStateRow(SQLModel, table=True):
    """Conditional-GET validators per feed URL, so an unchanged feed costs a 304."""

    __tablename__ = "feed_state"

    url: str = Field(primary_key=True, max_length=2000)
    etag: str = ""
    last_modified: str = ""
    fetched_at: dt.datetime = Field(default_factory=utcnow)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    _use_wal(cur)
    cur.close()


@retry(
    retry=retry_if_exception(
        lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    ),
    wait=wait_random(0.01, 0.1),
    stop=stop_after_delay(10),
    reraise=True,
)
def _use_wal(cur: sqlite3.Cursor) -> None:
    """Switch a file to WAL once (the mode is stored in the file).

    Switching needs an exclusive lock and SQLite answers "database is locked" at once,
    without waiting out ``busy_timeout``, when processes open a new file together; so
    skip the switch when the file is already in WAL and retry it briefly otherwise.
    """
    if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        cur.execute("PRAGMA journal_mode=WAL")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; psycopg 3 is used for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise DatabaseError(
            f"cannot use NEWSLETTER_DATABASE_URL={_redact(url)}: {exc}; "
            "use e.g. sqlite:///newsletter.db or postgresql://user@host/db"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


#: Key of the PostgreSQL advisory lock that serialises migrations between replicas.
_MIGRATION_LOCK = 0x6E6C_6D69


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest Alembic revision (idempotent).

    On PostgreSQL an advisory lock makes replicas that start together migrate one
    after the other instead of racing on the same DDL. An unreachable database is a
    ``DatabaseError`` that names the URL (password hidden) and what to check.
    """
    try:
        if not _at_head(engine):
            _upgrade(engine)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        raise DatabaseError(
            f"cannot reach the database {_redact(str(engine.url))}: {reason}; "
            "check NEWSLETTER_DATABASE_URL and that the server is running"
        ) from exc


def _upgrade(engine: Engine) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("newsletter").joinpath("migrations"))
    )
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            conn.commit()
        else:
            # SQLite: take the write lock before reading alembic_version, so two
            # processes cannot both decide to create the same tables.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                conn.commit()


def _at_head(engine: Engine) -> bool:
    """Whether the stored revision is already ``migrations.HEAD``: one query, no Alembic.

    Any error (no ``alembic_version`` table yet, an unreachable server) means "not known
    to be at head", and the full migration path runs and reports it.
    """
    from newsletter.migrations import HEAD

    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            return list(stored) == [HEAD]
    except SQLAlchemyError:
        return False


def is_managed(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic filter: objects in the database but not in the models (APScheduler's job
    table, the search index and its column) belong to other code and are left alone."""
    return not (reflected and compare_to is None)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise DatabaseError(f"database error: {exc.orig}; is the database reachable?") from exc
        except BaseException:
            session.rollback()
            raise

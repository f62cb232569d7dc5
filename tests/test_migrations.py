"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from newsletter.db import import_table_modules, init_schema, is_managed, make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    init_schema(engine)
    init_schema(engine)  # idempotent: a second start changes nothing
    import_table_modules()
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": is_managed}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; run ./scripts/new-migration: {diff}"


def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def start(engine: object) -> None:
        try:
            init_schema(engine)  # type: ignore[arg-type]
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert errors == []

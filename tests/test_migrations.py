"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from newsletter.app import prepare_database
from newsletter.db import is_managed, make_engine
from newsletter.schema import import_table_modules


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    prepare_database(engine)
    prepare_database(engine)  # idempotent: a second start changes nothing
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

    def start(engine: Engine) -> None:
        try:
            prepare_database(engine)
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


def test_head_constant_names_the_newest_revision() -> None:
    """``migrations.HEAD`` lets a start skip Alembic; it must follow every new revision."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from newsletter.migrations import HEAD

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("newsletter").joinpath("migrations"))
    )
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD], (
        "set newsletter/migrations/__init__.py HEAD to the newest revision"
    )


def test_a_database_at_head_starts_without_alembic(tmp_path: object) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/at-head.db"
    prepare_database(make_engine(url))
    code = (
        "import sys; from newsletter.db import make_engine, migrate; "
        f"migrate(make_engine({url!r})); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

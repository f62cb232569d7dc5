"""The composition root: what every stage needs, built once from settings.

``Services.build`` is the one place that opens the database (and brings its schema
up to date), loads the taxonomy and makes the link signer; commands, the daemon and
the web app receive a ``Services`` and pass it down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from newsletter.categories import Taxonomy, load_taxonomy
from newsletter.db import make_engine, migrate
from newsletter.settings import Settings
from subscribers.tokens import Signer


def prepare_database(engine: Engine) -> None:
    """Create or upgrade the schema and the search index (idempotent).

    The search index is DDL that Alembic does not manage (an FTS5 table and triggers,
    or a generated column), so it is ensured here, above the database layer.
    """
    from newsletter.search import ensure_index

    migrate(engine)
    ensure_index(engine)


@dataclass
class Services:
    """What every stage needs, built once from settings."""

    settings: Settings
    engine: Engine
    taxonomy: Taxonomy
    signer: Signer

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Open the database (upgrading its schema), load the taxonomy, make the signer."""
        engine = make_engine(settings.database_url)
        prepare_database(engine)
        return cls(
            settings=settings,
            engine=engine,
            taxonomy=load_taxonomy(settings.categories_file),
            signer=Signer(settings.secret_key, settings.old_secret_keys),
        )

    def archive_url(self, date: dt.date) -> str:
        """The public archive page of the issue of ``date``."""
        return f"{self.settings.base_url}/issues/{date.isoformat()}"

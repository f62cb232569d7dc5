"""Alembic environment: run by ``newsletter.db.migrate`` with an open connection.

Tables that are not in our metadata (APScheduler's job table, the full-text
search index) are managed by their own code and ignored here.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from newsletter.db import is_managed
from newsletter.schema import import_table_modules

import_table_modules()

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=is_managed,
)
with context.begin_transaction():
    context.run_migrations()

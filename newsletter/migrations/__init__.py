"""Alembic migrations of the schema.

``HEAD`` names the newest revision, so a start whose database is already there costs one
query and no Alembic import (``db.migrate``). ``./scripts/new-migration`` prints the new
revision; set ``HEAD`` to it (``tests/test_migrations.py`` fails until you do).
"""

HEAD = "b30c3b0bf0b6"

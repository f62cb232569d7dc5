"""Every module that defines tables, gathered for Alembic.

The database layer (``newsletter.db``) names no feature module; this module, above every
area, is where the migration environment and the schema test learn of all tables.
"""

from __future__ import annotations


def import_table_modules() -> None:
    """Import every module that defines tables, so SQLModel.metadata knows them all."""
    import newsletter.llm_store  # noqa: F401  (LLM cache and call ledger)
    import subscribers.models  # noqa: F401  (subscribers and their events)
    from newsletter import locks, runs  # noqa: F401  (run claims, service runs, heartbeats)
    from newsletter.delivery import tables  # noqa: F401  (deliveries, send runs, provider events)
    from subscribers import interests  # noqa: F401  (readers' interests, for "For you")

"""llm embeddings: the embedding cache of For you, by model and text hash

Revision ID: b15e3bedd1e5
Revises: a15f0a11da7a
Create Date: 2026-12-07 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "b15e3bedd1e5"
down_revision = "a15f0a11da7a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "text_hash", name="uq_llm_embeddings"),
    )


def downgrade() -> None:
    op.drop_table("llm_embeddings")

"""reader interests: free text and liked papers per reader, for For you

Revision ID: a15f0a11da7a
Revises: 6098f536801b
Create Date: 2026-12-07 11:05:49.526961
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "a15f0a11da7a"
down_revision = "6098f536801b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reader_interests",
        sa.Column("subscriber_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("papers", sa.JSON(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id"),
    )


def downgrade() -> None:
    op.drop_table("reader_interests")

"""subscriber weekday: the day a weekly reader is mailed (0 = Monday), default Monday

Revision ID: 6098f536801b
Revises: facef21f1df4
Create Date: 2026-11-28 18:21:49.691879
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "6098f536801b"
down_revision = "facef21f1df4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weekday", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("weekday")

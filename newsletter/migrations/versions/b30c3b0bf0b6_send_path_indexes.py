"""send path indexes: pages of active readers by (status, id); no ledger index on a
column whose newest values the planner cannot know

A send's queries must cost the same for its millionth reader as for its first.

- The keyset page of active readers (``status = 'active' AND id > :last ORDER BY id
  LIMIT n``) was served on PostgreSQL by the index on status alone: every page fetched
  every active reader and sorted them. ``ix_subscribers_status_id`` answers a page with
  one range scan, and every count by status; the single-column index goes.
- The ledger's rows of the issue being sent and of the running send are new: the
  planner's statistics do not know their issue id or run id, guess a handful of rows,
  and chose ``ix_deliveries_issue_id`` or ``ix_deliveries_run_id``, reading every row
  of the issue (or run) so far for each page checked and each answer recorded. Both go:
  ``uq_delivery`` (issue_id, subscriber_id) serves the issue's questions, the primary
  key the answers. (The run id index was in the baseline only, not in the models.)

Revision ID: b30c3b0bf0b6
Revises: b15e3bedd1e5
Create Date: 2026-12-07 11:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "b30c3b0bf0b6"
down_revision = "b15e3bedd1e5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index("ix_subscribers_status_id", ["status", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_subscribers_status"))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_issue_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_run_id"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_issue_id"), ["issue_id"], unique=False)
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscribers_status"), ["status"], unique=False)
        batch_op.drop_index("ix_subscribers_status_id")

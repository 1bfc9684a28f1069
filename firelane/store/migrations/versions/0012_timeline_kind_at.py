"""The event relay's read: lifecycle events by kind from a time on. `ix_timeline_kind_at`
(kind, at) replaces `ix_timeline_kind` (kind), which it also serves: with the old index every
read walked every lifecycle event ever recorded.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_timeline_kind_at", "timeline_events", ["kind", "at"])
    op.drop_index("ix_timeline_kind", "timeline_events")


def downgrade() -> None:
    op.create_index("ix_timeline_kind", "timeline_events", ["kind"])
    op.drop_index("ix_timeline_kind_at", "timeline_events")

"""Alert groups (alerts sharing a group key join one incident within a window), when each
execution first acted (the alert→first-action metric), and an index for event-kind counts.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_groups",
        sa.Column("group_key", sa.String(400), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("first_action_at", sa.DateTime(timezone=True)))
    op.create_index("ix_executions_first_action_at", "executions", ["first_action_at"])
    op.create_index("ix_timeline_kind", "timeline_events", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_timeline_kind", "timeline_events")
    op.drop_index("ix_executions_first_action_at", "executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("first_action_at")
    op.drop_table("open_groups")

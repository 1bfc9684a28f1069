"""Lifecycle syncs: each incident status change leaves a row saying what its PagerDuty page and
Jira ticket must be made to match, written with the change and done once by whoever claims it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_syncs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False,
                  index=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reopen", sa.Boolean, nullable=False),
        sa.Column("page", sa.Boolean, nullable=False),
        sa.Column("ticket", sa.Boolean, nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_lifecycle_syncs_done_at", "lifecycle_syncs", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_lifecycle_syncs_done_at", "lifecycle_syncs")
    op.drop_table("lifecycle_syncs")

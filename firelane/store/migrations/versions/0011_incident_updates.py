"""Stakeholder communication: incident updates (status, message, affected services, audience,
approval state), the claims that make each update reminder go out once, and `step_effects`,
per-step claims on a sub-effect (one e-mail per list) that a step must never repeat.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_updates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("audience", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("affected", sa.JSON, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.Column("next_due_at", TS),
        sa.Column("publish_alone", sa.Boolean, nullable=False),
        sa.Column("execution_id", sa.String(32)),
        sa.UniqueConstraint("incident_id", "seq", name="uq_update_seq"),
    )
    op.create_index("ix_updates_published", "incident_updates", ["published_at"])
    op.create_table(
        "update_reminders",
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"),
                  primary_key=True),
        sa.Column("due_at", TS, primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("sent_to", sa.Text, nullable=False),
    )
    op.create_table(
        "step_effects",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("effect", sa.String(200), primary_key=True),
        sa.Column("claimed_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("step_effects")
    op.drop_table("update_reminders")
    op.drop_index("ix_updates_published", "incident_updates")
    op.drop_table("incident_updates")

"""Guardrails: automation pauses (kill switch) and maintenance windows, and the remediation
runs the per-service rate limit counts.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_pauses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_automation_pauses_service", "automation_pauses", ["service"])
    op.create_table(
        "remediation_runs",
        sa.Column("execution_id", sa.String(32), sa.ForeignKey("executions.id"),
                  primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_remediation_runs_service_at", "remediation_runs",
                    ["service", "started_at"])


def downgrade() -> None:
    op.drop_table("remediation_runs")
    op.drop_table("automation_pauses")

"""The first tables: incidents, alerts, executions, step ledger, timeline, approvals, action items.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("commander", sa.String(200)),
        sa.Column("communicator", sa.String(200)),
        sa.Column("investigators", sa.JSON, nullable=False),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("reopened", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("service", sa.String(200)),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("annotations", sa.JSON, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("raw", sa.JSON, nullable=False),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id")),
    )
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_index("ix_alerts_incident_id", "alerts", ["incident_id"])
    op.create_table(
        "executions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("runbook_name", sa.String(200), nullable=False),
        sa.Column("runbook_hash", sa.String(64), nullable=False),
        sa.Column("runbook_source", sa.Text, nullable=False),
        sa.Column("runbook_path", sa.Text, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("sandbox", sa.Boolean, nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_executions_incident_id", "executions", ["incident_id"])
    op.create_table(
        "step_ledger",
        sa.Column("execution_id", sa.String(32), sa.ForeignKey("executions.id"),
                  primary_key=True),
        sa.Column("step_id", sa.String(100), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_expires_at", TS),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outputs", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("duration_seconds", sa.Float),
    )
    op.create_table(
        "timeline_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("execution_id", sa.String(32)),
        sa.Column("step_id", sa.String(100)),
    )
    op.create_index("ix_timeline_incident_at", "timeline_events", ["incident_id", "at"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("execution_id", sa.String(32), sa.ForeignKey("executions.id"),
                  nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approvers", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("decided_at", TS),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("flow_run_id", sa.String(64)),
        sa.UniqueConstraint("execution_id", "step_id", name="uq_approvals_execution_step"),
    )
    op.create_index("ix_approvals_incident_id", "approvals", ["incident_id"])
    op.create_table(
        "action_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("due", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("external_key", sa.String(100), unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_action_items_incident_id", "action_items", ["incident_id"])


def downgrade() -> None:
    for name in ("action_items", "approvals", "timeline_events", "step_ledger", "executions",
                 "alerts", "incidents"):
        op.drop_table(name)

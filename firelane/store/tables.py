"""The incident store's tables (SQLAlchemy Core). Migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = [
    "action_items",
    "alerts",
    "api_tokens",
    "approvals",
    "automation_pauses",
    "digests",
    "executions",
    "incident_updates",
    "incidents",
    "lifecycle_syncs",
    "metadata",
    "open_fingerprints",
    "open_groups",
    "processes",
    "remediation_runs",
    "reminders",
    "report_runs",
    "step_effects",
    "step_ledger",
    "timeline_events",
    "update_reminders",
]

metadata = MetaData()
TS = DateTime(timezone=True)

incidents = Table(
    "incidents", metadata,
    Column("id", String(32), primary_key=True),
    Column("number", Integer, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("service", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("labels", JSON, nullable=False),
    Column("commander", String(200)),
    Column("communicator", String(200)),
    Column("investigators", JSON, nullable=False),
    Column("links", JSON, nullable=False),
    Column("reopened", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("private", Boolean, nullable=False, default=False, server_default=false()),
)

alerts = Table(
    "alerts", metadata,
    Column("id", String(32), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("fingerprint", String(128), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("service", String(200)),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS),
    Column("received_at", TS, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("incident_id", String(32), ForeignKey("incidents.id"), index=True),
)

executions = Table(
    "executions", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("runbook_name", String(200), nullable=False),
    Column("runbook_hash", String(64), nullable=False),
    Column("runbook_source", Text, nullable=False),
    Column("runbook_path", Text, nullable=False, default=""),
    Column("inputs", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("sandbox", Boolean, nullable=False, default=False),
    Column("flow_run_id", String(64)),
    Column("created_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("owner", String(200)),
    Column("heartbeat_at", TS),
    Column("first_action_at", TS),
    Index("ix_executions_status", "status"),
    Index("ix_executions_first_action_at", "first_action_at"),
)

step_ledger = Table(
    "step_ledger", metadata,
    Column("execution_id", String(32), ForeignKey("executions.id"), primary_key=True),
    Column("step_id", String(100), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("owner", String(200)),
    Column("lease_expires_at", TS),
    Column("claims", Integer, nullable=False, default=1),
    Column("attempts", Integer, nullable=False, default=0),
    Column("outputs", JSON),
    Column("error", Text),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("duration_seconds", Float),
    Column("pages", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_step_ledger_open_pages", "pages", "status"),
)

timeline_events = Table(
    "timeline_events", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
    Column("at", TS, nullable=False),
    Column("source", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(200)),
    Column("summary", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("execution_id", String(32)),
    Column("step_id", String(100)),
    Index("ix_timeline_incident_at", "incident_id", "at"),
    Index("ix_timeline_kind_at", "kind", "at"),
)

approvals = Table(
    "approvals", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("execution_id", String(32), ForeignKey("executions.id"), nullable=False),
    Column("step_id", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("approvers", JSON, nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("requested_at", TS, nullable=False),
    Column("deadline", TS, nullable=False),
    Column("decided_at", TS),
    Column("decided_by", String(200)),
    Column("reason", Text),
    Column("flow_run_id", String(64)),
    UniqueConstraint("execution_id", "step_id", name="uq_approvals_execution_step"),
)

open_fingerprints = Table(
    "open_fingerprints", metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("opened_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("count", Integer, nullable=False),
)

open_groups = Table(
    "open_groups", metadata,
    Column("group_key", String(400), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
    Column("opened_at", TS, nullable=False),
)

automation_pauses = Table(
    "automation_pauses", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("service", String(200), nullable=False, index=True),
    Column("starts_at", TS, nullable=False),
    Column("until", TS),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("cancelled_at", TS),
)

remediation_runs = Table(
    "remediation_runs", metadata,
    Column("execution_id", String(32), ForeignKey("executions.id"), primary_key=True),
    Column("service", String(200), nullable=False),
    Column("started_at", TS, nullable=False),
    Index("ix_remediation_runs_service_at", "service", "started_at"),
)

action_items = Table(
    "action_items", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("owner", String(200)),
    Column("due", TS),
    Column("status", String(16), nullable=False),
    Column("external_key", String(100), unique=True),
    Column("created_at", TS, nullable=False),
    Column("reminded_at", TS),
    Column("escalated_at", TS),
    Column("closed_at", TS),
)

digests = Table(
    "digests", metadata,
    Column("team", String(200), primary_key=True),
    Column("week", String(10), primary_key=True),
    Column("sent_at", TS, nullable=False),
)

report_runs = Table(
    "report_runs", metadata,
    Column("incident_id", String(32), ForeignKey("incidents.id"), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("started_at", TS, nullable=False),
)

reminders = Table(
    "reminders", metadata,
    Column("id", String(32), primary_key=True),
    Column("item_id", String(32), ForeignKey("action_items.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("sent_to", String(200), nullable=False),
    Column("sent_at", TS, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
)

processes = Table(
    "processes", metadata,
    Column("id", String(200), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("seen_at", TS, nullable=False, index=True),
)

lifecycle_syncs = Table(
    "lifecycle_syncs", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("to_status", String(16), nullable=False),
    Column("reopen", Boolean, nullable=False),
    Column("page", Boolean, nullable=False),
    Column("ticket", Boolean, nullable=False),
    Column("via", String(32), nullable=False),
    Column("actor", String(200)),
    Column("created_at", TS, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("owner", String(200)),
    Column("lease_expires_at", TS),
    Column("done_at", TS),
    Column("error", Text),
    Index("ix_lifecycle_syncs_done_at", "done_at"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("scope", String(8), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS),
    Column("last_used_at", TS),
    Column("revoked_at", TS),
    Column("private_access", Boolean, nullable=False, default=False, server_default=false()),
)

incident_updates = Table(
    "incident_updates", metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("audience", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("affected", JSON, nullable=False),
    Column("author", String(200), nullable=False),
    Column("via", String(16), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("published_at", TS),
    Column("next_due_at", TS),
    Column("publish_alone", Boolean, nullable=False),
    Column("execution_id", String(32)),
    UniqueConstraint("incident_id", "seq", name="uq_update_seq"),
    Index("ix_updates_published", "published_at"),
)

update_reminders = Table(
    "update_reminders", metadata,
    Column("incident_id", String(32), ForeignKey("incidents.id"), primary_key=True),
    Column("due_at", TS, primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("claimed_at", TS, nullable=False),
    Column("claimed_by", String(200), nullable=False),
    Column("sent_to", Text, nullable=False, default=""),
)

step_effects = Table(
    "step_effects", metadata,
    Column("key", String(128), primary_key=True),
    Column("effect", String(200), primary_key=True),
    Column("claimed_at", TS, nullable=False),
)

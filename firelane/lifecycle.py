"""The incident lifecycle kept in step with its page and its ticket: pure rules, no I/O.

A status change of a Firelane incident, wherever it starts (CLI, Slack, API, a runbook, an
alert that resolved, PagerDuty's own webhook), is recorded with a `LifecycleSync`: what the
incident's PagerDuty page and Jira ticket must now look like. The sync is written in the same
transaction as the change (so no crash loses it) and carried out by `flows.engine.lifecycle`,
inline by the process that made the change and by every responder's sweep after it. Each
vendor call it makes is idempotent: PagerDuty acknowledge/resolve by the page's dedup key, a
re-trigger with the same key, a Jira transition to the status the ticket is already in is a
no-op. A change that came from PagerDuty is not sent back to PagerDuty (no echo loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from firelane.models import IncidentStatus, new_id, utcnow

__all__ = [
    "DEFAULT_TICKET_STATUSES",
    "REUSED_ACTIONS",
    "VIA",
    "LifecycleSync",
    "page_action",
    "ticket_status",
]

VIA = ("cli", "slack", "api", "pagerduty", "runbook", "alert", "firelane")
"""Where a status change can come from (the timeline event's `source` and `details.via`)."""

DEFAULT_TICKET_STATUSES: dict[str, str] = {
    "acknowledged": "In Progress",
    "resolved": "Done",
    "closed": "Done",
    "reopened": "To Do",
}
"""Incident status → Jira status, unless the runbook's or the service catalog's
`jira_statuses` says otherwise (`reopened` is the status a reopened incident's ticket goes
back to). A status mapped to an empty string leaves the ticket where it is."""

REUSED_ACTIONS = frozenset({"pagerduty.trigger", "jira.create_issue", "video.create_meeting"})
"""Actions whose vendor key a reopened incident's new execution takes from the incident's
first execution: the same page (dedup key), ticket (label) and bridge, not second ones. The
Slack channel is found again by its name, which derives from the incident number."""


class LifecycleSync(BaseModel):
    """What the incident's page and ticket must be made to match after one status change."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    to_status: IncidentStatus
    reopen: bool = False
    page: bool = True
    ticket: bool = True
    via: str = "firelane"
    actor: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    done_at: datetime | None = None
    error: str | None = None


def page_action(sync: LifecycleSync) -> str | None:
    """The Events v2 `event_action` that brings the page in step (None: leave it)."""
    if not sync.page:
        return None
    if sync.reopen:
        return "trigger"
    return {IncidentStatus.ACKNOWLEDGED: "acknowledge", IncidentStatus.RESOLVED: "resolve",
            IncidentStatus.CLOSED: "resolve"}.get(sync.to_status)


def ticket_status(sync: LifecycleSync, *mappings: Mapping[str, str] | None) -> str | None:
    """The Jira status the ticket must reach (None: leave it); the first mapping that names
    the status wins (runbook, then catalog), then `DEFAULT_TICKET_STATUSES`."""
    if not sync.ticket:
        return None
    key = "reopened" if sync.reopen else sync.to_status.value
    for mapping in (*mappings, DEFAULT_TICKET_STATUSES):
        if mapping is not None and key in mapping:
            return mapping[key] or None
    return None

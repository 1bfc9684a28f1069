"""The page and the ticket follow the incident's severity: after a severity change, the
PagerDuty incident its page opened gets the urgency of the new severity (SEV1 and SEV2 high,
SEV3 and SEV4 low) and its Jira ticket the priority (`SEVERITY_PRIORITIES`), through the
credentials of the runbook that opened them. Best effort, like the war room's topic: a vendor
that refuses is on the timeline (`severity.sync_failed`) and the change itself stands.
"""

from __future__ import annotations

import logging

from firelane.inputs import execution_context
from firelane.models import Severity, TimelineEvent, new_id
from firelane.registry import call_action
from firelane.store import Store
from flows.engine.lifecycle import find_vendors

__all__ = ["SEVERITY_PRIORITIES", "SEVERITY_URGENCY", "follow_severity"]

log = logging.getLogger("firelane.severity")
SEVERITY_URGENCY = {Severity.SEV1: "high", Severity.SEV2: "high", Severity.SEV3: "low",
                    Severity.SEV4: "low"}
SEVERITY_PRIORITIES = {Severity.SEV1: "Highest", Severity.SEV2: "High",
                       Severity.SEV3: "Medium", Severity.SEV4: "Low"}


async def follow_severity(store: Store, incident_id: str) -> list[str]:
    """Set the page's urgency and the ticket's priority from the incident's severity now;
    what changed (or failed), one line each, also on the timeline."""
    incident = store.get_incident(incident_id)
    vendors = find_vendors(store, incident_id)
    said: list[str] = []
    events: list[TimelineEvent] = []
    calls = []
    if vendors.page is not None:
        execution, outputs = vendors.page
        calls.append((execution, "pagerduty.set_urgency", {
            "dedup_key": str(outputs.get("dedup_key")),
            "urgency": SEVERITY_URGENCY[incident.severity]}, "page urgency"))
    if vendors.ticket is not None:
        execution, key = vendors.ticket
        calls.append((execution, "jira.set_priority", {
            "issue": key, "priority": SEVERITY_PRIORITIES[incident.severity]},
            f"ticket {key} priority"))
    for execution, action, inputs, what in calls:
        ctx = execution_context(execution, incident, "severity-follow", f"sev-{new_id()}")
        target = inputs.get("urgency") or inputs.get("priority")
        try:
            await call_action(action, inputs, ctx)
        except Exception as exc:
            log.warning("INC-%s %s not set: %s", incident.number, what, exc)
            line = f"{what} not set to {target}: {type(exc).__name__}: {exc}"
            events.append(TimelineEvent(incident_id=incident_id, kind="severity.sync_failed",
                                        source="firelane", summary=line,
                                        details={"action": action}))
        else:
            line = f"{what} set to {target} ({incident.severity})"
            events.append(TimelineEvent(incident_id=incident_id, kind="severity.synced",
                                        source="firelane", summary=line,
                                        details={"action": action, "to": target}))
        said.append(line)
    if events:
        store.append_events(events)
    return said

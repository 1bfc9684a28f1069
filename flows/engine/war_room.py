"""The war room follows the incident: after a severity, role or status change its Slack channel
topic shows the incident's severity, status and roles, and a newly named commander (or other
role holder) given as a Slack user id or email is invited.

The channel is the one the incident's first `slack.create_channel` step opened (not in a dry
run), reached with that execution's Slack credentials and sandbox flag. Mirroring is best
effort and never fails the change it follows: a Slack error is logged and on the timeline
(`war_room.mirror_failed`), and the next change sets the whole topic again.
"""

from __future__ import annotations

import asyncio
import logging
import re

from firelane.inputs import execution_context
from firelane.loader import parse_snapshot
from firelane.models import Execution, Incident, StepStatus, TimelineEvent, new_id
from firelane.registry import call_action
from firelane.store import Store

__all__ = ["find_war_room", "mirror_war_room", "war_room_topic"]

log = logging.getLogger("firelane.war_room")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def find_war_room(store: Store, incident_id: str) -> tuple[Execution, str] | None:
    """(the execution that opened it, channel id) of the incident's war room, if any."""
    for execution in store.list_executions(incident_id):
        if execution.dry_run:
            continue
        runbook = parse_snapshot(execution.runbook_source,
                                 execution.runbook_path or "<snapshot>").runbook
        uses = {s.id: s.uses for s in runbook.all_steps()}
        for step_id, record in store.step_records(execution.id).items():
            outputs = record.outputs or {}
            if uses.get(step_id) == "slack.create_channel" and outputs.get("id") \
                    and record.status is StepStatus.SUCCEEDED and not outputs.get("dry_run"):
                return execution, str(outputs["id"])
    return None


def war_room_topic(incident: Incident) -> str:
    """`INC-7 [SEV1] acknowledged · IC @ann · comms bob · investigating carol, dan · title`."""
    parts = [f"INC-{incident.number} [{incident.severity}] {incident.status}"]
    if incident.commander:
        parts.append(f"IC {incident.commander}")
    if incident.communicator:
        parts.append(f"comms {incident.communicator}")
    if incident.investigators:
        parts.append(f"investigating {', '.join(incident.investigators)}")
    return " · ".join([*parts, incident.title])


def _invitable(person: str) -> bool:
    return bool(_SLACK_ID.match(person)) or "@" in person.strip("@")


_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}


async def mirror_war_room(store: Store, incident_id: str, invite: list[str] | None = None,
                          ) -> bool:
    """Set the war room's topic from the incident as it is now and invite `invite` (Slack
    user ids or emails; other names are skipped). False when there is no war room or Slack
    refused (logged and on the timeline). Mirrors of one incident in one event loop take
    turns, so a slower earlier one never sets a stale topic over a later one."""
    lock = _LOCKS.setdefault((id(asyncio.get_running_loop()), incident_id), asyncio.Lock())
    async with lock:
        return await _mirror(store, incident_id, invite)


async def _mirror(store: Store, incident_id: str, invite: list[str] | None) -> bool:
    room = find_war_room(store, incident_id)
    if room is None:
        return False
    execution, channel = room
    incident = store.get_incident(incident_id)
    ctx = execution_context(execution, incident, "war-room-mirror", f"mirror-{new_id()}")
    try:
        await call_action("slack.set_topic", {"channel": channel,
                                              "topic": war_room_topic(incident)}, ctx)
        people = [p for p in (invite or []) if _invitable(p)]
        if people:
            await call_action("slack.invite", {"channel": channel, "users": people}, ctx)
    except Exception as exc:
        log.warning("war room of INC-%s not updated: %s: %s", incident.number,
                    type(exc).__name__, exc)
        store.append_events([TimelineEvent(
            incident_id=incident_id, kind="war_room.mirror_failed", source="firelane",
            summary=f"War room topic not updated: {type(exc).__name__}: {exc}",
            details={"channel": channel})])
        return False
    return True

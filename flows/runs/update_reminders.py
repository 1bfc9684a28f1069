"""The `remind-updates` flow: stakeholders hear from every open incident on its cadence.

Every 5 minutes (`prefect.yaml`) the flow asks `flows.records.cadence` which open incidents
owe an update. At level `due` the communicator (the commander when nobody communicates) gets
a Slack DM and the war room a message; at `overdue` (past `communications.grace_minutes`) the
war room is told with the commander and communicator mentioned, and their managers get a DM.
With no war room, the messages meant for it go to the commander and communicator by DM.

Each level of each due time is claimed in the store (`claim_update_reminder`) before anything
is sent, so overlapping runs remind once, and recorded (`note_reminder_sent`, an
`update.reminder` timeline event) when sent. A send that fails on Slack's side gives the claim
back (`release_update_reminder`): the next run tries again, and since every message carries a
key derived from the incident, due time, level and recipient, a message that did reach Slack
before the failure is found rather than posted twice. A person Slack cannot find (a plain
name, an unknown address) is reported and skipped, not retried. Incidents whose every run was
a dry run outside the sandbox are left alone (a dry run tells nobody anything).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from prefect import flow

from firelane.catalog import Catalog, serving_catalog
from firelane.commands import OPEN_STATUSES
from firelane.inputs import execution_context
from firelane.models import Incident, TimelineEvent, utcnow
from firelane.registry import ActionContext, call_action
from firelane.run_marks import DRY_RUN, SANDBOX
from firelane.settings import Settings
from firelane.store import Store, open_store, ride_out
from firelane.timeparse import parse_time
from flows.engine.war_room import find_war_room
from flows.records.cadence import (
    DUE,
    REMINDER_EVENT,
    Reminder,
    due_reminder,
    due_text,
    manager_text,
    overdue_text,
)
from flows.records.status_page import refresh_status_page
from flows.runs.slack_people import Unreachable, incident_context, slack_user

__all__ = ["STORE_PATIENCE_SECONDS", "Outcome", "remind_updates", "remind_updates_once"]

STORE_PATIENCE_SECONDS = 240.0

log = logging.getLogger("firelane.update_reminders")


@dataclass
class Outcome:
    """What one pass did: `INC-n due|overdue HH:MM` labels sent, failures (retried next run)
    and people Slack could not find (not retried)."""

    reminded: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)


@dataclass
class _Delivery:
    ctx: ActionContext
    room: str | None
    ids: dict[str, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def mentions(self) -> dict[str, str]:
        return {person: f"<@{uid}>" for person, uid in self.ids.items()}


def _label(reminder: Reminder) -> str:
    return (f"INC-{reminder.incident.number} {reminder.level} "
            f"{reminder.due_at:%Y-%m-%d %H:%M}")


def _delivery(store: Store, reminder: Reminder) -> _Delivery:
    room = find_war_room(store, reminder.incident.id)
    if room is None:
        return _Delivery(incident_context(store, reminder.incident, "remind-updates"), None)
    execution, channel = room
    return _Delivery(execution_context(execution, reminder.incident, "remind-updates",
                                       reminder.key), channel)


async def _resolve(out: _Delivery, people: list[str]) -> None:
    for person in dict.fromkeys(people):
        try:
            out.ids[person] = await slack_user(person, out.ctx)
        except Unreachable as exc:
            out.unreachable[person] = str(exc)


async def _post(out: _Delivery, reminder: Reminder, channel: str, text: str,
                label: str) -> None:
    await call_action("slack.post_message", {"channel": channel, "text": text},
                      replace(out.ctx, idempotency_key=f"{reminder.key}-{channel}", events=[]))
    out.sent.append(label)


async def _send(store: Store, reminder: Reminder, now: datetime) -> _Delivery:
    """Send `reminder` (raises on a Slack failure; what was sent is in `sent`)."""
    out = await asyncio.to_thread(_delivery, store, reminder)
    await _resolve(out, [*reminder.people, *reminder.managers])
    if reminder.level == DUE:
        text = due_text(reminder, out.mentions)
        targets = reminder.remind
    else:
        text = overdue_text(reminder, out.mentions, now)
        targets = [] if out.room else reminder.people
    if out.room:
        await _post(out, reminder, out.room, text, f"war room {out.room}")
    for person in targets:
        if person in out.ids:
            await _post(out, reminder, out.ids[person], text, person)
    for manager in reminder.managers:
        if manager in out.ids:
            await _post(out, reminder, out.ids[manager], manager_text(reminder, now), manager)
    return out


def _event(reminder: Reminder, out: _Delivery, now: datetime) -> TimelineEvent:
    what = ("Update due: reminded" if reminder.level == DUE
            else "Update overdue: escalated to")
    to = ", ".join(out.sent) or "nobody (no war room, and nobody Slack can find)"
    missed = "".join(f"; {p} not reached ({why})" for p, why in out.unreachable.items())
    return TimelineEvent(
        incident_id=reminder.incident.id, kind=REMINDER_EVENT, at=now, source="firelane",
        summary=f"{what} {to} (due {reminder.due_at:%H:%M} UTC){missed}",
        details={"level": reminder.level, "due_at": reminder.due_at.isoformat(),
                 "sent_to": out.sent, "unreachable": out.unreachable})


async def _remind(store: Store, reminder: Reminder, now: datetime, by: str,
                  done: Outcome) -> None:
    inc = reminder.incident
    if not await asyncio.to_thread(store.claim_update_reminder, inc.id, reminder.due_at,
                                   reminder.level, by):
        return
    label = _label(reminder)
    try:
        out = await _send(store, reminder, now)
    except Exception as exc:
        await asyncio.to_thread(store.release_update_reminder, inc.id, reminder.due_at,
                                reminder.level)
        done.failed[label] = f"{type(exc).__name__}: {exc}"
        log.warning("update reminder %s not sent, the next run retries it: %s", label, exc)
        return
    await asyncio.to_thread(store.note_reminder_sent, inc.id, reminder.due_at, reminder.level,
                            out.sent)
    await asyncio.to_thread(store.append_events, [_event(reminder, out, now)])
    done.unreachable.update({f"{label} {p}": why for p, why in out.unreachable.items()})
    (done.reminded if reminder.level == DUE else done.escalated).append(label)


def _quiet(store: Store, incidents: list[Incident]) -> set[str]:
    marks = store.run_marks([i.id for i in incidents])
    return {i for i, m in marks.items() if DRY_RUN in m and SANDBOX not in m}


async def remind_updates_once(store: Store, catalog: Catalog, now: datetime | None = None,
                              by: str = "remind-updates") -> Outcome:
    """One pass over the open incidents at `now` (default: the clock); `by` names the run
    in the claims."""
    now = now or utcnow()
    done = Outcome()
    incidents = await asyncio.to_thread(store.find_incidents, list(OPEN_STATUSES),
                                        limit=10_000, by_severity=True)
    quiet = await asyncio.to_thread(_quiet, store, incidents)
    for incident in incidents:
        if incident.id in quiet:
            continue
        updates = await asyncio.to_thread(store.list_updates, incident.id)
        reminder = due_reminder(incident, updates, catalog, now)
        if reminder is not None:
            await _remind(store, reminder, now, by, done)
    return done


@flow(name="remind-updates", log_prints=False, persist_result=False)
async def remind_updates(now: str | None = None) -> dict[str, Any]:
    """Remind open incidents' communicators when a stakeholder update is due, and escalate
    when it is overdue (see the module docstring); then rewrite the static status page (when
    the catalog names its folder), so a resolution or a maintenance window shows there within
    one run even when no update was published.

    Args:
        now: ISO time to act as "now" (tests and replays; default: the clock).

    Returns:
        `reminded`, `escalated` (labels `INC-n level due-time`), `failed` (retried next run)
        and `unreachable` (people Slack could not find).

    Example: `prefect deployment run remind-updates/remind-updates` (cron `*/5 * * * *`).
    """
    from prefect.runtime import flow_run

    settings = Settings.from_env()
    store = open_store(settings.database_url, migrate=False)
    catalog = serving_catalog(settings.catalog_path)
    by = f"remind-updates {flow_run.id or 'local'}"
    try:
        out = await ride_out(lambda: remind_updates_once(
            store, catalog, parse_time(now) if now else None, by),
            give_up_after=STORE_PATIENCE_SECONDS)
        await asyncio.to_thread(refresh_status_page, store, catalog)
        return {"reminded": out.reminded, "escalated": out.escalated, "failed": out.failed,
                "unreachable": out.unreachable}
    finally:
        store.close()

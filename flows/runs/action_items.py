"""Postmortem action items that get done: created as Jira issues linked to the incident ticket,
tracked in the store, and chased by the `remind-action-items` flow until Jira says done.

The flow (hourly in `prefect.yaml`) first turns war-room messages marked with the `reaction`
emoji (default `memo`) into items, reads each open item's Jira status (done there → done
here), DMs the owner in Slack when the item is due within `due_within_hours` and again every
`interval_hours` while it is overdue, and after `grace_hours` overdue escalates once to
`escalate_channel`. The store claims each reminder before it is sent, so two overlapping runs
never double one, and a restart does not forget what was sent; items keep being chased after
their incident is closed. Every reminder (sent or failed) is recorded and on the timeline. On
`digest_weekday` each team (the incident's service) gets one digest of its open items in its
catalog `slack_channel` per ISO week.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from prefect import flow

from firelane.catalog import load_catalog
from firelane.errors import ConfigError
from firelane.models import ActionItem, Incident, utcnow
from firelane.registry import ActionContext, call_action
from firelane.settings import Settings
from firelane.store import Store, open_store, ride_out
from firelane.timeparse import parse_time
from flows.records.timeline_sources import find_artifacts
from flows.runs.slack_people import incident_context, slack_user

__all__ = [
    "Outcome",
    "Policy",
    "add_action_item",
    "remind",
    "remind_action_items",
]

DONE_STATUSES = ("done", "closed", "resolved")


@dataclass(frozen=True)
class Policy:
    """When to remind and escalate."""

    due_within: timedelta = timedelta(hours=48)
    interval: timedelta = timedelta(hours=24)
    grace: timedelta = timedelta(hours=48)
    escalate_channel: str | None = None
    reaction: str | None = "memo"
    digest_weekday: int | None = 0


@dataclass
class Outcome:
    """What one reminder run did."""

    closed: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def _open_issue(store: Store, incident: Incident, item: ActionItem) -> ActionItem:
    """Open the item's Jira task linked to the incident ticket, when there is a ticket."""
    tickets = find_artifacts(store, incident)["ticket"]
    if not tickets:
        return item
    parent, ctx = tickets[0]
    ctx = replace(ctx, idempotency_key=f"firelane-action-item-{item.id}", events=[])
    got = await call_action("jira.create_action_items", {
        "project": parent.split("-")[0], "parent": parent,
        "items": [{"title": item.title, "owner": item.owner,
                   "due": item.due.date().isoformat() if item.due else None}]}, ctx)
    store.set_action_item_key(item.id, got.keys[0])
    return store.get_action_item(item.id)


async def add_action_item(store: Store, incident_ref: str, title: str, owner: str | None,
                          due: datetime | None) -> ActionItem:
    """Record the item, then open its Jira issue linked to the incident ticket (when the
    incident has one)."""
    incident = store.get_incident(incident_ref)
    item = store.add_action_item(ActionItem(incident_id=incident.id, title=title, owner=owner,
                                            due=due))
    return await _open_issue(store, incident, item)


async def collect_reaction_items(store: Store, reaction: str, out: Outcome) -> None:
    """Every war-room message with the `reaction` emoji becomes an action item (once: its id
    is derived from the channel and message timestamp), with its Jira issue."""
    for incident in store.list_incidents(limit=10_000):
        for channel, ctx in find_artifacts(store, incident)["channel"]:
            try:
                got = await call_action("slack.history", {"channel": channel, "limit": 1000}, ctx)
            except Exception as exc:
                out.failed[f"slack {channel}"] = f"{type(exc).__name__}: {exc}"
                continue
            for message in got.messages:
                if reaction not in (message.get("reactions") or []):
                    continue
                ident = hashlib.sha256(f"{channel}:{message['ts']}".encode()).hexdigest()[:32]
                title = " ".join(str(message.get("text") or "").split())[:200] or "(no text)"
                item = ActionItem(id=ident, incident_id=incident.id, title=title)
                if store.add_action_item_once(item):
                    await _open_issue(store, incident, item)
                    out.collected.append(ident)


async def send_digests(store: Store, now: datetime, out: Outcome) -> None:
    """Once per ISO week and team (service), post the team's open items to its catalog
    channel (`slack_channel`)."""
    catalog = load_catalog(Settings.from_env().catalog_path)
    week = f"{now.isocalendar().year}-W{now.isocalendar().week:02d}"
    by_team: dict[str, list[tuple[Incident, ActionItem]]] = {}
    for item in store.list_action_items(status="open"):
        incident = store.get_incident(item.incident_id)
        by_team.setdefault(incident.service, []).append((incident, item))
    for team, items in sorted(by_team.items()):
        entry = catalog.get(team)
        if entry is None or not entry.slack_channel or not store.claim_digest(team, week, now):
            continue
        lines = [f"- INC-{inc.number} {item.title}"
                 + (f" ({item.external_key})" if item.external_key else "")
                 + f" · {item.owner or 'unassigned'}"
                 + (f" · due {item.due:%Y-%m-%d}" + (" (OVERDUE)" if item.due < now else "")
                    if item.due else "") for inc, item in items]
        ctx = incident_context(store, items[0][0], f"digest-{team}-{week}")
        try:
            await call_action("slack.post_message", {
                "channel": entry.slack_channel,
                "text": f":clipboard: {team}: {len(items)} open action item(s), week {week}\n"
                        + "\n".join(lines)}, ctx)
            out.digests.append(team)
        except Exception as exc:
            out.failed[f"digest {team}"] = f"{type(exc).__name__}: {exc}"


async def _jira_done(item: ActionItem, ctx: ActionContext) -> bool:
    got = await call_action("jira.search", {"jql": f"key = {item.external_key}"}, ctx)
    return any(str(i["status"]).lower() in DONE_STATUSES for i in got.issues)


async def _dm(store: Store, item: ActionItem, kind: str, text: str, ctx: ActionContext,
              now: datetime, out: Outcome, channel: str | None = None) -> None:
    to = channel or item.owner or ""
    try:
        if not to:
            raise ConfigError("the item has no owner to remind")
        target = channel or await slack_user(to, ctx)
        await call_action("slack.post_message", {"channel": target, "text": text},
                   replace(ctx, idempotency_key=f"reminder-{item.id}-{kind}-{now:%Y%m%d%H%M}",
                           events=[]))
    except Exception as exc:
        out.failed[item.id] = f"{type(exc).__name__}: {exc}"
        await asyncio.to_thread(store.record_reminder, item, kind, to, now, False, str(exc))
        return
    await asyncio.to_thread(store.record_reminder, item, kind, to, now, True, text)
    (out.escalated if kind == "escalation" else out.reminded).append(item.id)


async def remind(store: Store, policy: Policy, now: datetime | None = None) -> Outcome:
    """One reminder pass over every open action item."""
    now = now or utcnow()
    out = Outcome()
    if policy.reaction:
        await collect_reaction_items(store, policy.reaction, out)
    for item in store.list_action_items(status="open"):
        incident = store.get_incident(item.incident_id)
        ctx = incident_context(store, incident, f"remind-{item.id}")
        if item.external_key:
            try:
                if await _jira_done(item, ctx):
                    if store.close_action_item(item.id, f"{item.external_key} is done in Jira",
                                               now):
                        out.closed.append(item.id)
                    continue
            except Exception as exc:
                out.failed[item.id] = f"jira: {type(exc).__name__}: {exc}"
        if item.due is None:
            continue
        label = f"INC-{incident.number} action item \"{item.title}\"" + (
            f" ({item.external_key})" if item.external_key else "")
        overdue = now > item.due
        if overdue and now > item.due + policy.grace and policy.escalate_channel \
                and store.claim_escalation(item.id, now):
            await _dm(store, item, "escalation", f":warning: {label} owned by {item.owner} is "
                      f"overdue since {item.due:%Y-%m-%d}", ctx, now, out,
                      channel=policy.escalate_channel)
        if (overdue or item.due - now <= policy.due_within) and store.claim_reminder(
                item.id, now, policy.interval):
            kind = "overdue" if overdue else "due_soon"
            text = (f":alarm_clock: {label} was due {item.due:%Y-%m-%d}" if overdue else
                    f":spiral_calendar_pad: {label} is due {item.due:%Y-%m-%d}")
            await _dm(store, item, kind, text, ctx, now, out)
    if policy.digest_weekday is not None and now.weekday() == policy.digest_weekday:
        await send_digests(store, now, out)
    return out


STORE_PATIENCE_SECONDS = 600.0


@flow(name="remind-action-items", log_prints=False, persist_result=False)
async def remind_action_items(due_within_hours: float = 48, interval_hours: float = 24,
                              grace_hours: float = 48, escalate_channel: str | None = None,
                              reaction: str | None = "memo", digest_weekday: int | None = 0,
                              now: str | None = None) -> dict[str, Any]:
    """Chase open postmortem action items (see the module docstring).

    Args:
        due_within_hours: remind this long before the due date.
        interval_hours: never remind one item more often than this.
        grace_hours: escalate an item overdue for this long (once).
        escalate_channel: Slack channel id to escalate to (none: no escalation).
        reaction: emoji name that turns a war-room message into an action item (none: off).
        digest_weekday: 0 = Monday: the day each team's weekly digest goes out (none: off).
        now: ISO time to act as "now" (tests and replays; default: the clock).

    A store outage during the pass waits for the store (up to `STORE_PATIENCE_SECONDS`) and
    runs the pass again: every reminder, escalation and digest is claimed in the store before
    it is sent, so a pass run twice sends each once.
    """
    store = open_store(Settings.from_env().database_url, migrate=False)
    policy = Policy(timedelta(hours=due_within_hours), timedelta(hours=interval_hours),
                    timedelta(hours=grace_hours), escalate_channel, reaction, digest_weekday)
    try:
        out = await ride_out(lambda: remind(store, policy, parse_time(now) if now else None),
                             give_up_after=STORE_PATIENCE_SECONDS)
        return {"closed": out.closed, "reminded": out.reminded, "escalated": out.escalated,
                "collected": out.collected, "digests": out.digests, "failed": out.failed}
    finally:
        store.close()

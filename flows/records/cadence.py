"""The update cadence: when an open incident owes its stakeholders an update, who is reminded,
and who hears about it when it is overdue. Pure: the `remind-updates` flow
(`flows/runs/update_reminders.py`) does the sending and the store claims.

The next update is due one cadence (`cadence_for`: per severity, catalog
`communications.cadence_minutes`, defaults SEV1 30 min, SEV2 60 min) after the last published
update was written, or after the declaration when there is none yet. From the due time the
reminder is at level `due`: the commander and the communicator (when one is named) are
reminded by DM, and the war room is told. `grace_minutes` later it is `overdue`: the war room
is told with the commander and communicator mentioned, and their managers are DMed (the
catalog's `communications.managers`, else the service's `manager`). Open means declared,
acknowledged or mitigated; private incidents are reminded too (everything goes to internal
places). An update posted moves the due time, so reminders for the old one stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from firelane.catalog import Catalog
from firelane.commands import OPEN_STATUSES
from firelane.models import Incident
from firelane.updates import IncidentUpdate, UpdateState, cadence_for

__all__ = ["DUE", "OVERDUE", "REMINDER_EVENT", "Reminder", "due_reminder", "due_text",
           "manager_text", "managers_of", "next_due", "overdue_text"]

DUE = "due"
OVERDUE = "overdue"
REMINDER_EVENT = "update.reminder"


@dataclass(frozen=True)
class Reminder:
    """One reminder an incident is owed now: its level for the update due at `due_at`."""

    incident: Incident
    due_at: datetime
    level: str
    cadence: timedelta
    last_update_at: datetime | None
    awaiting_approval: int = 0
    remind: list[str] = field(default_factory=list)
    managers: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Stable for this incident, due time and level: the Slack messages' idempotency
        keys start with it, so a retried reminder finds what it already posted."""
        return f"update-reminder-{self.incident.id[:12]}-{self.due_at:%Y%m%dT%H%M%S}-{self.level}"

    @property
    def people(self) -> list[str]:
        """The commander and communicator, as named on the incident (each once)."""
        return list(dict.fromkeys(p for p in (self.incident.communicator,
                                              self.incident.commander) if p))


def next_due(incident: Incident, updates: list[IncidentUpdate], cadence: timedelta) -> datetime:
    """The last published update's writing time (or the declaration) plus `cadence`."""
    published = [u.created_at for u in updates if u.state is UpdateState.PUBLISHED]
    return max(published, default=incident.created_at) + cadence


def _person_key(person: str) -> str:
    return person.strip().lstrip("@").lower()


def managers_of(incident: Incident, catalog: Catalog) -> list[str]:
    """Whom an overdue update escalates to: each of the communicator's and commander's
    managers (`communications.managers`, matched on the name as given or an address's local
    part), else the service's `manager`; the service's manager when nobody is named."""
    table = {_person_key(k): v for k, v in catalog.communications.managers.items()}
    entry = catalog.get(incident.service)
    fallback = entry.manager if entry is not None else None
    found: list[str] = []
    people = [p for p in (incident.communicator, incident.commander) if p]
    for person in people:
        key = _person_key(person)
        manager = table.get(key) or table.get(key.split("@")[0]) or fallback
        if manager and manager not in found and _person_key(manager) != key:
            found.append(manager)
    if not people and fallback:
        found.append(fallback)
    return found


def due_reminder(incident: Incident, updates: list[IncidentUpdate], catalog: Catalog,
                 now: datetime) -> Reminder | None:
    """The reminder `incident` is owed at `now` (the highest level reached), or None: it is
    not open, its severity has no cadence, or no update is due yet."""
    if incident.status not in OPEN_STATUSES:
        return None
    cadence = cadence_for(catalog, incident.severity)
    if cadence is None:
        return None
    due = next_due(incident, updates, cadence)
    if now < due:
        return None
    grace = timedelta(minutes=catalog.communications.grace_minutes)
    level = OVERDUE if now >= due + grace else DUE
    published = [u.created_at for u in updates if u.state is UpdateState.PUBLISHED]
    last = max(published, default=None)
    awaiting = sum(1 for u in updates if u.state is UpdateState.AWAITING_APPROVAL
                   and (last is None or u.created_at > last))
    remind = list(dict.fromkeys(p for p in (incident.commander, incident.communicator) if p))
    return Reminder(incident=incident, due_at=due, level=level, cadence=cadence,
                    last_update_at=last, awaiting_approval=awaiting, remind=remind,
                    managers=managers_of(incident, catalog) if level == OVERDUE else [])


def _minutes(value: timedelta) -> str:
    return f"{int(value.total_seconds() // 60)}m"


def _since(reminder: Reminder) -> str:
    if reminder.last_update_at is None:
        return "none since the declaration"
    return f"last one {reminder.last_update_at:%H:%M} UTC"


def _how() -> str:
    return ("post one with `/incident update <status> <message>` or `firelane update "
            "INC-n --status <status> --message ...`")


def _awaiting(reminder: Reminder) -> str:
    n = reminder.awaiting_approval
    return f" ({n} public update(s) await approval)" if n else ""


def due_text(reminder: Reminder, mentions: Mapping[str, str]) -> str:
    """The `due` reminder (DM and war room): what is due, since when, and how to post."""
    inc = reminder.incident
    who = ", ".join(mentions.get(p, p) for p in reminder.remind)
    return (f":loudspeaker: INC-{inc.number} [{inc.severity}]: a stakeholder update is due "
            f"(every {_minutes(reminder.cadence)}; {_since(reminder)}){_awaiting(reminder)}. "
            + (f"{who}: " if who else "") + _how().replace("INC-n", f"INC-{inc.number}"))


def overdue_text(reminder: Reminder, mentions: Mapping[str, str], now: datetime) -> str:
    """The `overdue` escalation in the war room, mentioning the commander and communicator
    (`mentions`: person → Slack mention, for those Slack knows) and naming the managers who
    get a DM (those in `mentions`) and those Slack cannot reach."""
    inc = reminder.incident
    roles = [(p, role) for p, role in ((inc.commander, "commander"),
                                       (inc.communicator, "communicator")) if p]
    who = ", ".join(f"{mentions.get(p, p)} ({role})" for p, role in roles) or "nobody is named"
    told = [m for m in reminder.managers if m in mentions]
    missed = [m for m in reminder.managers if m not in mentions]
    late = now - reminder.due_at
    return (f":rotating_light: INC-{inc.number} [{inc.severity}]: the stakeholder update due "
            f"at {reminder.due_at:%H:%M} UTC is {_minutes(late)} overdue ({_since(reminder)})"
            f"{_awaiting(reminder)}. {who}: "
            + _how().replace("INC-n", f"INC-{inc.number}") + "."
            + (f" Told by DM: {', '.join(told)}." if told else "")
            + (f" Not in Slack, tell them yourself: {', '.join(missed)}." if missed else ""))


def manager_text(reminder: Reminder, now: datetime) -> str:
    """The DM to a manager: which incident owes an update and who runs it (a private
    incident's title is left out)."""
    inc = reminder.incident
    title = "(private incident)" if inc.private else inc.title
    roles = ", ".join(f"{role} {p}" for p, role in ((inc.commander, "commander"),
                                                   (inc.communicator, "communicator")) if p)
    return (f":rotating_light: INC-{inc.number} [{inc.severity}] {title}: the stakeholder "
            f"update due at {reminder.due_at:%H:%M} UTC is {_minutes(now - reminder.due_at)} "
            f"overdue (every {_minutes(reminder.cadence)}). "
            + (f"Run by {roles}." if roles else "Nobody is named commander or communicator."))

"""What Firelane's own status page shows, read from the store and the catalog at one instant.

Only what the public may read gets into a snapshot: incidents that are not private, their
published public updates, the catalog's components and the maintenance windows. Internal
updates, updates awaiting approval or rejected, and every private incident are filtered out
here, once, so no renderer can leak them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from firelane.catalog import Catalog
from firelane.commands import OPEN_STATUSES
from firelane.errors import NotFound
from firelane.models import Incident
from firelane.store.guardrails import ALL_SERVICES
from firelane.updates import (
    Audience,
    Impact,
    IncidentUpdate,
    UpdateState,
    UpdateStatus,
    affected_of,
    public_title,
)

__all__ = ["OVERALL_TEXT", "ComponentView", "IncidentView", "MaintenanceView", "Snapshot",
           "UpdateView", "status_snapshot"]

ComponentStatus = Literal["operational", "degraded", "partial_outage", "major_outage"]
MaintenanceState = Literal["scheduled", "in_progress"]

_RANK: dict[str, int] = {"operational": 0, "degraded": 1, "partial_outage": 2, "major_outage": 3}
OVERALL_TEXT: dict[str, str] = {
    "operational": "All systems operational", "degraded": "Degraded performance",
    "partial_outage": "Partial outage", "major_outage": "Major outage",
    "maintenance": "Maintenance in progress"}
"""The overall status line for each overall indicator."""


@dataclass(frozen=True)
class Affected:
    """A service an update names, with the name the page shows and the impact."""

    service: str
    name: str
    impact: Impact


@dataclass(frozen=True)
class UpdateView:
    """One published public update as the page shows it."""

    id: str
    status: UpdateStatus
    message: str
    affected: tuple[Affected, ...]
    published_at: datetime


@dataclass(frozen=True)
class IncidentView:
    """A non-private incident with at least one published public update; `updates` newest
    first, `status` the newest update's."""

    id: str
    title: str
    status: UpdateStatus
    impact: ComponentStatus
    started_at: datetime
    updated_at: datetime
    updates: tuple[UpdateView, ...]

    @property
    def resolved_at(self) -> datetime | None:
        """When the public was told it was resolved, if it was."""
        return self.updated_at if self.status is UpdateStatus.RESOLVED else None


@dataclass(frozen=True)
class ComponentView:
    """A catalog service and its current status."""

    service: str
    name: str
    group: str | None
    status: ComponentStatus


@dataclass(frozen=True)
class MaintenanceView:
    """A maintenance window that has not ended."""

    id: str
    service: str
    name: str
    starts_at: datetime
    ends_at: datetime | None
    description: str
    state: MaintenanceState


@dataclass(frozen=True)
class Snapshot:
    """Everything the page shows. `indicator` is the worst component status, or `maintenance`
    while a window is in progress and nothing is impaired; `overall` its line of text."""

    title: str
    public_url: str | None
    generated_at: datetime
    history_days: int
    indicator: str
    overall: str
    components: tuple[ComponentView, ...]
    incidents: tuple[IncidentView, ...]
    maintenance: tuple[MaintenanceView, ...]
    history: tuple[IncidentView, ...]

    def groups(self) -> list[tuple[str | None, list[ComponentView]]]:
        """Components by group in catalog order; ungrouped ones first."""
        by: dict[str | None, list[ComponentView]] = defaultdict(list)
        for component in self.components:
            by[component.group].append(component)
        return sorted(by.items(), key=lambda item: item[0] is not None)


def _name(catalog: Catalog, service: str) -> str:
    if service == ALL_SERVICES:
        return "All services"
    entry = catalog.get(service)
    return (entry.display_name if entry is not None and entry.display_name else service)


def _shown(update: IncidentUpdate) -> bool:
    return update.state is UpdateState.PUBLISHED and update.audience is Audience.PUBLIC


def _view_update(update: IncidentUpdate, incident: Incident, catalog: Catalog) -> UpdateView:
    affected = tuple(Affected(s, _name(catalog, s), i)
                     for s, i in affected_of(update, incident).items())
    return UpdateView(id=update.id, status=update.status, message=update.message,
                      affected=affected, published_at=update.published_at or update.created_at)


def _worst(impacts: list[str]) -> ComponentStatus:
    worst: ComponentStatus = "operational"
    for impact in impacts:
        if _RANK[impact] > _RANK[worst]:
            worst = impact  # type: ignore[assignment]
    return worst


def _view_incident(incident: Incident, updates: list[IncidentUpdate],
                   catalog: Catalog) -> IncidentView:
    views = sorted((_view_update(u, incident, catalog) for u in updates),
                   key=lambda v: v.published_at, reverse=True)
    latest = views[0]
    impact = "operational" if latest.status is UpdateStatus.RESOLVED else _worst(
        [a.impact.value for a in latest.affected])
    first = min(updates, key=lambda u: u.published_at or u.created_at)
    return IncidentView(id=incident.id, title=public_title(first, incident, catalog),
                        status=latest.status,
                        impact=impact, started_at=min(incident.created_at, views[-1].published_at),
                        updated_at=latest.published_at, updates=tuple(views))


def _public_incidents(store: Any, now: datetime,
                      days: int) -> list[tuple[Incident, list[IncidentUpdate]]]:
    since = now - timedelta(days=days)
    known: dict[str, Incident] = {i.id: i for i in store.find_incidents(
        list(OPEN_STATUSES), limit=500, include_private=False)}
    recent = store.incidents_with_public_updates(since)
    found: list[tuple[Incident, list[IncidentUpdate]]] = []
    for incident_id in dict.fromkeys([*known, *recent]):
        try:
            incident: Incident = known.get(incident_id) or store.get_incident(incident_id)
        except NotFound:
            continue
        if incident.private:
            continue
        updates = [u for u in store.list_updates(incident_id, published=True,
                                                 audience=Audience.PUBLIC) if _shown(u)]
        if updates:
            found.append((incident, updates))
    return found


def _maintenance(store: Any, catalog: Catalog, now: datetime) -> list[MaintenanceView]:
    return [MaintenanceView(
        id=p.id, service=p.service, name=_name(catalog, p.service), starts_at=p.starts_at,
        ends_at=p.until, description=p.reason,
        state="in_progress" if p.starts_at <= now else "scheduled")
        for p in store.pauses(at=now, upcoming=True) if p.kind == "maintenance"]


def status_snapshot(store: Any, catalog: Catalog, now: datetime) -> Snapshot:
    """The status page at `now`: the catalog's components with their status (the worst impact
    the newest published public update of each open incident names; a `resolved` update
    clears it), open incidents, maintenance windows not yet over, and the incidents of the
    last `history_days` days, each with its published public updates (newest first).

    An incident counts as open while it is open in Firelane and its newest public update is not
    `resolved`; an incident nobody told the public about is not shown at all.

    Example:
        >>> snap = status_snapshot(store, load_catalog(path), utcnow())
        >>> snap.overall
        'All systems operational'
    """
    config = catalog.communications.status_page
    cutoff = now - timedelta(days=config.history_days)
    current: list[IncidentView] = []
    history: list[IncidentView] = []
    impacts: dict[str, list[str]] = defaultdict(list)
    for incident, updates in _public_incidents(store, now, config.history_days):
        view = _view_incident(incident, updates, catalog)
        if incident.status in OPEN_STATUSES and view.status is not UpdateStatus.RESOLVED:
            current.append(view)
            for affected in view.updates[0].affected:
                impacts[affected.service].append(affected.impact.value)
        elif view.updated_at >= cutoff:
            history.append(view)
    components = tuple(ComponentView(service=name, name=_name(catalog, name), group=entry.group,
                                     status=_worst(impacts.get(name, [])))
                       for name, entry in catalog.services.items())
    windows = _maintenance(store, catalog, now)
    indicator: str = _worst([i.impact for i in current])
    if indicator == "operational" and any(w.state == "in_progress" for w in windows):
        indicator = "maintenance"
    return Snapshot(
        title=config.title, public_url=config.public_url, generated_at=now,
        history_days=config.history_days, indicator=indicator,
        overall=OVERALL_TEXT[indicator], components=components,
        incidents=tuple(sorted(current, key=lambda v: v.updated_at, reverse=True)),
        maintenance=tuple(windows),
        history=tuple(sorted(history, key=lambda v: v.updated_at, reverse=True)))

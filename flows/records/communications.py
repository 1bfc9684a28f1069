"""The report's communications section: what stakeholders were told and how regularly.

Figures are taken from the published updates at the time they went out (`published_at`: a
public update counts from its approval, when people could read it): how many went to each
audience, each update once, the largest silence between the declaration and the first update
or between two consecutive updates (set against the severity's cadence), and how long the
public waited for its first update. Updates awaiting approval or rejected are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from firelane.catalog import Catalog, serving_catalog
from firelane.errors import ConfigError
from firelane.models import Incident
from firelane.settings import Settings
from firelane.updates import Audience, IncidentUpdate, UpdateState, cadence_for

__all__ = ["Communications", "communications", "report_catalog"]


@dataclass(frozen=True)
class Communications:
    """The communications figures of one incident."""

    updates: list[IncidentUpdate] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unpublished: int = 0
    cadence: timedelta | None = None
    largest_gap: timedelta | None = None
    gap_from: datetime | None = None
    gap_to: datetime | None = None
    first_public: timedelta | None = None
    first_public_at: datetime | None = None

    @property
    def late(self) -> bool:
        """The largest gap was longer than the cadence."""
        return (self.cadence is not None and self.largest_gap is not None
                and self.largest_gap > self.cadence)


def _sent_at(update: IncidentUpdate) -> datetime:
    return update.published_at or update.created_at


def communications(incident: Incident, updates: list[IncidentUpdate],
                   catalog: Catalog) -> Communications:
    """The figures for `incident` from its `updates` (any order, any state)."""
    sent = sorted((u for u in updates if u.state is UpdateState.PUBLISHED),
                  key=lambda u: (_sent_at(u), u.seq))
    counts = {a.value: sum(1 for u in sent if u.audience is a) for a in Audience}
    gap: tuple[timedelta, datetime, datetime] | None = None
    before = incident.created_at
    for update in sent:
        at = _sent_at(update)
        if gap is None or at - before > gap[0]:
            gap = (at - before, before, at)
        before = at
    public = next((u for u in sent if u.audience is Audience.PUBLIC), None)
    return Communications(
        updates=sent, counts=counts, unpublished=len(updates) - len(sent),
        cadence=cadence_for(catalog, incident.severity),
        largest_gap=gap[0] if gap else None, gap_from=gap[1] if gap else None,
        gap_to=gap[2] if gap else None,
        first_public=_sent_at(public) - incident.created_at if public else None,
        first_public_at=_sent_at(public) if public else None)


def report_catalog(settings: Settings | None = None) -> tuple[Catalog, str | None]:
    """The catalog the report reads the cadence from, and why it fell back to the defaults
    (a catalog that fails validation must not stop the report)."""
    settings = settings or Settings.from_env()
    try:
        return serving_catalog(settings.catalog_path), None
    except ConfigError as exc:
        return Catalog(), f"catalog unreadable, default cadence used: {exc}"

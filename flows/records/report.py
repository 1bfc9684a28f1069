"""The incident report: one timeline from every source, key times, what automation did,
rendered as Markdown and as a self-contained HTML page with an inline SVG swimlane and the
charts of the incident's `prometheus.graph` steps (`flows.records.graphs`).

Templates are Jinja2 files (`firelane/templates/report.md.j2`, `report.html.j2`); put files
with the same names in `FIRELANE_TEMPLATES_DIR` to override them. The HTML template escapes
everything (alert and chat text is data); neither page loads anything from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

import firelane
from firelane.catalog import Catalog
from firelane.errors import ConfigError
from firelane.links import LinkView, incident_links
from firelane.models import Incident
from firelane.settings import Settings
from firelane.store import Store
from firelane.timeline import (
    SOURCE_ORDER,
    Automation,
    Entry,
    KeyTimes,
    automation_summary,
    from_store,
    key_times,
    merge,
)
from flows.records.communications import Communications, communications, report_catalog
from flows.records.graphs import GraphView, incident_graphs

__all__ = ["Report", "build_report", "render", "swimlane"]

_BUILTIN = Path(firelane.__file__).resolve().parent / "templates"


@dataclass
class Report:
    """Everything a report shows."""

    incident: Incident
    entries: list[Entry]
    times: KeyTimes
    automation: Automation
    tz: str = "UTC"
    left_out: dict[str, str] = field(default_factory=dict)
    links: list[LinkView] = field(default_factory=list)
    marks: tuple[str, ...] = ()
    comms: Communications = field(default_factory=Communications)
    graphs: list[GraphView] = field(default_factory=list)


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name, with a clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}: use an IANA name like Europe/Paris "
                          "or UTC") from exc


def build_report(store: Store, incident: Incident, vendor: list[Entry] | None = None,
                 tz: str = "UTC", left_out: dict[str, str] | None = None,
                 minutes_saved: dict[str, float] | None = None,
                 catalog: Catalog | None = None) -> Report:
    """Assemble the timeline (store events, alerts, and `vendor` entries) and its figures;
    the update cadence comes from `catalog` (default: the configured one)."""
    zone(tz)
    left_out = dict(left_out or {})
    if catalog is None:
        catalog, why = report_catalog()
        if why:
            left_out["catalog"] = why
    events = store.timeline(incident.id)
    entries = merge(from_store(events, store.alerts_of(incident.id)), vendor or [])
    return Report(incident=incident, entries=entries, times=key_times(incident, entries),
                  automation=automation_summary(entries, minutes_saved), tz=tz,
                  left_out=left_out, links=incident_links(incident, events),
                  marks=store.run_marks([incident.id]).get(incident.id, ()),
                  comms=communications(incident, store.list_updates(incident.id), catalog),
                  graphs=incident_graphs(store, events))


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
    return ("-" if seconds < 0 else "") + text


def swimlane(entries: list[Entry], width: int = 960, lane: int = 34) -> dict[str, Any]:
    """Positions for the SVG chart: one lane per source, one dot per entry, key ones larger."""
    sources = [s for s in SOURCE_ORDER if any(e.source == s for e in entries)]
    sources += sorted({e.source for e in entries} - set(sources))
    if not entries:
        return {"width": width, "height": 60, "lanes": [], "dots": [], "ticks": []}
    start, end = entries[0].at, entries[-1].at
    span = max((end - start).total_seconds(), 1.0)
    left, right = 110, width - 20
    def x(at: datetime) -> float:
        return round(left + (at - start).total_seconds() / span * (right - left), 1)
    dots = [{"x": x(e.at), "y": 30 + sources.index(e.source) * lane + lane / 2,
             "r": 6 if e.key else 3, "key": e.key, "title": f"{e.at:%H:%M:%S} {e.summary}",
             "source": e.source} for e in entries]
    ticks = [{"x": round(left + i / 4 * (right - left), 1),
              "anchor": "end" if i == 4 else "middle",
              "label": (start + timedelta(seconds=span * i / 4))} for i in range(5)]
    return {"width": width, "height": 40 + len(sources) * lane, "left": left,
            "lanes": [{"name": s, "y": 30 + i * lane} for i, s in enumerate(sources)],
            "lane_height": lane, "dots": dots, "ticks": ticks}


def _md_url(url: str) -> str:
    """A URL safe inside a Markdown link and table cell: characters that would end the link
    or the cell, or open HTML, are percent-encoded."""
    return quote(url, safe=":/?#[]@!$&'*+,;=%~")


def _environment(html: bool) -> jinja2.Environment:
    paths = [str(_BUILTIN)]
    override = Settings.from_env().templates_dir
    if override is not None:
        paths.insert(0, str(override))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=html,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["duration"] = _duration
    env.filters["md_url"] = _md_url
    return env


def render(report: Report, fmt: str, **extra: Any) -> str:
    """`md` or `html` (the report), or `postmortem` (Markdown; `items` and `alerts` in
    `extra`)."""
    if fmt not in ("md", "html", "postmortem"):
        raise ConfigError(f"unknown report format {fmt!r}: use md, html or postmortem")
    tz = zone(report.tz)

    def local(at: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
        return at.astimezone(tz).strftime(pattern) if at is not None else "—"

    env = _environment(fmt == "html")
    env.filters["local"] = local
    chart = swimlane(report.entries) if fmt == "html" else None
    name = "postmortem.md.j2" if fmt == "postmortem" else f"report.{fmt}.j2"
    return env.get_template(name).render(
        r=report, inc=report.incident, times=report.times, auto=report.automation,
        chart=chart, tz=report.tz, **extra)

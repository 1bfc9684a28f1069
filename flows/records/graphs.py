"""The charts an incident's `prometheus.graph` steps drew, for the HTML report.

The step keeps its SVG in its outputs (the ledger). The report embeds it inline, so before it
does, the SVG is checked to be exactly the kind of document `prometheus.graph` writes: well
formed, no doctype, entity or CDATA, only drawing elements (`svg`, `g`, `rect`, `line`,
`path`, `text`) with presentation attributes, nothing scripted, styled or linked. A ledger row
that fails the check (edited by hand, a dry run's placeholder) is left out of the report, not
trusted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firelane.models import StepStatus, TimelineEvent
from firelane.store import Store

__all__ = ["GraphView", "incident_graphs", "safe_svg"]

ACTION = "prometheus.graph"
_SVG_NS = "{http://www.w3.org/2000/svg}"
_ELEMENTS = frozenset({"svg", "g", "rect", "line", "path", "text", "title"})
_ATTRIBUTES = frozenset({
    "xmlns", "class", "width", "height", "viewBox", "role", "aria-label", "font-family",
    "font-size", "font-weight", "fill", "x", "y", "x1", "x2", "y1", "y2", "d", "stroke",
    "stroke-width", "stroke-dasharray", "stroke-linejoin", "text-anchor", "transform",
    "data-name", "data-at"})


@dataclass(frozen=True)
class GraphView:
    """One chart in the report: the step that drew it, its query, range and SVG."""

    step_id: str
    query: str
    series: int
    start: datetime | None
    end: datetime | None
    svg: str


def safe_svg(text: Any) -> str | None:
    """`text`, when it is a chart of the kind `prometheus.graph` draws (the template may
    then embed it unescaped); else None."""
    if not isinstance(text, str) or not text.startswith("<svg") or "<!" in text \
            or "<?" in text:
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    for element in root.iter():
        tag = element.tag.removeprefix(_SVG_NS) if isinstance(element.tag, str) else ""
        if tag not in _ELEMENTS or any(a not in _ATTRIBUTES for a in element.attrib):
            return None
    return text


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def incident_graphs(store: Store, events: list[TimelineEvent]) -> list[GraphView]:
    """The charts of the incident's succeeded `prometheus.graph` steps, in the order the steps
    started (`events` is the incident's timeline)."""
    steps: list[tuple[str, str]] = []
    for e in events:
        if e.kind == "step.started" and e.details.get("uses") == ACTION \
                and e.execution_id and e.step_id and (e.execution_id, e.step_id) not in steps:
            steps.append((e.execution_id, e.step_id))
    records: dict[str, dict[str, Any]] = {}
    out: list[GraphView] = []
    for execution_id, step_id in steps:
        if execution_id not in records:
            records[execution_id] = store.step_records(execution_id)
        record = records[execution_id].get(step_id)
        if record is None or record.status is not StepStatus.SUCCEEDED or not record.outputs:
            continue
        outputs = record.outputs
        svg = safe_svg(outputs.get("svg"))
        if svg is None:
            continue
        out.append(GraphView(step_id=step_id, query=str(outputs.get("query", "")),
                             series=int(outputs.get("series") or 0),
                             start=_time(outputs.get("start")), end=_time(outputs.get("end")),
                             svg=svg))
    return out

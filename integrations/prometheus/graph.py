"""`prometheus.graph`: a range query drawn as an SVG chart with the incident's key times
marked, kept in the step's outputs (the report shows it) and, with `channel`, posted to the
war room as a PNG (or as the SVG file when no PNG can be rendered)."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firelane.errors import ActionError, StoreUnavailable
from firelane.registry import ActionContext, action
from integrations.common import retrying
from integrations.prometheus.actions import _client
from integrations.prometheus.chart import Chart, Layout, chart_height, draw, drawn_series
from integrations.prometheus.client import RangeSeries
from integrations.prometheus.key_times import MARKED, incident_key_times
from integrations.prometheus.png import PngUnavailable, svg_to_png
from integrations.prometheus.post import post_chart

__all__ = ["GraphInputs", "GraphOutputs", "plan_range"]

AFTER_RESOLUTION = timedelta(minutes=10)


class GraphInputs(BaseModel):
    """`prometheus.graph` inputs."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="PromQL to draw (the alert's expression)")
    start: datetime | None = Field(default=None, description=(
        "From (ISO 8601); default `before_seconds` before the incident was declared"))
    end: datetime | None = Field(default=None, description=(
        "To (ISO 8601); default now, or 10 minutes after the incident's resolution when "
        "that is earlier"))
    before_seconds: float = Field(default=1800, ge=0, le=7 * 86400, description=(
        "How far before the declaration the default start lies"))
    max_points: int = Field(default=300, ge=10, le=1000, description=(
        "At most this many points per series: the step is the range divided by it"))
    title: str | None = Field(default=None, max_length=200,
                              description="Chart title (default: the query)")
    unit: str = Field(default="", max_length=40,
                      description="The y axis' unit (req/s, ratio, %, s)")
    marks: dict[str, datetime] = Field(default_factory=dict, description=(
        "Extra or overriding key times to mark, name → ISO time (the declared, "
        "acknowledged, mitigated and resolved times come from the incident store)"))
    channel: str | None = Field(default=None, description=(
        "Slack channel id: post the chart there (PNG when Chromium renders it, else SVG)"))
    include_png: bool = Field(default=False, description=(
        "Also return the PNG, base64-encoded, in the outputs (large; off by default)"))
    timeout_seconds: float | None = Field(default=None, gt=0, le=300, description=(
        "Bound on the query (default, and at most, the block's timeout_seconds)"))

    @model_validator(mode="after")
    def _ordered(self) -> GraphInputs:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class GraphOutputs(BaseModel):
    """The chart and what it shows."""

    svg: str = Field(description="The chart, a standalone SVG document (safe to embed)")
    query: str
    series: int = Field(description="Series the query returned (at most 10 are drawn)")
    drawn: int = Field(description="Series drawn")
    points: int = Field(description="Points drawn, all series together")
    start: datetime
    end: datetime
    step_seconds: float
    marks: dict[str, datetime] = Field(default_factory=dict,
                                       description="The key times marked (inside the range)")
    marks_from: Literal["store", "inputs"] = Field(description=(
        "Where the key times came from: the incident store, or only the `marks` input"))
    png_base64: str | None = Field(default=None, description="With include_png")
    posted_as: Literal["png", "svg"] | None = Field(default=None, description=(
        "How the chart went to Slack; null when not posted"))
    file_id: str | None = Field(default=None, description="The Slack file")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def plan_range(start: datetime, end: datetime, max_points: int) -> float:
    """The step (seconds, at least 1, rounded up to the millisecond) giving at most
    `max_points` points from `start` to `end`: Prometheus evaluates at start, start + step,
    ... while ≤ end, so points = floor(span / step) + 1."""
    span = (end - start).total_seconds()
    return max(1.0, math.ceil(span * 1000 / (max_points - 1)) / 1000)


async def _key_times(inputs: GraphInputs, ctx: ActionContext,
                     ) -> tuple[dict[str, datetime], Literal["store", "inputs"]]:
    try:
        found = await incident_key_times(ctx.incident)
        source: Literal["store", "inputs"] = "store"
    except StoreUnavailable as exc:
        ctx.emit("prometheus.graph_marks", f"key times not read from the store ({exc}); "
                 "marking the declaration and the `marks` input only", {"error": str(exc)})
        found, source = {"declared": ctx.incident.created_at}, "inputs"
    merged = {**found, **{k: _utc(v) for k, v in inputs.marks.items()}}
    order = {name: n for n, name in enumerate(MARKED)}
    return dict(sorted(merged.items(), key=lambda kv: (order.get(kv[0], 99), kv[1]))), source


def _range(inputs: GraphInputs, times: dict[str, datetime]) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    declared = times.get("declared", now)
    start = _utc(inputs.start) if inputs.start else declared - timedelta(
        seconds=inputs.before_seconds)
    resolved = times.get("resolved")
    end = _utc(inputs.end) if inputs.end else (
        min(now, resolved + AFTER_RESOLUTION) if resolved else now)
    if end <= start:
        error = ActionError(f"nothing to draw: the range {start:%Y-%m-%d %H:%M:%S} to "
                            f"{end:%Y-%m-%d %H:%M:%S} UTC is empty (check start, end and "
                            "before_seconds)")
        error.retryable = False
        raise error
    return start, end


@action("prometheus.graph")
async def graph(inputs: GraphInputs, ctx: ActionContext) -> GraphOutputs:
    """Draw a PromQL expression over the incident as an SVG chart: a range query from
    `before_seconds` (30 min) before the declaration to now (or 10 min after the
    resolution), at most `max_points` points per series, at most 10 series with a legend,
    the declared/acknowledged/mitigated/resolved times as dashed vertical lines. The SVG is
    kept in the step's outputs, and the incident report shows it. With `channel`, the chart
    is posted to that Slack channel once: a PNG rendered by the machine's headless Chromium,
    or the SVG file when Chromium is missing or fails. A query with no series draws a "no
    data" chart (and says so); an unreachable or slow Prometheus (after retries) or a PromQL
    error fails the step with Prometheus' message.

    Not read-only: posting to Slack is a side effect (without `channel` it only reads).

    Example:
    `{uses: prometheus.graph, with: {query: 'sum(rate(http_requests_total{code=~"5.."}[1m]))
    / sum(rate(http_requests_total[1m]))', unit: ratio, channel: "{{ steps.war_room.outputs.id
    }}"}}`
    """
    times, source = await _key_times(inputs, ctx)
    start, end = _range(inputs, times)
    step = plan_range(start, end, inputs.max_points)
    client = await _client(ctx)
    found: list[RangeSeries] = await retrying(lambda: client.query_range(
        inputs.query, start.timestamp(), end.timestamp(), step, inputs.timeout_seconds), ctx)
    marks = {k: v for k, v in times.items() if start <= v <= end}
    chart = Chart(series=found, start=start.timestamp(), end=end.timestamp(), step=step,
                  title=inputs.title or inputs.query, unit=inputs.unit,
                  marks={k: v.timestamp() for k, v in marks.items()}, layout=Layout())
    svg = draw(chart)
    drawn = drawn_series(found)
    points = sum(len(s.points) for s in drawn)
    ctx.emit("prometheus.graph", f"graph of {inputs.query}: {len(found)} series, {points} "
             f"points, {start:%H:%M:%S} to {end:%H:%M:%S} UTC" + ("" if found else " (no data)"),
             {"query": inputs.query, "series": len(found), "points": points,
              "start": start.isoformat(), "end": end.isoformat(), "step_seconds": step,
              "marks": {k: v.isoformat() for k, v in marks.items()}})
    out = GraphOutputs(svg=svg, query=inputs.query, series=len(found), drawn=len(drawn),
                       points=points, start=start, end=end, step_seconds=step, marks=marks,
                       marks_from=source)
    png = await _png(svg, chart, ctx) if inputs.channel or inputs.include_png else None
    if inputs.include_png and png is not None:
        out.png_base64 = base64.b64encode(png).decode()
    if inputs.channel:
        kind: Literal["png", "svg"] = "png" if png is not None else "svg"
        name = f"inc-{ctx.incident.number}-{ctx.step_id}.{kind}"
        title = inputs.title or inputs.query
        posted = await post_chart(ctx, inputs.channel, name,
                                  png if png is not None else svg.encode(), title=title,
                                  comment=f"INC-{ctx.incident.number}: {title} "
                                  f"({start:%H:%M} to {end:%H:%M} UTC)")
        out.posted_as, out.file_id = kind, posted.file_id
    return out


async def _png(svg: str, chart: Chart, ctx: ActionContext) -> bytes | None:
    try:
        png = await svg_to_png(svg, chart.layout.width, chart_height(chart))
    except PngUnavailable as exc:
        ctx.emit("prometheus.graph_png", f"no PNG ({exc}); the SVG is used instead",
                 {"error": str(exc)})
        return None
    if png is None:
        ctx.emit("prometheus.graph_png", "no PNG (Chromium is not installed); the SVG is "
                 "used instead", {"error": "chromium missing"})
    return png

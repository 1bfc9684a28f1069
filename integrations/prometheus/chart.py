"""A hand-written SVG line chart for `prometheus.graph`: time on x (UTC), values on y with a
unit, one line per series with a legend, the incident's key times as vertical marked lines.

No charting library is installed (matplotlib and Pillow are not, and are too heavy to add for
one chart), and the SVG must be safe to embed inline in the report: every text is escaped,
nothing is scripted, nothing is linked. The output is well-formed XML that stands alone (a
file for Slack or a browser) and inlines into HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from integrations.prometheus.client import RangeSeries

__all__ = ["MAX_SERIES", "Chart", "Layout", "chart_height", "draw", "drawn_series",
           "legend_label", "nice_ticks", "time_ticks"]

MAX_SERIES = 10
PALETTE = ("#3e63dd", "#e5484d", "#30a46c", "#f76b15", "#8e4ec6", "#0d74ce", "#ad5700",
           "#d6409f", "#12a594", "#646464")
MARK_COLOUR = "#b42318"
LABEL_MAX = 66
_DIM = ' fill="#5b6475" font-size="11"'
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400)


@dataclass(frozen=True)
class Layout:
    """Where the plot area sits in the picture (pixels)."""

    width: int = 960
    left: int = 76
    right: int = 24
    top: int = 48
    plot_height: int = 280
    legend_row: int = 18

    @property
    def plot_width(self) -> int:
        """Width of the plot area."""
        return self.width - self.left - self.right

    @property
    def bottom(self) -> int:
        """The y of the x axis."""
        return self.top + self.plot_height

    def x(self, at: float, start: float, end: float) -> float:
        """The x of the time `at` (epoch seconds) on a chart from `start` to `end`."""
        span = max(end - start, 1e-9)
        return round(self.left + (at - start) / span * self.plot_width, 2)


@dataclass
class Chart:
    """What to draw: the series, the time range, the key times, the title and the unit."""

    series: list[RangeSeries]
    start: float
    end: float
    step: float
    title: str
    unit: str = ""
    marks: dict[str, float] = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)


def _text(value: str, limit: int = LABEL_MAX) -> str:
    short = value if len(value) <= limit else value[:limit - 1] + "…"
    return escape(short, quote=True)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = (low, low + pad) if low == 0 else (low - pad, high + pad)
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def format_number(value: float) -> str:
    """A tick label: SI suffixes for big numbers, up to four significant digits."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def time_ticks(start: float, end: float, most: int = 8) -> list[float]:
    """Round UTC times (multiples of 1 s ... 1 day) between `start` and `end`, at most
    `most` of them."""
    span = max(end - start, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= most),
                86400 * math.ceil(span / 86400 / most))
    first = math.ceil(start / step) * step
    return [float(t) for t in range(int(first), int(end) + 1, int(step))]


def _time_label(at: float, span: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    if span > 2 * 86400:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%H:%M:%S" if span < 600 else "%H:%M")


def legend_label(series: RangeSeries, varying: list[str]) -> str:
    """`name{labels}` with the labels that tell this series from the others (`code="500"`),
    or all of them for a lone series."""
    keys = [k for k in (varying or sorted(series.labels)) if k != "__name__"]
    inner = ", ".join(f'{k}="{series.labels[k]}"' for k in keys if k in series.labels)
    name = series.labels.get("__name__", "")
    if name:
        return f"{name}{{{inner}}}" if inner else name
    return inner or "value"


def _varying(series: list[RangeSeries]) -> list[str]:
    keys = sorted({k for s in series for k in s.labels})
    return [k for k in keys if len({s.labels.get(k) for s in series}) > 1]


def _paths(chart: Chart, points: list[tuple[float, float]], low: float, high: float) -> str:
    lay = chart.layout
    span = max(high - low, 1e-12)
    out: list[str] = []
    previous: float | None = None
    for at, value in points:
        if not math.isfinite(value):
            previous = None
            continue
        x = lay.x(at, chart.start, chart.end)
        y = round(lay.bottom - (value - low) / span * lay.plot_height, 2)
        gap = previous is None or at - previous > chart.step * 1.5
        out.append(f"{'M' if gap else 'L'}{x} {y}")
        previous = at
    return " ".join(out)


def drawn_series(series: list[RangeSeries]) -> list[RangeSeries]:
    """The series a chart draws: all, or the `MAX_SERIES` with the highest peaks."""

    def peak(s: RangeSeries) -> float:
        finite = [v for _, v in s.points if math.isfinite(v)]
        return max(finite) if finite else -math.inf

    return sorted(series, key=peak, reverse=True)[:MAX_SERIES] \
        if len(series) > MAX_SERIES else series


def _y_axis(chart: Chart, ticks: list[float]) -> list[str]:
    lay = chart.layout
    low, high = ticks[0], ticks[-1]
    out = []
    for tick in ticks:
        y = round(lay.bottom - (tick - low) / (high - low) * lay.plot_height, 2)
        out.append(f'<line class="grid" x1="{lay.left}" x2="{lay.left + lay.plot_width}" '
                   f'y1="{y}" y2="{y}" stroke="#eef0f4"/>'
                   f'<text class="ytick" x="{lay.left - 6}" y="{y + 4}" text-anchor="end"{_DIM}>'
                   f"{_text(format_number(tick))}</text>")
    unit = _text(chart.unit or "value", 40)
    middle = lay.top + lay.plot_height / 2
    out.append(f'<text class="unit" x="14" y="{middle}" text-anchor="middle" '
               f'transform="rotate(-90 14 {middle})"{_DIM}>{unit}</text>')
    return out


def _x_axis(chart: Chart) -> list[str]:
    lay = chart.layout
    span = chart.end - chart.start
    out = [f'<line x1="{lay.left}" x2="{lay.left + lay.plot_width}" y1="{lay.bottom}" '
           f'y2="{lay.bottom}" stroke="#8a93a6"/>']
    for tick in time_ticks(chart.start, chart.end):
        x = lay.x(tick, chart.start, chart.end)
        out.append(f'<line class="xtick" x1="{x}" x2="{x}" y1="{lay.bottom}" '
                   f'y2="{lay.bottom + 5}" stroke="#8a93a6"/><text class="xtick" x="{x}" '
                   f'y="{lay.bottom + 18}" text-anchor="middle"{_DIM}>'
                   f"{_time_label(tick, span)}</text>")
    day = datetime.fromtimestamp(chart.start, UTC).strftime("%Y-%m-%d")
    out.append(f'<text class="axis" x="{lay.left + lay.plot_width}" y="{lay.bottom + 34}" '
               f'text-anchor="end"{_DIM}>time (UTC, {day})</text>')
    return out


def _marks(chart: Chart) -> list[str]:
    lay = chart.layout
    out = []
    shown = sorted((at, name) for name, at in chart.marks.items()
                   if chart.start <= at <= chart.end)
    for n, (at, name) in enumerate(shown):
        x = lay.x(at, chart.start, chart.end)
        when = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")
        label_y = lay.top - 6 - (n % 2) * 12
        out.append(f'<g class="mark" data-name="{_text(name, 40)}" data-at="{at:.3f}">'
                   f'<line x1="{x}" x2="{x}" y1="{lay.top - 4}" y2="{lay.bottom}" '
                   f'stroke="{MARK_COLOUR}" stroke-dasharray="4 3"/><text x="{x}" '
                   f'y="{label_y}" text-anchor="middle" fill="{MARK_COLOUR}" font-size="10">'
                   f'{_text(name, 40)} {when}</text></g>')
    return out


def _legend(chart: Chart, drawn: list[RangeSeries]) -> list[str]:
    lay = chart.layout
    varying = _varying(drawn)
    column = lay.plot_width // 2
    limit = LABEL_MAX if len(drawn) > 1 else 2 * LABEL_MAX
    out = []
    for n, series in enumerate(drawn):
        x = lay.left + (n % 2) * column
        y = lay.bottom + 52 + (n // 2) * lay.legend_row
        out.append(f'<g class="legend"><rect x="{x}" y="{y - 9}" width="12" height="4" '
                   f'fill="{PALETTE[n]}"/><text x="{x + 18}" y="{y - 4}">'
                   f"{_text(legend_label(series, varying), limit)}</text></g>")
    hidden = len(chart.series) - len(drawn)
    if hidden:
        y = lay.bottom + 52 + math.ceil(len(drawn) / 2) * lay.legend_row
        out.append(f'<text class="more" x="{lay.left}" y="{y - 4}"{_DIM}>and {hidden} more series '
                   f"not drawn (the {MAX_SERIES} with the highest peaks are)</text>")
    return out


def chart_height(chart: Chart) -> int:
    """The picture's height: the plot, the time axis and the legend's rows."""
    drawn = min(len(chart.series), MAX_SERIES)
    rows = math.ceil(drawn / 2) + (1 if len(chart.series) > drawn else 0)
    return chart.layout.bottom + 52 + max(rows, 1) * chart.layout.legend_row


def draw(chart: Chart) -> str:
    """The chart as a standalone SVG document: gridlines and y ticks with the unit, UTC time
    ticks, one line per series (at most `MAX_SERIES`, the highest peaks), a legend, and a
    dashed vertical line per key time inside the range. No series: a "no data" chart."""
    lay = chart.layout
    drawn = drawn_series(chart.series)
    values = [v for s in drawn for _, v in s.points if math.isfinite(v)]
    height = chart_height(chart)
    low = min([0.0, *values]) if values and min(values) >= 0 else min(values or [0.0])
    ticks = nice_ticks(low, max(values or [1.0]))
    body = [f'<rect width="{lay.width}" height="{height}" fill="#ffffff"/>',
            f'<text class="title" x="{lay.left}" y="18" font-size="14" font-weight="600">'
            f"{_text(chart.title, 110)}</text>",
            *_y_axis(chart, ticks), *_x_axis(chart)]
    if values:
        for n, series in enumerate(drawn):
            path = _paths(chart, series.points, ticks[0], ticks[-1])
            body.append(f'<path class="series" d="{path}" fill="none" stroke="{PALETTE[n]}" '
                        f'stroke-width="1.6" stroke-linejoin="round"/>')
        body += _legend(chart, drawn)
    else:
        when = " and ".join(datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")
                            for t in (chart.start, chart.end))
        body.append(f'<text class="nodata" x="{lay.left + lay.plot_width / 2}" '
                    f'y="{lay.top + lay.plot_height / 2}" text-anchor="middle" '
                    f'font-size="14" fill="#5b6475">No data: the query returned no series between '
                    f"{when} UTC</text>")
    body += _marks(chart)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="firelane-graph" '
            f'width="{lay.width}" height="{height}" viewBox="0 0 {lay.width} {height}" '
            f'role="img" aria-label="{_text(chart.title, 110)}"><g font-family="sans-serif" '
            'font-size="12" fill="#1d2433">' + "".join(body) + "</g></svg>")

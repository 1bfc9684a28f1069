"""How `scripts/bench_tables.py` words a figure: one result file read by dotted path, sample
summaries that fail the consistency check replaced by a marker, numbers at three significant
figures, and targets judged from the figures rather than written by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import figure_problems

__all__ = ["BLOCKS", "INVALID", "NOT_MEASURED", "Doc", "Results", "Summary", "block", "cite",
           "fig", "judge", "load", "ms", "num", "rate", "row", "verdict"]

INVALID = "invalid (rerun needed)"
NOT_MEASURED = "not measured"

Summary = dict[str, Any] | str


class Doc:
    """One benchmark's result file (`data` is None when the file does not exist)."""

    def __init__(self, name: str, data: dict[str, Any] | None) -> None:
        self.name, self.data = name, data

    @property
    def missing(self) -> bool:
        """No result file."""
        return self.data is None

    @property
    def date(self) -> str:
        """The day the run wrote its results."""
        return str((self.data or {}).get("date", "?"))[:10]

    def get(self, path: str) -> Any:
        """The value at a dotted path (a list's items by index), None where any part is
        absent."""
        value: Any = self.data
        for part in path.split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return None
        return value

    def summary(self, path: str) -> Summary:
        """The sample summary at `path`, or the text to print instead: `INVALID` when it fails
        the consistency check, `NOT_MEASURED` when the run has none."""
        value = self.get(path)
        if not isinstance(value, dict):
            return NOT_MEASURED
        return INVALID if figure_problems(value) else value


def num(x: float | None) -> str:
    """Three significant figures, thousands separated from 100 up."""
    if x is None:
        return "—"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def ms(s: Summary, key: str) -> str:
    """One statistic of a summary in milliseconds, or the marker that replaces it."""
    return s if isinstance(s, str) else f"{num(s[key])} ms"


def fig(s: Summary) -> tuple[str, str, str]:
    """p50, p95 and p99 cells of a summary (the marker once when it is replaced)."""
    if isinstance(s, str):
        return s, "", ""
    return ms(s, "p50"), ms(s, "p95"), ms(s, "p99")


def rate(d: Doc, key: str) -> str:
    """Requests per second of a storm section."""
    value = d.get(f"{key}.per_second")
    return NOT_MEASURED if value is None else num(value)


def judge(s: Summary, p50: float | None = None, p99: float | None = None,
          at_least: tuple[float | None, float] | None = None) -> str:
    """**met** or **missed** against the bounds given, or why it cannot be judged."""
    if isinstance(s, str):
        return "not judged"
    ok = (p50 is None or s["p50"] <= p50) and (p99 is None or s["p99"] <= p99)
    if at_least is not None:
        ok = ok and at_least[0] is not None and at_least[0] >= at_least[1]
    return "**met**" if ok else "**missed**"


def verdict(target: str, s: Summary, p50: float | None = None, p99: float | None = None,
            rate: tuple[float | None, float] | None = None) -> str:
    """`target: **met**` (or missed, or not judged)."""
    return f"{target}: {judge(s, p50, p99, rate)}"


def cite(d: Doc) -> str:
    """Where a figure comes from: the file and its date, and whether the run was checked."""
    where = f"`bench/results/{d.name}.json`"
    if d.missing:
        return f"{where}: not run"
    checked = "" if d.get("consistency") == "checked" else \
        ", written before runs were checked for consistency"
    return f"{where}, run of {d.date}{checked}"


def load(d: Doc) -> str:
    """The run's 1-minute load average before and after, and how many processes not its own
    used a CPU-second or more during it (from the result file's `environment`)."""
    env = d.get("environment")
    if not isinstance(env, dict):
        return "machine load not recorded"
    others = [p for p in env["busiest_processes"] if not p["ours"] and p["cpu_seconds"] >= 1]
    return (f"load average {num(env['load_average_before'][0])} before, "
            f"{num(env['load_average_after'][0])} after, most of it the benchmark's own "
            f"processes; {len(others)} processes not its own used a CPU-second or more "
            "during it")


RESULTS = Path(__file__).resolve().parent / "results"
Render = Callable[["Results"], str]
BLOCKS: dict[str, Render] = {}
"""Every block's renderer by name (`block` registers them)."""


class Results:
    """The result files of one folder, by benchmark name."""

    def __init__(self, folder: Path = RESULTS) -> None:
        self.docs = {p.stem: Doc(p.stem, json.loads(p.read_text()))
                     for p in sorted(folder.glob("*.json"))}

    def __getitem__(self, name: str) -> Doc:
        if name not in self.docs:
            return Doc(name, None)
        return self.docs[name]


def block(name: str) -> Callable[[Render], Render]:
    """Register `fn` as the renderer of the blocks named `name`."""

    def register(fn: Render) -> Render:
        BLOCKS[name] = fn
        return fn

    return register


def row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"

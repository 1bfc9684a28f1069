"""Report rendering speed: a 10,000-event timeline to Markdown and to HTML (with the SVG
swimlane), beside the floor of serialising the same entries to JSON, in the same run.

The timeline mixes every source and about one key event in ten; merging (sort and dedup) and the
key times are included in the figures. Writes `bench/results/report.json`.
Usage: `python bench/report.py [--events 10000] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import summarize, write_results
from firelane.models import Incident, Severity
from firelane.timeline import SOURCE_ORDER, Entry, automation_summary, key_times, merge
from flows.records.report import Report, render


def entries(n: int) -> list[Entry]:
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        source = SOURCE_ORDER[i % len(SOURCE_ORDER)]
        kind = "step.succeeded" if source == "runbook" else f"{source}.event"
        out.append(Entry(at=start + timedelta(seconds=i * 0.7), source=source, kind=kind,
                         summary=f"event {i} from {source} <with> & text",
                         key=i % 10 == 0, details={"step_id": f"s{i}", "uses": "core.note"},
                         dedup=f"d{i}" if i % 3 == 0 else None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = entries(args.events)
    incident = Incident(number=1, title="bench", severity=Severity.SEV1, service="web",
                        created_at=raw[0].at)
    timings: dict[str, list[float]] = {"json_floor": [], "markdown": [], "html": []}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        json.dumps([e.model_dump(mode="json") for e in raw])
        timings["json_floor"].append((time.perf_counter() - t0) * 1000)
        for fmt, name in (("md", "markdown"), ("html", "html")):
            t0 = time.perf_counter()
            merged = merge(raw)
            report = Report(incident=incident, entries=merged,
                            times=key_times(incident, merged),
                            automation=automation_summary(merged), tz="Europe/Paris")
            text = render(report, fmt)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert len(text) > args.events * 20
    figures = {k: summarize(v) for k, v in timings.items()}
    print(f"{args.events} events, {args.repeat} runs (ms)   p50      max")
    for name, fig in figures.items():
        print(f"  {name:<28}{fig['p50']:>7}{fig['max']:>9}")
    print(f"wrote {write_results('report', {'params': vars(args), **figures})}")


if __name__ == "__main__":
    main()

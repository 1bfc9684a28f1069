"""One table of every benchmark's figures beside its baseline, from `bench/results/*.json`.

`make bench` runs the benchmarks, then this. A benchmark whose JSON is missing is listed as not
run; each row says which run (date) it comes from, since the files can be from different runs.
Usage: `python bench/summary.py`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

Row = tuple[str, str, str, str, str]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(s: dict[str, Any]) -> str:
    return f"{s['p50']:g} / {s['p95']:g} / {s['p99']:g}"


def _rows() -> list[Row]:
    rows: list[Row] = []
    if (f := _load("fast_path")) is not None:
        first = f["first_request_ms"]
        rows.append(("alert → page request (fast path)", _ms(first["fast_path"]),
                     f"runbook flow {first['runbook_flow']['p50']:g}, floor "
                     f"{first['floor']['p50']:g}",
                     f"{f['fast_path_speedup_over_runbook_flow_p50']}x faster", f["date"][:10]))
    if (f := _load("intake")) is not None:
        naive = f["naive_deployment_page_ms"]["p50"]
        page = f["alert_to_page_ms"]
        rows.append(("alert → page through the intake", _ms(page),
                     f"naive deployment {naive:g}, floor {f['floor_four_calls_ms']['p50']:g}",
                     f"{naive / page['p50']:.0f}x (target ≥ 20x); p50 ≤ 20 / p99 ≤ 100",
                     f["date"][:10]))
        rows.append(("alert → war room through the intake", _ms(f["alert_to_war_room_ms"]), "",
                     "p50 ≤ 100 / p99 ≤ 300", f["date"][:10]))
        storm = f["storm"]
        rows.append(("storm (SQLite store)", f"{storm['per_second']:.0f} alerts/s, p99 "
                     f"{storm['latency_ms']['p99']:g} ms",
                     f"load generator {f['load_generator_ceiling']['per_second']:.0f} req/s",
                     f"{storm['alerts_stored']}/{storm['requests']} stored; ≥ 2,000/s",
                     f["date"][:10]))
        if repeats := f.get("storm_repeats"):
            rates = sorted([storm["per_second"], *(r["per_second"] for r in repeats)])
            rows.append((f"storm (SQLite store), median of {len(rates)} runs",
                         f"{statistics.median(rates):.0f} alerts/s",
                         f"runs {rates[0]:.0f} to {rates[-1]:.0f}/s", "≥ 2,000/s",
                         f["date"][:10]))
        if (pg := f.get("storm_postgresql")) is not None:
            rows.append(("storm (PostgreSQL store)", f"{pg['per_second']:.0f} alerts/s, p99 "
                         f"{pg['latency_ms']['p99']:g} ms", f"SQLite {storm['per_second']:.0f}/s",
                         f"{pg['alerts_stored']}/{pg['requests']} stored", f["date"][:10]))
        for key, label in (("storm", "SQLite"), ("storm_postgresql", "PostgreSQL")):
            if (mem := f.get(key, {}).get("intake_memory")) is not None:
                rows.append((f"intake peak RSS, storm on {label}",
                             f"{mem['after_storm']['peak_rss_mib']:g} MiB",
                             f"before the storm {mem['before_storm']['rss_mib']:g} MiB", "",
                             f["date"][:10]))
    if (f := _load("burst")) is not None:
        rows.append((f"{f['params']['incidents']} incidents at once, web-5xx-rollback",
                     f"{f['burst_total_seconds']:g} s in all",
                     f"one alone {f['alone_median_seconds']:g} s",
                     f"{f['ratio_burst_to_alone']:g}x (target ≤ 3x); "
                     f"{len(f['problems'])} lost/duplicated", f["date"][:10]))
    if (f := _load("engine")) is not None:
        per = f["per_step_ms"]
        rows.append((f"engine, {f['steps']}-step runbook, per step", _ms(per["firelane"]),
                     f"bare Prefect task {per['bare']['p50']:g}",
                     f"overhead {f['overhead_per_step_ms']['p50']:g} ms (target ≤ 10)",
                     f["date"][:10]))
    if (f := _load("report")) is not None:
        rows.append((f"report, {f['params']['events']:,} events (HTML)", _ms(f["html"]),
                     f"JSON floor {f['json_floor']['p50']:g}, Markdown "
                     f"{f['markdown']['p50']:g}", "target ≤ 1,000 ms", f["date"][:10]))
    if (f := _load("validate")) is not None:
        rows.append((f"validate {f['runbooks']} runbooks", _ms(f["validate_all_ms"]),
                     f"PyYAML {f['yaml_safe_load_all_ms']['p50']:g}, libyaml "
                     f"{f['yaml_csafeloader_all_ms']['p50']:g}", "", f["date"][:10]))
    if (f := _load("slack_calls")) is not None:
        kept, stock = (f["client_cpu_ms"][k]["p50"] for k in ("keep_alive", "stock_webclient"))
        rows.append(("one Slack call, kept connections", _ms(f["wall_ms"]["keep_alive"]),
                     f"stock WebClient {f['wall_ms']['stock_webclient']['p50']:g}",
                     f"client CPU {kept:g} against {stock:g} ms", f["date"][:10]))
    if (f := _load("takeover")) is not None:
        short, base = f["configurations"]["page_lease"], f["configurations"]["baseline_step_lease"]
        took = short["kill_to_page_seconds"]
        pages = {n for c in (short, base) for n in c["pages_per_round"]}
        rows.append((f"page taken over after a SIGKILL, {short['page_lease_seconds']:g} s lease",
                     f"{took['p50']:g} s (min {took['min']:g}, max {took['max']:g})",
                     f"{base['page_lease_seconds']:g} s lease "
                     f"{base['kill_to_page_seconds']['p50']:g} s",
                     f"{f['baseline_over_page_lease_p50']:g}x sooner; pages per round "
                     f"{sorted(pages)}", f["date"][:10]))
    return rows


def main() -> None:
    rows = _rows()
    head: Row = ("figure", "p50 / p95 / p99 (ms)", "baseline (p50 ms)", "ratio / target", "run")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    for row in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    missing = [n for n in ("fast_path", "intake", "burst", "engine", "report", "validate",
                                "takeover")
               if not (RESULTS / f"{n}.json").exists()]
    if missing:
        print(f"not run: {', '.join(missing)}")


if __name__ == "__main__":
    main()

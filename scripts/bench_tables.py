"""Write the benchmark figures quoted in README.md and docs/ from `bench/results/*.json`.

    python scripts/bench_tables.py           # rewrite every marked block that changed
    python scripts/bench_tables.py --check   # exit 1 when a block differs from the results

A figure lives in the text only between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, whose
content is what the renderer registered as NAME writes from the committed results, so text and
results cannot drift (`tests/test_bench_tables.py` fails when they do). A figure from a sample
summary that fails `bench.common.figure_problems` (no samples, a negative one) is written as
"invalid (rerun needed)", never printed; a result file written before runs were checked for
consistency says so where it is cited.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import figure_problems  # noqa: E402
from bench.figures import (  # noqa: E402
    INVALID,
    Doc,
    cite,
    fig,
    judge,
    load,
    ms,
    num,
    rate,
    verdict,
)

__all__ = ["BLOCKS", "INVALID", "Results", "main", "rewrite", "stale_files"]

RESULTS = ROOT / "bench" / "results"
BLOCK = re.compile(r"(<!-- bench:([a-z0-9-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)

Render = Callable[["Results"], str]
BLOCKS: dict[str, Render] = {}


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


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


@block("intake")
def _intake(r: Results) -> str:
    d = r["intake"]
    if d.missing:
        return cite(d) + "\n"
    p = d.get("params")
    page, room = d.summary("alert_to_page_ms"), d.summary("alert_to_war_room_ms")
    naive = d.summary("naive_deployment_page_ms")
    speedup = (f"**{naive['p50'] / page['p50']:.0f}x** at p50"
               if isinstance(naive, dict) and isinstance(page, dict) else INVALID)
    lines = [
        f"Figures from {cite(d)}: {p['alerts']} sequential alerts, each sent once the previous "
        f"war room exists; a {p['storm']:,}-alert storm over {p['fingerprints']} fingerprints "
        f"from {p['clients']} clients, with {p['probes']} new alerts sent one at a time during "
        "it (page under storm).", "",
        _row("measure", "p50", "p95", "p99", "target"), "|---|---|---|---|---|",
        _row("alert → page", *fig(page),
             verdict("p50 ≤ 20, p99 ≤ 100 ms", page, p50=20, p99=100)),
        _row("alert → war room (ticket, page, channel, bridge)", *fig(room),
             verdict("p50 ≤ 100, p99 ≤ 300 ms", room, p50=100, p99=300)),
        _row("floor: the four calls straight to the sandbox, concurrently",
             *fig(d.summary("floor_four_calls_ms")), "—"),
        _row("naive: `run_deployment` to a served deployment (poll 1 s)", ms(naive, "p50"),
             "", "", f"fast path ≥ 20x faster: {speedup}"),
        _row("load generator's ceiling (trivial endpoint) / intake `/healthz`",
             f"{rate(d, 'load_generator_ceiling')} / {rate(d, 'intake_healthz_ceiling')} req/s",
             "", "", ""),
    ]
    pg = r["intake_postgresql"] if not r["intake_postgresql"].missing else d
    for doc, key, label in ((d, "storm", "SQLite"), (pg, "storm_postgresql", "PostgreSQL")):
        if doc.get(key) is None:
            continue
        storm = doc.summary(f"{key}.latency_ms")
        lines.append(_row(f"storm with responses, {label} store",
                          f"{rate(doc, key)} alerts/s committed, latency p99 {ms(storm, 'p99')}",
                          "", "", verdict("≥ 2,000/s, p99 ≤ 50 ms", storm, p99=50,
                                          rate=(doc.get(f"{key}.per_second"), 2000))))
        under = doc.summary(f"{key}.page_under_storm_ms")
        lines.append(_row(f"page under storm, {label} store", *fig(under),
                          verdict("p99 ≤ 1 s", under, p99=1000)))
    for i, g in enumerate(d.get("storm_grouped") or []):
        lat = d.summary(f"storm_grouped.{i}.latency_ms")
        lines.append(_row(f"storm in groups of {g['alerts_per_request']} alerts per request, "
                          "with responses, SQLite store",
                          f"{num(g['per_second'])} alerts/s committed, request latency p99 "
                          f"{ms(lat, 'p99')}", "", "",
                          verdict("≥ 20,000/s", lat, rate=(g["per_second"], 20_000))))
    if pg is not d:
        lines += ["", f"The PostgreSQL rows are from {cite(pg)}, a separate run "
                      f"(`bench/intake.py --pg-storm-only`; {load(pg)}): compare them with "
                      "the SQLite rows only as far as the machine's load allows."]
    return "\n".join(lines) + "\n"


@block("intake-detail")
def _intake_detail(r: Results) -> str:
    d = r["intake"]
    if d.missing:
        return cite(d) + "\n"
    parts = [f"{name} {ms(d.summary(f'page_breakdown_ms.{key}'), 'p50')}" for key, name in (
        ("received_to_recorded", "alert received → response recorded (parse, group commit)"),
        ("recorded_to_claimed", "recorded → page step claimed (wake-up, claim, run set-up)"),
        ("page_step", "the page step itself (ledger writes and the PagerDuty call)"))]
    storm = d.get("storm")
    text = (f"The SQLite storm stored {storm['alerts_stored']:,} of {_sent(storm):,} "
            f"alerts and created {storm['incidents_created']} incidents. Where the page's time "
            f"goes (p50, from the store's own timestamps): {', '.join(parts)}.\n")
    pg = r["intake_postgresql"]
    rows = []
    for doc, key, label in ((d, "storm", "SQLite"), (pg, "storm_postgresql", "PostgreSQL")):
        if doc.missing or not doc.get(f"{key}.page_under_storm_breakdown_ms"):
            continue
        cells = [f"{ms(doc.summary(f'{key}.page_under_storm_breakdown_ms.{part}'), 'p50')} / "
                 f"{ms(doc.summary(f'{key}.page_under_storm_breakdown_ms.{part}'), 'p99')}"
                 for part in ("received_to_recorded", "recorded_to_claimed", "page_step")]
        rows.append(_row(label, *cells))
    if rows:
        text += ("\nThe page under storm, p50 / p99 of each part:\n\n"
                 + _row("store", "received → recorded", "recorded → page step claimed",
                        "page step") + "\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return text


@block("intake-spaced")
def _intake_spaced(r: Results) -> str:
    d = r["intake_spaced"]
    if d.missing:
        return cite(d) + "\n"
    page, room = d.summary("alert_to_page_ms"), d.summary("alert_to_war_room_ms")
    return (f"With alerts {num(d.get('params.spacing'))} s apart (`--spacing`, "
            f"{d.get('params.alerts')} alerts; {cite(d)}) the page takes {ms(page, 'p50')} p50 "
            f"/ {ms(page, 'p99')} p99 (target p50 ≤ 20, p99 ≤ 100 ms: "
            f"{judge(page, p50=20, p99=100)}) and the war room "
            f"{ms(room, 'p50')} / {ms(room, 'p99')} (target p50 ≤ 100, p99 ≤ 300 ms: "
            f"{judge(room, p50=100, p99=300)}).\n")


@block("intake-ingest")
def _intake_ingest(r: Results) -> str:
    d = r["intake_ingest"]
    if d.missing:
        return cite(d) + "\n"
    s = d.get("storm_ingest_only")
    lat = d.summary("storm_ingest_only.latency_ms")
    return (f"Ingestion alone ({cite(d)}) commits {rate(d, 'storm_ingest_only')} alerts/s with "
            f"latency p50 {ms(lat, 'p50')} / p99 {ms(lat, 'p99')} ({s['alerts_stored']:,} of "
            f"{_sent(s):,} stored, {s['incidents_created']} incidents) against a "
            f"load-generator ceiling of {rate(d, 'load_generator_ceiling')} req/s; target "
            f"p99 ≤ 50 ms: {judge(lat, p99=50)}, ≥ 2,000 alerts/s: "
            f"{judge(lat, at_least=(d.get('storm_ingest_only.per_second'), 2000))}."
            f"{_grouped(d, 'storm_grouped_ingest_only')}\n")


def _sent(storm: dict[str, Any]) -> int:
    """Alerts a storm sent (files before grouped storms counted one alert per request)."""
    return int(storm.get("alerts_sent", storm["requests"]))


def _grouped(d: Doc, key: str) -> str:
    """The grouped storms of `key` as a sentence ("" when the file has none)."""
    parts = []
    for i, g in enumerate(d.get(key) or []):
        lat = d.summary(f"{key}.{i}.latency_ms")
        parts.append(f"{g['alerts_per_request']} alerts per request: {num(g['per_second'])} "
                     f"alerts/s, request latency p99 {ms(lat, 'p99')} ({g['alerts_stored']:,} "
                     f"of {_sent(g):,} stored; target ≥ 20,000 alerts/s: "
                     f"{judge(lat, at_least=(g['per_second'], 20_000))})")
    return f" In Alertmanager-sized groups: {'; '.join(parts)}." if parts else ""


@block("intake-memory")
def _intake_memory(r: Results) -> str:
    d = r["intake"]
    pg = r["intake_postgresql"] if not r["intake_postgresql"].missing else d
    parts = [f"{num(doc.get(f'{key}.intake_memory.after_storm.peak_rss_mib'))} MiB ({label}, "
             f"{doc.date})" for doc, key, label in ((d, "storm", "SQLite"),
                                                     (pg, "storm_postgresql", "PostgreSQL"))
             if doc.get(f"{key}.intake_memory") is not None]
    return f"The intake's peak resident memory during the storm: {', '.join(parts)}.\n"


@block("burst")
def _burst(r: Results) -> str:
    d = r["burst"]
    if d.missing:
        return cite(d) + "\n"
    ratio = d.get("ratio_burst_to_alone")
    above = "**above the 3x target**" if ratio > 3 else "within the 3x target"
    cpu = d.get("cpu_seconds_per_incident")
    by = ", ".join(f"{k} {num(v)}" for k, v in d.get("burst_cpu_seconds_by_process").items())
    return (f"From {cite(d)}: one incident alone takes {num(d.get('alone_median_seconds'))} s "
            f"(median of {d.get('params.alone')}); {d.get('params.incidents')} declared "
            f"together take {num(d.get('burst_total_seconds'))} s in all, {num(ratio)}x one "
            f"alone, {above}; {len(d.get('problems'))} problems found in "
            f"{d.get('incidents_checked')} incidents checked (lost or duplicated side effects, "
            f"wrong step outcomes). CPU per incident: {num(cpu['alone'])} s alone, "
            f"{num(cpu['burst'])} s in the burst; CPU seconds during the burst by process: "
            f"{by}.\n")


def _takeover_text(d: Doc) -> tuple[str, str]:
    short = d.get("configurations.page_lease")
    base = d.get("configurations.baseline_step_lease")

    def took(c: dict[str, Any]) -> str:
        s = c["kill_to_page_seconds"]
        return (f"{num(s['p50'])} s p50 over {c['rounds']} rounds (min {num(s['min'])}, max "
                f"{num(s['max'])} s)")

    pages = sorted({n for c in (short, base) for n in c["pages_per_round"]})
    once = ("exactly one page at the sandbox every round" if pages == [1]
            else f"pages at the sandbox per round: {pages}")
    return (f"with the default {num(short['page_lease_seconds'])} s page lease, {took(short)}; "
            f"with the page lease equal to the {num(base['page_lease_seconds'])} s step lease, "
            f"{took(base)}, {num(d.get('baseline_over_page_lease_p50'))}x longer",
            once)


@block("takeover")
def _takeover(r: Results) -> str:
    d = r["takeover"]
    if d.missing:
        return cite(d) + "\n"
    text, pages = _takeover_text(d)
    return f"From {cite(d)}: {text}; {pages}.\n"


@block("engine")
def _engine(r: Results) -> str:
    d = r["engine"]
    if d.missing:
        return cite(d) + "\n"
    over = d.summary("overhead_per_step_ms")
    return (f"From {cite(d)}: {d.get('steps')} steps, {d.get('rounds')} rounds interleaved: "
            f"{ms(d.summary('per_step_ms.firelane'), 'p50')} per step against "
            f"{ms(d.summary('per_step_ms.bare'), 'p50')} per bare task, an overhead of "
            f"{ms(over, 'p50')} per step p50 (target ≤ {num(d.get('target_overhead_ms'))} ms: "
            f"{judge(over, p50=d.get('target_overhead_ms'))}).\n")


@block("report")
def _report(r: Results) -> str:
    d = r["report"]
    if d.missing:
        return cite(d) + "\n"
    return (f"{d.get('params.events'):,} events, p50 of {d.get('params.repeat')} runs "
            f"({cite(d)}): Markdown {ms(d.summary('markdown'), 'p50')}, HTML with the chart "
            f"{ms(d.summary('html'), 'p50')}, beside a {ms(d.summary('json_floor'), 'p50')} "
            "JSON floor.\n")


@block("validate")
def _validate(r: Results) -> str:
    d = r["validate"]
    if d.missing:
        return cite(d) + "\n"
    return (f"Validating {d.get('runbooks')} generated runbooks takes "
            f"{ms(d.summary('validate_all_ms'), 'p50')} (p50 of {d.get('repeat')} rounds; "
            f"{cite(d)}), against {ms(d.summary('yaml_csafeloader_all_ms'), 'p50')} just to "
            f"load the same YAML with libyaml and {ms(d.summary('yaml_safe_load_all_ms'), 'p50')}"
            " with PyYAML's pure-Python loader.\n")


@block("fast-path")
def _fast_path(r: Results) -> str:
    d = r["fast_path"]
    if d.missing:
        return cite(d) + "\n"
    labels = {"floor": "bare httpx POST (the floor)", "task": "standalone Prefect task",
              "plain_flow": "plain async flow calling that task",
              "runbook_flow": "store writes + `run-runbook` flow in a warm process",
              "fast_path": "**store writes + urgent steps through `execute_step()` beside the "
                           "flow run**"}
    lines = [f"Figures from {cite(d)}, {d.get('runs')} runs of each path:", "",
             "| path | p50 | p95 | p99 |", "|---|---|---|---|"]
    for key, label in labels.items():
        lines.append(_row(label, *fig(d.summary(f"first_request_ms.{key}"))))
    return "\n".join(lines) + "\n"


@block("idle")
def _idle(r: Results) -> str:
    d = r["idle"]
    if d.missing:
        return cite(d) + "\n"
    lines = [f"From {cite(d)}; percent of one core per idle process over "
             f"{num(d.get('window_seconds'))} s:", "",
             "| store | mode | `urgent` | `urgent` | `flows` | `sleep` baseline |",
             "|---|---|---|---|---|---|"]
    for store, modes in d.get("cpu").items():
        for mode, procs in modes.items():
            lines.append(_row("SQLite" if store == "sqlite" else "PostgreSQL",
                              f"{mode}: {d.get('modes')[mode]}",
                              *(f"{procs[k]:.2f} %" for k in (
                                  "respond urgent-1", "respond urgent-2", "respond flows",
                                  "baseline (sleep)"))))
    lines += ["", f"Alert → page at an idle `--role urgent` responder "
                  f"({d.get('latency_setup')}):", "",
              "| store | mode | p50 | p95 | max |", "|---|---|---|---|---|"]
    for store, modes in d.get("page_latency_ms").items():
        for mode in modes:
            s = d.summary(f"page_latency_ms.{store}.{mode}")
            lines.append(_row("SQLite" if store == "sqlite" else "PostgreSQL", mode,
                              ms(s, "p50"), ms(s, "p95"), ms(s, "max")))
    slower = [("SQLite" if store == "sqlite" else "PostgreSQL") for store, modes in
              d.get("page_latency_ms").items()
              if (p50s := [m.get("p50") for m in modes.values()]) and p50s[0] > p50s[-1]]
    lines += ["", "At p50, woken was slower than polling only on: "
                  f"{', '.join(slower)}." if slower else
                  "At p50, woken was no slower than polling only on either store."]
    return "\n".join(lines) + "\n"


def rewrite(text: str, results: Results, where: str = "") -> str:
    """`text` with every marked block's content rendered anew from `results`."""

    def render(m: re.Match[str]) -> str:
        if m.group(2) not in BLOCKS:
            raise KeyError(f"{where}: no renderer for block bench:{m.group(2)}")
        return m.group(1) + BLOCKS[m.group(2)](results) + m.group(4)

    return BLOCK.sub(render, text)


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def stale_files(root: Path = ROOT, results: Results | None = None) -> list[str]:
    """Pages whose blocks differ from what the results render now."""
    results = results or Results(root / "bench" / "results")
    return [p.relative_to(root).as_posix() for p in pages(root)
            if rewrite(p.read_text(encoding="utf-8"), results, p.name)
            != p.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the stale blocks, or with `--check` list them and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a block is stale")
    args = parser.parse_args(argv)
    results = Results()
    for name, doc in results.docs.items():
        if doc.data is not None and (problems := figure_problems(doc.data)):
            print(f"bench/results/{name}.json fails the consistency check: "
                  + "; ".join(problems), file=sys.stderr)
    stale = stale_files(ROOT, results)
    if args.check:
        for path in stale:
            print(f"{path}: benchmark figures differ from bench/results (run "
                  "`make bench-tables`)", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        page = ROOT / path
        page.write_text(rewrite(page.read_text(encoding="utf-8"), results, path),
                        encoding="utf-8")
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

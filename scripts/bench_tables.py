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
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.tables_intake  # noqa: E402,F401  (registers the intake's blocks)
from bench.common import figure_problems  # noqa: E402
from bench.figures import (  # noqa: E402
    BLOCKS,
    INVALID,
    Doc,
    Results,
    block,
    cite,
    fig,
    judge,
    ms,
    num,
)
from bench.figures import row as _row  # noqa: E402

__all__ = ["BLOCKS", "INVALID", "Results", "main", "rewrite", "stale_files"]

BLOCK = re.compile(r"(<!-- bench:([a-z0-9-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


@block("burst")
def _burst(r: Results) -> str:
    d = r["burst"]
    if d.missing:
        return cite(d) + "\n"
    ratio = d.get("ratio_burst_to_alone")
    above = "target ≤ 3x: **missed**" if ratio > 3 else "target ≤ 3x: **met**"
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


@block("burst-responders")
def _burst_responders(r: Results) -> str:
    lines = []
    for name, when in (("burst_responders", "on a machine doing nothing else"),
                       ("burst_responders_storm", "beside a storm of alerts on an intake")):
        d = r[name]
        if d.missing:
            lines.append(f"{when[0].upper()}{when[1:]}: {cite(d)}.")
            continue
        rows = [_row("`respond --role flows` processes", "one alone (median)",
                     f"{d.get('params.incidents')} at once", "ratio (target ≤ 3x)",
                     "CPU seconds during the burst", "peak memory per process"),
                "|---|---|---|---|---|---|"]
        for run in d.get("runs") or []:
            ratio = run["ratio_burst_to_alone"]
            cpu = ", ".join(f"{k} {v}" for k, v in run["burst_cpu_seconds_by_process"].items()
                            if v)
            peaks = ", ".join(f"{k} {v} MiB" for k, v in
                              (run.get("peak_memory_mib_by_process") or {}).items())
            rows.append(_row(str(run["flows_processes"]), f"{run['alone_median_seconds']} s",
                             f"{run['burst_total_seconds']} s",
                             f"{ratio}x: {'**met**' if ratio <= 3 else '**missed**'}", cpu,
                             peaks or "not measured in this run"))
        lines += [f"{when[0].upper()}{when[1:]} ({cite(d)}):", "", *rows, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


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


@block("slack-calls")
def _slack_calls(r: Results) -> str:
    d = r["slack_calls"]
    if d.missing:
        return cite(d) + "\n"
    lines = [f"From {cite(d)}: {d.get('params.rounds')} alternated rounds of "
             f"{d.get('params.calls')} `chat.postMessage` calls per client, against the sandbox "
             "in its own process; CPU is the calling thread's:", "",
             "| client | wall p50 | wall p99 | client CPU p50 | client CPU p99 |",
             "|---|---|---|---|---|"]
    for key, label in (("stock_webclient", "slack_sdk `WebClient` (a connection per call)"),
                       ("keep_alive", "`KeepAliveWebClient` (kept connections)")):
        wall, cpu = d.summary(f"wall_ms.{key}"), d.summary(f"client_cpu_ms.{key}")
        lines.append(_row(label, ms(wall, "p50"), ms(wall, "p99"), ms(cpu, "p50"),
                          ms(cpu, "p99")))
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

"""The intake benchmark's blocks in the docs (`scripts/bench_tables.py` writes them): the
intake table with both stores' storms, where the page's time goes, spaced alerts, ingestion
alone and the intake's memory."""

from __future__ import annotations

from statistics import median
from typing import Any

from bench.figures import (
    INVALID,
    Doc,
    Results,
    block,
    cite,
    fig,
    judge,
    load,
    ms,
    num,
    rate,
    verdict,
)
from bench.figures import row as _row

__all__: list[str] = []


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
        cell = f"{rate(doc, key)} alerts/s committed, latency p99 {ms(storm, 'p99')}"
        runs = _storm_runs(doc, key)
        if runs is None:
            judged = verdict("≥ 2,000/s, p99 ≤ 50 ms", storm, p99=50,
                             rate=(doc.get(f"{key}.per_second"), 2000))
        elif isinstance(runs, str):
            cell += f"; its repeats: {runs}"
            judged = verdict("≥ 2,000/s, p99 ≤ 50 ms", runs)
        else:
            rates, p99s = runs
            cell += (f"; {len(rates)} runs (this one and {len(rates) - 1} more, each on a fresh "
                     f"store): median {num(median(rates))} alerts/s ({num(min(rates))} to "
                     f"{num(max(rates))}), latency p99 median {num(median(p99s))} ms "
                     f"({num(min(p99s))} to {num(max(p99s))})")
            judged = verdict(f"≥ 2,000/s, p99 ≤ 50 ms, the medians of {len(rates)} runs",
                             {"p50": 0.0, "p99": median(p99s)}, p99=50,
                             rate=(median(rates), 2000))
        lines.append(_row(f"storm with responses, {label} store", cell, "", "", judged))
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
            f"/ {ms(page, 'p99')} p99 (target p50 ≤ 20 ms: {judge(page, p50=20)}, p99 ≤ "
            f"100 ms: {judge(page, p99=100)}) and the war room "
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
            f"{judge(lat, at_least=(d.get('storm_ingest_only.per_second'), 2000))} (the "
            f"target is set with responses running; this is the intake's own ceiling)."
            f"{_grouped(d, 'storm_grouped_ingest_only')}{_several(d)}\n")


def _several(d: Doc) -> str:
    """The same storms against several intake processes on one store, SQLite then PostgreSQL
    ("" when not run)."""
    out = ""
    for key, store in (("several_intakes", "one SQLite store"),
                       ("several_intakes_postgresql", "one PostgreSQL store on this machine")):
        n = d.get(f"{key}.intakes")
        if not n:
            continue
        lat = d.summary(f"{key}.storm_ingest_only.latency_ms")
        per_second = d.get(f"{key}.storm_ingest_only.per_second")
        out += (f" With {n} intake processes on {store} (all on this host, the load "
                f"generator's clients split between them; no load balancer): "
                f"{rate(d, f'{key}.storm_ingest_only')} alerts/s one per "
                f"request, latency p99 {ms(lat, 'p99')} (target ≥ 2,000/s, p99 ≤ 50 ms: "
                f"{judge(lat, p99=50, at_least=(per_second, 2000))})."
                f"{_grouped(d, f'{key}.storm_grouped_ingest_only')}")
    return out


def _storm_runs(d: Doc, key: str) -> tuple[list[float], list[float]] | str | None:
    """The rates and latency p99s of a storm and its repeats (`--storm-repeats`); None when it
    has none, `INVALID` when any of them fails the consistency check."""
    repeats = d.get("storm_repeats") if key == "storm" else None
    if not repeats:
        return None
    paths = [key, *(f"storm_repeats.{n}" for n in range(len(repeats)))]
    summaries = [d.summary(f"{path}.latency_ms") for path in paths]
    rates = [d.get(f"{path}.per_second") for path in paths]
    if any(isinstance(s, str) for s in summaries) or None in rates:
        return INVALID
    return [float(r) for r in rates], [float(s["p99"]) for s in summaries
                                       if not isinstance(s, str)]


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

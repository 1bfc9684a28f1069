"""Alert intake, end to end: alert→page, alert→war-room, the naive path, the floor, a storm.

Starts PostgreSQL and a Prefect server on it, the sandbox (`firelane sandbox`), the intake
(`firelane serve --sandbox --responder external`) and the responder (`firelane respond`) as
separate processes, then measures, in one run:

- alert→page and alert→war-room over N alerts with distinct fingerprints, one at a time (the
  sandbox stamps when each ticket, page, channel and meeting is created);
- the naive path: the same runbook started with `run_deployment` on a served deployment
  (poll 1 s), and the floor: the four creating calls made directly with httpx, concurrently;
- a storm: M alerts over K fingerprints from C concurrent clients (accepted/s, latency, incidents
  created, alerts lost), beside the load generator's ceiling against `/healthz`, and pages for
  new alerts sent one at a time while the storm runs.

Then the storm again `--storm-repeats` times, each on a fresh SQLite store, intake and
responders (one storm's rate moves by a quarter from run to run here; the docs judge the median),
and the same storm with the incident store on PostgreSQL (fresh intake and responders),
and each storm's intake memory (resident before, peak after, from its `/metrics`).

Every timed alert is a probe with an id unique to the run and the measure
(`bench/intake_probes.py`); a probe missing, duplicated, seen before it was sent, or an arrival
no probe accounts for aborts the run before anything is written.

Writes `bench/results/intake.json`; `--pg-storm-only` runs only the PostgreSQL storm and writes
`bench/results/intake_postgresql.json`. Usage: `python bench/intake.py [--alerts 200] ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    SANDBOX_ZOOM_LIMIT,
    free_port,
    prefect_server,
    summarize,
    write_results,
)
from bench.intake_probes import (  # noqa: E402
    RUN,
    TOKEN,
    alert,
    floor,
    naive,
    pages,
    sequential,
    war_rooms,
)
from bench.intake_storm import grouped_storms, storm  # noqa: E402
from bench.intake_support import (  # noqa: E402
    Arrivals,
    count_storm,
    memory,
    process,
    start_firelane,
    where_time_goes,
)
from tests.pgserver import create_database, postgres_server  # noqa: E402

__all__ = ["TOKEN", "alert", "main"]


async def run(args: argparse.Namespace, intake: str, sandbox: tuple[str, str],
              store_url: str, trivial: str) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=sandbox[1])) as sc:
        arrivals = Arrivals(sc, sandbox[0])
        await arrivals.poll()
        await sequential(intake, arrivals, 3, "warmup", war_room=store_url)
        seq = await sequential(intake, arrivals, args.alerts, "seq", war_room=store_url,
                               spacing=args.spacing)
        page = await pages(arrivals, seq, "alert → page")
        room = await war_rooms(arrivals, seq, "alert → war room")
        floor_ms = await floor(sandbox[0], sandbox[1], arrivals, args.alerts)
        naive_ms = await naive(store_url, sandbox, arrivals, args.naive)
        ceiling = await storm(trivial, arrivals, args.storm, args.fingerprints, args.clients,
                              0, path="/healthz")
        intake_ceiling = await storm(intake, arrivals, args.storm, args.fingerprints,
                                     args.clients, 0, path="/healthz")
        before = await memory(intake)
        stormed = await storm(intake, arrivals, args.storm, args.fingerprints, args.clients,
                              args.probes, label="sqlite", store_url=store_url)
        stormed["intake_memory"] = {"before_storm": before, "after_storm": await memory(intake)}
        grouped = await grouped_storms(intake, arrivals, args, store_url)
    return {"run_id": RUN, "storm_grouped": grouped, "alert_to_page_ms": summarize(page),
            "page_breakdown_ms": where_time_goes(store_url, f"{seq.prefix}%"),
            "alert_to_war_room_ms": summarize(room),
            "floor_four_calls_ms": summarize(floor_ms), "naive_deployment_page_ms":
            summarize(naive_ms) if naive_ms else None, "load_generator_ceiling": ceiling,
            "intake_healthz_ceiling": intake_ceiling,
            "storm": {**stormed, **count_storm(store_url)}}


def _ingest(args: argparse.Namespace, work: Path, intakes: int,
            store_url: str) -> dict[str, Any]:
    """The storms (one alert per request, then the grouped ones) against `intakes` intake
    processes that start no responses, on a fresh store (migrated first, so the intakes do not
    race to create it), clients spread over them."""
    from firelane.store import open_store

    open_store(store_url).engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_DATABASE_URL": store_url,
           "BENCH_TOKEN": TOKEN, "FIRELANE_CATALOG": str(work / "none.yaml")}
    with contextlib.ExitStack() as stack:
        ports = [free_port() for _ in range(intakes)]
        for n, port in enumerate(ports):
            stack.enter_context(process(
                [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), "--config",
                 str(work / "intake.yaml"), "--no-respond"], env, "Firelane intake on",
                work / f"intake-{intakes}-{n}-{store_url.split(':')[0]}.log"))
        time.sleep(2)
        urls = ",".join(f"http://127.0.0.1:{port}" for port in ports)

        async def storms() -> dict[str, Any]:
            stormed = await storm(urls, None, args.storm, args.fingerprints, args.clients, 0)
            stormed.update(count_storm(store_url))
            return {"storm_ingest_only": stormed,
                    "storm_grouped_ingest_only": await grouped_storms(urls, None, args,
                                                                      store_url)}

        return asyncio.run(storms())


def ingest_only(args: argparse.Namespace, work: Path) -> None:
    """The storm against one intake that starts no responses, then against `--intakes` of
    them on one store (as behind a load balancer; SQLite, then PostgreSQL on this machine),
    beside the load generator's ceiling; writes `bench/results/intake_ingest.json`."""
    with contextlib.ExitStack() as stack:
        trivial_port = free_port()
        stack.enter_context(process(
            [sys.executable, "bench/rawhttp.py", str(trivial_port)], dict(os.environ),
            "trivial endpoint", work / "trivial.log"))
        time.sleep(1)
        ceiling = asyncio.run(storm(f"http://127.0.0.1:{trivial_port}", None, args.storm,
                                    args.fingerprints, args.clients, 0, path="/healthz"))
    figures: dict[str, Any] = {"load_generator_ceiling": ceiling,
                               **_ingest(args, work, 1, f"sqlite:///{work}/ingest-1.db")}
    if args.intakes > 1:
        figures["several_intakes"] = {"intakes": args.intakes, **_ingest(
            args, work, args.intakes, f"sqlite:///{work}/ingest-{args.intakes}.db")}
        with postgres_server() as pg:
            figures["several_intakes_postgresql"] = {"intakes": args.intakes, **_ingest(
                args, work, args.intakes, create_database(pg, "bench_ingest"))}
    shown = [("load_generator_ceiling", ceiling)]
    for where, part in (("", figures), (f"{args.intakes} intakes: ",
                                        figures.get("several_intakes")),
                        (f"{args.intakes} intakes, PostgreSQL: ",
                         figures.get("several_intakes_postgresql"))):
        if part:
            shown += [(f"{where}storm_ingest_only", part["storm_ingest_only"]),
                      *((f"{where}groups of {g['alerts_per_request']}", g)
                        for g in part["storm_grouped_ingest_only"])]
    for key, fig in shown:
        print(f"{key:<30}{fig['per_second']:>9}/s  latency p50 {fig['latency_ms']['p50']} "
              f"p99 {fig['latency_ms']['p99']} ms  statuses {fig['statuses']}")
        if "alerts_stored" in fig:
            print(f"  incidents {fig['incidents_created']}, alerts stored "
                  f"{fig['alerts_stored']} of {fig['alerts_sent']}")
    print(f"wrote {write_results('intake_ingest', {'params': vars(args), **figures})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--naive", type=int, default=10)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--fingerprints", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--groups", type=lambda v: [int(x) for x in v.split(",")],
                        default=[10, 100], help="alerts per request of the grouped storms "
                        "(comma-separated; Alertmanager sends a notification group's alerts "
                        "in one request)")
    parser.add_argument("--grouped-alerts", type=int, default=50_000,
                        help="alerts in each grouped storm")
    parser.add_argument("--spacing", type=float, default=0.0,
                        help="seconds between sequential alerts (0: back to back)")
    parser.add_argument("--responder", choices=["external", "inline"], default="external",
                        help="responses in a separate `firelane respond` process, or inline")
    parser.add_argument("--flows", choices=["split", "hand-off", "in-process"],
                        default="split",
                        help="split: `respond --role urgent` pages, `respond --role flows` "
                             "runs the flow runs; hand-off: flow runs go to a served "
                             "deployment (a process each); in-process: one responder does both")
    parser.add_argument("--no-pg-storm", dest="pg_storm", action="store_false",
                        help="skip the second storm, on a PostgreSQL incident store")
    parser.add_argument("--ingest-only", action="store_true",
                        help="only the intake (--no-respond) and the trivial endpoint: the "
                             "storm's ingestion ceiling without responses competing for CPU")
    parser.add_argument("--intakes", type=int, default=2,
                        help="with --ingest-only: the storms again against this many intake "
                             "processes on one store (1: only one intake)")
    parser.add_argument("--storm-repeats", type=int, default=4,
                        help="the SQLite storm with responses this many more times, each on a "
                             "fresh store, intake and responders: its rate moves by a quarter "
                             "from run to run here, so the table judges the median of all runs")
    parser.add_argument("--storm-only", action="store_true",
                        help="only the storm with its page under storm on the SQLite store; "
                             "prints its figures and writes nothing (for profiling)")
    parser.add_argument("--pg-storm-only", action="store_true",
                        help="only the storm on a PostgreSQL incident store (with its page "
                             "under storm); writes bench/results/intake_postgresql.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="firelane-bench-intake-"))
    store_url = f"sqlite:///{work}/firelane.db"
    (work / "intake.yaml").write_text(
        "sources:\n  alertmanager: {bearer_token: {env: BENCH_TOKEN}}\n")
    if args.ingest_only:
        ingest_only(args, work)
        return
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        api = stack.enter_context(prefect_server(pg.replace("+psycopg", "+asyncpg")))
        env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT),
               "FIRELANE_DATABASE_URL": store_url, "BENCH_TOKEN": TOKEN,
               "PREFECT_LOGGING_LEVEL": "WARNING", "FIRELANE_CATALOG": str(work / "none.yaml")}
        os.environ.update({k: env[k] for k in ("PREFECT_API_URL", "FIRELANE_DATABASE_URL",
                                               "PREFECT_LOGGING_LEVEL", "FIRELANE_CATALOG")})
        line = stack.enter_context(process(
            [sys.executable, "-m", "flows.cli", "sandbox", "--port", str(free_port()),
             "--zoom-daily-limit", SANDBOX_ZOOM_LIMIT], env,
            "export FIRELANE_SANDBOX_URL", work / "sandbox.log"))
        sandbox_url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
        env.update({"FIRELANE_SANDBOX_URL": sandbox_url, "FIRELANE_SANDBOX_CA": ca})
        os.environ.update({"FIRELANE_SANDBOX_URL": sandbox_url, "FIRELANE_SANDBOX_CA": ca})
        if args.pg_storm_only:
            figures: dict[str, Any] = {
                "run_id": RUN, "storm_postgresql": storm_on_postgresql(args, env, work, pg)}
            show(figures)
            print(f"wrote {write_results('intake_postgresql', {'params': vars(args), **figures})}")
            return
        if args.storm_only:
            show({"storm": fresh_storm(args, env, work, store_url, "sqlite")})
            return
        with contextlib.ExitStack() as phase:
            port = start_firelane(phase, args, env, work, "")
            phase.enter_context(process(
                [sys.executable, "bench/naive_runner.py"], {**env, "PYTHONUNBUFFERED": "1"},
                "", work / "naive.log"))
            trivial_port = free_port()
            phase.enter_context(process(
                [sys.executable, "bench/rawhttp.py", str(trivial_port)], env,
                "trivial endpoint", work / "trivial.log"))
            time.sleep(3)
            figures = asyncio.run(run(args, f"http://127.0.0.1:{port}", (sandbox_url, ca),
                                      store_url, f"http://127.0.0.1:{trivial_port}"))
        if not args.spacing:
            figures["storm_repeats"] = [repeat_storm(args, env, work, n)
                                        for n in range(1, args.storm_repeats + 1)]
        if args.pg_storm:
            figures["storm_postgresql"] = storm_on_postgresql(args, env, work, pg)
    show(figures)
    name = "intake" if not args.spacing else "intake_spaced"
    print(f"wrote {write_results(name, {'params': vars(args), **figures})}")


def storm_on_postgresql(args: argparse.Namespace, env: dict[str, str], work: Path,
                        pg: str) -> dict[str, Any]:
    """The same storm, with responses, against an intake and responders whose incident store
    is PostgreSQL (the one the Prefect server uses, its own database)."""
    store_url = create_database(pg, "bench_store")
    return fresh_storm(args, {**env, "FIRELANE_DATABASE_URL": store_url}, work, store_url,
                       "postgresql", warm_up=False)


def repeat_storm(args: argparse.Namespace, env: dict[str, str], work: Path,
                 n: int) -> dict[str, Any]:
    """The SQLite storm again (`--storm-repeats`), on a store, intake and responders of its
    own, its probes named apart from every other storm's."""
    store_url = f"sqlite:///{work}/storm-repeat-{n}.db"
    return fresh_storm(args, {**env, "FIRELANE_DATABASE_URL": store_url}, work, store_url,
                       f"sqlite-r{n}")


def fresh_storm(args: argparse.Namespace, env: dict[str, str], work: Path, store_url: str,
                label: str, warm_up: bool = True) -> dict[str, Any]:
    """The storm and its page under storm alone, on a fresh intake and responders on
    `store_url` (after three warm-up alerts, with `warm_up`)."""
    with contextlib.ExitStack() as stack:
        port = start_firelane(stack, args, env, work, "" if label == "sqlite" else f"-{label}")
        time.sleep(3)
        intake = f"http://127.0.0.1:{port}"

        async def go() -> dict[str, Any]:
            ca = env["FIRELANE_SANDBOX_CA"]
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as sc:
                arrivals = Arrivals(sc, env["FIRELANE_SANDBOX_URL"])
                await arrivals.poll()
                if warm_up:
                    await sequential(intake, arrivals, 3, "warmup", war_room=store_url)
                before = await memory(intake)
                stormed = await storm(intake, arrivals, args.storm, args.fingerprints,
                                      args.clients, args.probes, label=label,
                                      store_url=store_url)
                stormed["intake_memory"] = {"before_storm": before,
                                            "after_storm": await memory(intake)}
                return stormed

        stormed = asyncio.run(go())
    return {**stormed, **count_storm(store_url)}


def show(f: dict[str, Any]) -> None:
    print(f"{'measure':<34}{'p50':>9}{'p95':>9}{'p99':>9}   n")
    for key in ("alert_to_page_ms", "alert_to_war_room_ms", "floor_four_calls_ms",
                "naive_deployment_page_ms"):
        s = f.get(key)
        if s:
            print(f"{key:<34}{s['p50']:>9}{s['p95']:>9}{s['p99']:>9}   {s['n']}")
    for key in ("load_generator_ceiling", "intake_healthz_ceiling", "storm"):
        if (s := f.get(key)) is None:
            continue
        lat = s["latency_ms"]
        print(f"{key:<34}{s['per_second']:>9}/s  latency p50 {lat['p50']} p99 {lat['p99']} ms"
              f"  statuses {s['statuses']}")
    for part, fig in f.get("page_breakdown_ms", {}).items():
        print(f"  page part {part:<25}{fig['p50']:>9}{fig['p95']:>9}{fig['p99']:>9}")
    for key, label in (("storm", "SQLite"), ("storm_postgresql", "PostgreSQL")):
        st = f.get(key)
        if not st:
            continue
        lat, mem = st["latency_ms"], st["intake_memory"]
        print(f"storm, {label} store: {st['per_second']}/s, latency p50 {lat['p50']} p99 "
              f"{lat['p99']} ms, statuses {st['statuses']}; incidents created "
              f"{st['incidents_created']}, alerts stored {st['alerts_stored']} of "
              f"{st['alerts_sent']}; intake RSS {mem['before_storm']['rss_mib']} MiB before, "
              f"peak {mem['after_storm']['peak_rss_mib']} MiB")
    for n, st in enumerate(f.get("storm_repeats") or [], 1):
        lat, under = st["latency_ms"], st["page_under_storm_ms"] or {}
        print(f"storm again ({n}), fresh SQLite store: {st['per_second']}/s, latency p50 "
              f"{lat['p50']} p99 {lat['p99']} ms; alerts stored {st['alerts_stored']} of "
              f"{st['alerts_sent']}; page under storm p99 {under.get('p99')} ms")
    for g in f.get("storm_grouped") or []:
        print(f"storm in groups of {g['alerts_per_request']}: {g['per_second']} alerts/s, "
              f"request latency p50 {g['latency_ms']['p50']} p99 {g['latency_ms']['p99']} ms, "
              f"statuses {g['statuses']}; alerts stored {g['alerts_stored']} of "
              f"{g['alerts_sent']}, incidents {g['incidents_created']}")
    for key in ("storm", "storm_postgresql"):
        if p := f.get(key, {}).get("page_under_storm_ms"):
            print(f"page under storm ({key}) ms: p50 {p['p50']} p99 {p['p99']} (n={p['n']})")
        for part, fig in (f.get(key, {}).get("page_under_storm_breakdown_ms") or {}).items():
            print(f"  under storm, page part {part:<25}{fig['p50']:>9}{fig['p95']:>9}"
                  f"{fig['p99']:>9}")


if __name__ == "__main__":
    main()

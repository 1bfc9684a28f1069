"""Where the alert route's CPU goes: the intake in this process under `cProfile` (the event
loop's thread and the group-commit thread profiled apart), fed by a load-generating process.

Measures the intake's CPU time per request and per alert (`time.process_time` around the load,
so both threads count) for alerts sent one per request and in Alertmanager-sized groups, and
prints the functions that take the most of it. A development aid for `bench/intake.py`'s
storm; writes nothing. Usage: `python bench/profile_intake.py [--requests 4000] [--group 1]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402

TOKEN = "profile-token"

LOAD = r'''
import asyncio, json, os, sys, time
sys.path.insert(0, sys.argv[1])
from bench.rawhttp import RawClient
from bench.intake_probes import alert_group
port, requests, group, clients = (int(x) for x in sys.argv[2:6])

async def client(c):
    async with RawClient("127.0.0.1", port) as http:
        for i in range(requests // clients):
            n = c * (requests // clients) + i
            body = alert_group([(f"storm storm{(n * group + k) % 100}",
                                 f"storm{(n * group + k) % 100}") for k in range(group)])
            status, _ = await http.request("POST", "/alerts/alertmanager", body,
                {"authorization": "Bearer " + os.environ["PROFILE_TOKEN"],
                 "content-type": "application/json"})
            assert status == 202, status

async def main():
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    print(json.dumps({"seconds": time.perf_counter() - t0}))
asyncio.run(main())
'''


def _time_statements(engine: Any) -> dict[str, list[float]]:
    """Total time and calls per SQL statement text on `engine`."""
    from sqlalchemy import event

    totals: dict[str, list[float]] = {}
    started: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        took = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
        entry = totals.setdefault(statement, [0.0, 0])
        entry[0] += took
        entry[1] += 1

    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--group", type=int, default=1, help="alerts per request")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true",
                        help="only the CPU per alert and the statements' times, without "
                             "cProfile's overhead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="firelane-profile-"))
    os.environ.update({"FIRELANE_DATABASE_URL": f"sqlite:///{work}/firelane.db",
                       "PROFILE_TOKEN": TOKEN, "FIRELANE_CATALOG": str(work / "none.yaml")})
    config = work / "intake.yaml"
    config.write_text("sources:\n  alertmanager: {bearer_token: {env: PROFILE_TOKEN}}\n")

    import uvicorn

    from firelane.settings import Settings
    from firelane.store import open_store
    from flows.intake import committer as committer_module
    from flows.intake.app import create_app
    from flows.intake.live import LiveConfig
    from flows.respond.starter import ResponseStarter

    settings = Settings.from_env()
    store = open_store(settings.database_url)
    live = LiveConfig.load(config)
    starter = ResponseStarter(store, settings, live.current.config.default_runbook,
                              sandbox=True, external=True)
    commit_profile = cProfile.Profile()
    original = committer_module.Committer._run

    def profiled_run(self: committer_module.Committer) -> None:
        if not args.no_profile:
            commit_profile.enable()
        try:
            original(self)
        finally:
            commit_profile.disable()

    committer_module.Committer._run = profiled_run  # type: ignore[method-assign]
    statements = _time_statements(store.write_engine())
    app = create_app(store, live, starter)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None))
    loop_profile = cProfile.Profile()
    figures: dict[str, float] = {}

    def load() -> None:
        while not server.started:
            time.sleep(0.05)
        cpu0 = time.process_time()
        if not args.no_profile:
            loop_profile.enable()
        out = subprocess.run([sys.executable, "-c", LOAD, str(ROOT), str(port),
                              str(args.requests), str(args.group), str(args.clients)],
                             capture_output=True, text=True, check=True)
        figures["seconds"] = float(out.stdout.strip().split(":")[1].strip(" }"))
        figures["cpu_seconds"] = time.process_time() - cpu0
        server.should_exit = True

    threading.Thread(target=load, daemon=True).start()
    original_run = server.run

    def run_profiled() -> None:
        if not args.no_profile:
            loop_profile.enable()
        original_run()
        loop_profile.disable()

    run_profiled()
    alerts = args.requests // args.clients * args.clients * args.group
    print(f"{alerts} alerts in {args.requests} requests of {args.group}: "
          f"{figures['seconds']:.2f} s ({alerts / figures['seconds']:.0f} alerts/s); intake "
          f"CPU {figures['cpu_seconds'] * 1000 / args.requests:.3f} ms per request, "
          f"{figures['cpu_seconds'] * 1e6 / alerts:.0f} µs per alert")
    print("--- store statements by total time (ms total, calls, first 100 characters) ---")
    for sql, (total, calls) in sorted(statements.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"{total * 1000:9.1f} {calls:6d}  {' '.join(sql.split())[:100]}")
    for name, profile in () if args.no_profile else (
            ("event loop", loop_profile), ("group commit", commit_profile)):
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
        print(f"--- {name} thread, by own time ---")
        print("\n".join(text.getvalue().splitlines()[:args.top + 12]))


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()

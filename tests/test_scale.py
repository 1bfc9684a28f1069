"""Scale-out on PostgreSQL (`make test-scale`; `.ci/run` runs it): the Prefect server and the
incident store on PostgreSQL, two intakes on one store, two paging responders and two flow
responders, every process its own. A storm split across both intakes must make exactly one
incident per fingerprint, store every accepted alert, run every incident's runbook exactly once,
and leave every side effect in the sandbox exactly once.

The Prefect API runs with authentication (`PREFECT_SERVER_API_AUTH_STRING`, clients
`PREFECT_API_AUTH_STRING`), as the deployment guide says it must in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port, prefect_server
from bench.intake_support import process
from tests.helpers import storm_alert
from tests.pgserver import find_pg_bin, postgres_server

ROOT = Path(__file__).resolve().parent.parent
FINGERPRINTS = int(os.environ.get("FIRELANE_SCALE_FINGERPRINTS", "30"))
ALERTS = int(os.environ.get("FIRELANE_SCALE_ALERTS", "3000"))
CLIENTS = 8
TOKEN = "scale-" + secrets.token_hex(8)
AUTH = "firelane:" + secrets.token_hex(12)

pytestmark = [pytest.mark.scale, pytest.mark.timeout(900)]


def _alert(n: int) -> bytes:
    return storm_alert(n, FINGERPRINTS, "scale")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (make test-scale installs it)")
    work = tmp_path_factory.mktemp("scale")
    (work / "intake.yaml").write_text(
        "default_runbook: declare-incident\n"
        "sources:\n  alertmanager: {bearer_token: {env: SCALE_TOKEN}}\n")
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        from sqlalchemy import create_engine, text

        admin = create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE scale_prefect"))
            conn.execute(text("CREATE DATABASE scale_store"))
        admin.dispose()
        base = pg.rsplit("/", 1)[0]
        from cryptography.fernet import Fernet

        server_env = {"PREFECT_SERVER_API_AUTH_STRING": AUTH,
                      "PREFECT_SERVER_ENCRYPTION_KEY": Fernet.generate_key().decode()}
        os.environ.update(server_env)
        try:
            api = stack.enter_context(prefect_server(
                base.replace("+psycopg", "+asyncpg") + "/scale_prefect"))
        finally:
            for name in server_env:
                os.environ.pop(name, None)
        store_url = base + "/scale_store"
        env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": AUTH,
               "PYTHONPATH": str(ROOT), "FIRELANE_DATABASE_URL": store_url,
               "SCALE_TOKEN": TOKEN, "PREFECT_LOGGING_LEVEL": "WARNING",
               "FIRELANE_CATALOG": str(work / "none.yaml"),
               "FIRELANE_REPORTS_DIR": str(work / "reports"),
               "FIRELANE_WAKE_ADDRESS": "off", "FIRELANE_RETRY_BASE_SECONDS": "0.05"}
        env.pop("FIRELANE_PLUGINS", None)
        cli = [sys.executable, "-m", "flows.cli"]
        line = stack.enter_context(process([*cli, "sandbox"], env, "export FIRELANE_SANDBOX_URL",
                                           work / "sandbox.log"))
        sandbox_url, ca = (part.split("=", 1)[1] for part in line.split()[1:3])
        env.update(FIRELANE_SANDBOX_URL=sandbox_url, FIRELANE_SANDBOX_CA=ca)
        intakes = []
        for i in range(2):
            port = free_port()
            stack.enter_context(process(
                [*cli, "serve", "--port", str(port), "--config", str(work / "intake.yaml"),
                 "--sandbox", "--responder", "external"], env, "Firelane intake on",
                work / f"intake-{i}.log"))
            intakes.append(f"http://127.0.0.1:{port}")
        for i in range(2):
            stack.enter_context(process([*cli, "respond", "--role", "urgent"], env,
                                        "Firelane responder", work / f"urgent-{i}.log"))
            stack.enter_context(process([*cli, "respond", "--role", "flows"], env,
                                        "Firelane responder", work / f"flows-{i}.log"))
        yield {"intakes": intakes, "store_url": store_url, "sandbox": sandbox_url, "ca": ca,
               "work": work, "api": api, "env": env, "prefect_db": base + "/scale_prefect",
               "fernet": server_env["PREFECT_SERVER_ENCRYPTION_KEY"]}


async def _storm(intakes: list[str]) -> tuple[int, list[int]]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(ALERTS):
        queue.put_nowait(n)
    accepted, refused = 0, []

    async def client(k: int) -> None:
        nonlocal accepted
        async with httpx.AsyncClient(timeout=30) as http:
            while not queue.empty():
                n = queue.get_nowait()
                r = await http.post(f"{intakes[n % 2]}/alerts/alertmanager", content=_alert(n),
                                    headers={"Authorization": f"Bearer {TOKEN}",
                                             "Content-Type": "application/json"})
                if r.status_code == 202:
                    accepted += 1
                else:
                    refused.append(r.status_code)
    await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    return accepted, refused


def test_storm_split_across_two_intakes_is_exactly_once(cluster: dict[str, Any]) -> None:
    from sqlalchemy import func, select

    from firelane.store import open_store
    from firelane.store.tables import alerts, executions, incidents

    started = time.monotonic()
    accepted, refused = asyncio.run(_storm(cluster["intakes"]))
    ingest_seconds = time.monotonic() - started
    assert accepted == ALERTS, f"refused: {Counter(refused)}"
    store = open_store(cluster["store_url"], migrate=False)

    def settled() -> list[Any]:
        with store.tx(write=False) as conn:
            rows = conn.execute(select(executions.c.incident_id, executions.c.status)).all()
        return [r for r in rows if r.status not in ("succeeded", "failed")]

    deadline = time.monotonic() + 600
    while settled() and time.monotonic() < deadline:
        time.sleep(1)
    total_seconds = time.monotonic() - started
    with store.tx(write=False) as conn:
        stored = conn.execute(select(func.count()).select_from(alerts)).scalar()
        per_fp = conn.execute(select(incidents.c.title, func.count()).group_by(
            incidents.c.title)).all()
        runs = conn.execute(select(executions.c.incident_id, executions.c.status)).all()
        orphans = conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.incident_id.is_(None))).scalar()
    assert stored == ALERTS and orphans == 0
    assert len(per_fp) == FINGERPRINTS and all(n == 1 for _, n in per_fp), per_fp
    assert Counter(r.incident_id for r in runs) == Counter(
        {i: 1 for i in {r.incident_id for r in runs}}) and len(runs) == FINGERPRINTS
    assert Counter(r.status for r in runs) == Counter({"succeeded": FINGERPRINTS}), runs
    state = httpx.get(f"{cluster['sandbox']}/_admin/state", timeout=30,
                      verify=ssl.create_default_context(cafile=cluster["ca"])).json()
    keys = [i["incident_key"] for i in state["pd_incidents"].values()]
    assert len(state["jira_issues"]) == FINGERPRINTS
    assert len(keys) == len(set(keys)) == FINGERPRINTS
    assert len(state["slack_channels"]) == FINGERPRINTS
    assert len(state["zoom_meetings"]) == FINGERPRINTS
    print(f"\nscale: {ALERTS} alerts over {FINGERPRINTS} fingerprints through 2 intakes in "
          f"{ingest_seconds:.1f} s ({ALERTS / ingest_seconds:.0f}/s); every runbook done "
          f"{total_seconds:.1f} s after the first alert")
    store.close()


def test_the_prefect_api_needs_auth_and_blocks_are_encrypted(cluster: dict[str, Any]) -> None:
    import subprocess

    from sqlalchemy import create_engine, text

    assert httpx.post(f"{cluster['api']}/flows/filter", json={}, timeout=10).status_code == 401
    secret = "scale-secret-" + secrets.token_hex(8)
    code = ("from prefect.blocks.system import Secret; import sys; "
            f"Secret(value={secret!r}).save('scale-secret', overwrite=True); "
            "print(Secret.load('scale-secret').get())")
    done = subprocess.run([sys.executable, "-c", code], env=cluster["env"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == secret, done.stderr[-2000:]
    engine = create_engine(cluster["prefect_db"])
    with engine.connect() as conn:
        rows = [str(r[0]) for r in conn.execute(text("SELECT data FROM block_document"))]
    engine.dispose()
    assert rows and not any(secret in row for row in rows)
    from cryptography.fernet import Fernet, InvalidToken

    opened = []
    for row in rows:
        with contextlib.suppress(InvalidToken):
            opened.append(Fernet(cluster["fernet"].encode()).decrypt(row.strip('"').encode()))
    assert any(secret.encode() in plain for plain in opened), "not encrypted with our key"

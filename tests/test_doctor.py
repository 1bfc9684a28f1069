"""`firelane doctor` reports each broken dependency it is shown, one line each with the fix,
and `--fix` registers the block types the Prefect UI needs to create credentials blocks.

Real parts: the `firelane` CLI in a subprocess, the session's Prefect server, the sandbox's
vendor stand-ins behind real credentials blocks, a real SQLite store and a real intake port."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bench.common import free_port
from firelane.catalog import Catalog, ServiceEntry
from firelane.coverage import catalog_gaps
from firelane.library import Library
from integrations.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def _doctor(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-m", "flows.cli", "doctor", "--timeout", "8",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    return done.returncode, done.stdout.splitlines() + done.stderr.splitlines()


def _line(lines: list[str], state: str, check: str) -> str:
    found = [line for line in lines if line.split()[:1] == [state]
             and line[6:].startswith(check)]
    assert found, f"no {state} {check} line in:\n" + "\n".join(lines)
    return found[0]


async def _forget_block_types() -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from integrations.block_types import BLOCK_TYPES

    async with get_client() as client:
        for cls in BLOCK_TYPES:
            try:
                found = await client.read_block_type_by_slug(cls.get_block_type_slug())
            except ObjectNotFound:
                continue
            await client.delete_block_type(found.id)


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, str]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    for name in ("declare-incident.yaml", "web-5xx-rollback.yaml"):
        shutil.copy(ROOT / "runbooks" / name, runbooks)
    (runbooks / "broken.yaml").write_text("version: 1\nname: broken\nsteps: []\nbogus: 1\n")
    (tmp_path / "services.yaml").write_text(
        "services:\n  web: {jira_project: OPS, pagerduty: {routing_key_block: pd-web-key}}\n")
    return {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_RUNBOOKS_DIR": str(runbooks),
            "FIRELANE_CATALOG": str(tmp_path / "services.yaml"),
            "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'never-migrated.db'}"}


def test_catalog_gaps_name_the_step_the_service_and_the_field(tmp_path: Path) -> None:
    import integrations  # noqa: F401

    library = Library(ROOT / "runbooks", None)
    gaps = catalog_gaps(library.runbooks, Catalog(services={
        "web": ServiceEntry(jira_project="OPS", health_url="http://web/healthz")}))
    rollback = [g for g in gaps if g.runbook == "web-5xx-rollback"]
    assert [(g.step, g.input, g.catalog_field) for g in rollback] == [
        ("rollback", "release_dir", "release_dir")]
    assert "add release_dir to services.web in the catalog" in rollback[0].message()
    assert any(g.runbook == "web-5xx-rollback" and g.input == "project" and g.service == "db"
               for g in catalog_gaps(library.runbooks, Catalog(services={"db": ServiceEntry()})))
    named = tmp_path / "named.yaml"
    named.write_text((ROOT / "runbooks" / "web-5xx-rollback.yaml").read_text().replace(
        "labels: {alertname: HighErrorRate}", "services: [checkout]"))
    [unknown] = [g for g in catalog_gaps(Library(tmp_path, None).runbooks, Catalog())
                 if g.input == "project"]
    assert not unknown.known and "add service 'checkout' to the catalog" in unknown.message()


def test_doctor_without_a_prefect_api_says_so_and_skips_what_needs_it(
        folder: dict[str, str]) -> None:
    env = {**folder, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    code, lines = _doctor(env, "--intake-url", "")
    assert code == 1
    assert "unreachable" in _line(lines, "FAIL", "prefect-api")
    assert "prefect server start" in _line(lines, "FAIL", "prefect-api")
    _line(lines, "skip", "block-types")


@pytest.mark.usefixtures("prefect_api")
def test_doctor_reports_each_broken_dependency_and_fix_registers_block_types(
        folder: dict[str, str], sandbox: Sandbox) -> None:
    from integrations.jira.block import JiraCredentials
    from integrations.slack.block import SlackCredentials

    asyncio.run(_forget_block_types())
    env = {**folder, "PREFECT_API_URL": os.environ["PREFECT_API_URL"]}
    intake = f"http://127.0.0.1:{free_port()}"
    code, lines = _doctor(env, "--intake-url", intake)
    assert code == 1
    _line(lines, "ok", "prefect-api")
    missing = _line(lines, "FAIL", "block-types")
    assert "Firelane Jira Credentials" in missing and "doctor --fix" in missing
    assert "create a Firelane PagerDuty Credentials block named 'default'" in _line(
        lines, "FAIL", "credentials pagerduty/default")
    assert "broken.yaml" in _line(lines, "FAIL", "runbook")
    assert "firelane validate" in _line(lines, "FAIL", "runbook")
    gaps = [line for line in lines if line.startswith("FAIL  catalog-coverage")]
    assert any("step rollback (release.rollback)" in g and "release_dir" in g for g in gaps)
    assert any("step verify (http.check)" in g and "health_url" in g for g in gaps)
    assert "firelane db upgrade" in _line(lines, "FAIL", "store")
    assert "unreachable" in _line(lines, "FAIL", "intake")
    _line(lines, "ok", "catalog")

    code, lines = _doctor(env, "--fix", "--intake-url", "")
    assert "registered Firelane Jira Credentials" in _line(lines, "ok", "block-types")
    url, ca = sandbox.url, sandbox.ca_file
    JiraCredentials.for_sandbox(url, ca).save("default", overwrite=True)
    bad_slack = SlackCredentials.for_sandbox(url, ca)
    bad_slack.token = SecretStr("revoked-token")
    bad_slack.save("default", overwrite=True)
    code, lines = _doctor(env, "--intake-url", "")
    _line(lines, "ok", "block-types")
    assert "authenticated as Firelane" in _line(lines, "ok", "credentials jira/default")
    refused = _line(lines, "FAIL", "credentials slack/default")
    assert "not_authed" in refused and "its token" in refused
    _line(lines, "FAIL", "credentials pagerduty/default")
    assert "no Secret block named 'pd-web-key' (services web)" in _line(
        lines, "FAIL", "catalog block pd-web-key")


@pytest.mark.usefixtures("prefect_api")
def test_firelane_worker_registers_the_block_types(folder: dict[str, str],
                                                    tmp_path: Path) -> None:
    import signal
    import time

    from integrations.block_types import missing_block_types

    asyncio.run(_forget_block_types())
    assert asyncio.run(missing_block_types())
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "firelane"), "worker",
                                 "--limit", "1"], cwd=ROOT, stdout=out,
                                env={**folder, "PREFECT_API_URL": os.environ["PREFECT_API_URL"]},
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Firelane block types with Prefect" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert asyncio.run(missing_block_types()) == []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_doctor_says_when_the_prefect_api_wants_authentication(folder: dict[str, str]) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Locked(BaseHTTPRequestHandler):
        """A Prefect server behind PREFECT_SERVER_API_AUTH_STRING, as a client without the
        auth string meets it: 401 to everything."""

        def _refuse(self) -> None:
            body = b'{"exception_message": "Unauthorized"}'
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _refuse

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Locked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**folder, "PREFECT_API_URL": f"http://127.0.0.1:{server.server_port}/api"}
        code, lines = _doctor(env, "--intake-url", "")
    finally:
        server.shutdown()
    assert code == 1
    line = _line(lines, "FAIL", "prefect-api")
    assert "refused the request (401)" in line and "PREFECT_API_AUTH_STRING" in line

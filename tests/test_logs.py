"""Log lines: text and JSON formats with an ISO-8601 UTC time and the process role, the
incident/execution/step context (contextvars or `extra=`), secrets masked in JSON too, and the
audit lines (refused intake request through the real ASGI app, step and execution takeovers
through the store, page sent, approval decided); `firelane serve` logs JSON when asked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bench.common import free_port
from firelane import audit
from firelane.logs import configure_logging, context_with, log_context, reset_logging
from firelane.models import Approval, Execution, IncidentDraft, Severity, utcnow
from firelane.redaction import MASK, register_secret
from firelane.settings import Settings
from firelane.store import ClaimOutcome, open_store
from firelane.store.tables import executions
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig, SecretRef, SourceSettings

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ROOT = Path(__file__).resolve().parent.parent


def _capture(fmt: str, role: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(role, Settings(log_format=fmt), stream)
    try:
        yield stream
    finally:
        reset_logging()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    yield from _capture("json", "responder-urgent")


@pytest.fixture
def text_lines() -> Iterator[io.StringIO]:
    yield from _capture("text", "intake")


def _objects(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_role_context_and_mask_secrets(json_lines: io.StringIO) -> None:
    planted = "planted-secret-7f3a9c2e51"
    register_secret(planted)
    log = logging.getLogger("firelane.test")
    log.info("no context")
    with log_context(incident="INC-7", execution="ex1", step="page"):
        log.warning("token is %s", planted, extra={"note": f"extra {planted}"})
        log.info("explicit", extra={"step": "other"})
    try:
        raise RuntimeError(f"vendor echoed {planted}")
    except RuntimeError:
        log.exception("failed")
    plain, masked, explicit, failed = _objects(json_lines)
    assert set(plain) == {"time", "level", "logger", "message", "role", "pid"}
    assert ISO_Z.match(str(plain["time"])) and plain["level"] == "INFO"
    assert (plain["logger"], plain["role"], plain["pid"]) == ("firelane.test",
                                                              "responder-urgent", os.getpid())
    assert masked["message"] == f"token is {MASK}" and masked["note"] == f"extra {MASK}"
    assert (masked["incident"], masked["execution"], masked["step"]) == ("INC-7", "ex1", "page")
    assert explicit["step"] == "other" and explicit["incident"] == "INC-7"
    assert "incident" not in failed and MASK in str(failed["exc_info"])
    assert planted not in json_lines.getvalue()


def test_text_lines_have_an_iso_utc_time_and_the_role(text_lines: io.StringIO) -> None:
    log = logging.getLogger("firelane.intake")

    async def task() -> None:
        log.info("in a task")

    async def main() -> None:
        await asyncio.create_task(task(), context=context_with(execution="ex9"))
    asyncio.run(main())
    logging.getLogger("firelane.deep.down").debug("below the level")
    [line] = text_lines.getvalue().splitlines()
    stamp, level, role, rest = line.split(maxsplit=3)
    assert ISO_Z.match(stamp) and (level, role) == ("INFO", "intake"), line
    assert rest == "firelane.intake - in a task [execution=ex9]", line


def test_refused_intake_request_is_one_audit_line_without_the_token(
        json_lines: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_AM_TOKEN", "log-am-token-0123456789")
    app = create_app(open_store(f"sqlite:///{tmp_path / 'log.db'}"), IntakeConfig(sources={
        "alertmanager": SourceSettings(bearer_token=SecretRef(env="LOG_AM_TOKEN"))}))

    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://intake") as client:
            return [(await client.post(path, content=b'{"alerts": []}', headers={
                "content-type": "application/json",
                "authorization": "Bearer wrong-token-abcdef123456"})).status_code
                for path in ("/alerts/alertmanager", "/alerts/nagios")]
    assert asyncio.run(go()) == [401, 404]
    refused = [o for o in _objects(json_lines) if o.get("audit") == "intake.refused"]
    assert [(o["logger"], o["level"], o["source"], o["status"]) for o in refused] == [
        ("firelane.audit", "INFO", "alertmanager", 401), ("firelane.audit", "INFO", "unknown",
                                                          404)]
    assert "bearer token" in str(refused[0]["reason"])
    assert "wrong-token" not in json_lines.getvalue()
    assert "log-am-token" not in json_lines.getvalue()


def test_takeovers_page_and_approval_are_audited(json_lines: io.StringIO,
                                                 sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    incident = store.declare_incident(IncidentDraft(title="db down", severity=Severity.SEV2,
                                                    service="web"))
    ex = store.create_execution(Execution(incident_id=incident.id, runbook_name="rb",
                                          runbook_hash="h" * 64, runbook_source="x")).id
    assert store.claim_step(incident.id, ex, "page", "w1", 0.2).outcome is ClaimOutcome.CLAIMED
    time.sleep(0.3)
    assert store.claim_step(incident.id, ex, "page", "w2", 5).outcome is \
        ClaimOutcome.TAKEN_OVER
    assert len(store.claim_executions("r1", 30)) == 1
    with store.tx() as conn:
        conn.execute(update(executions).where(executions.c.id == ex).values(
            heartbeat_at=utcnow().replace(year=2020)))
    assert len(store.claim_executions("r2", 30)) == 1
    audit.page_sent(incident, ex, "page", "pagerduty.trigger", True, {"dedup_key": "k1"}, False)
    audit.page_sent(incident, ex, "page", "pagerduty.trigger", True, {"dedup_key": "k1"}, True)
    audit.approval_decided(Approval(incident_id=incident.id, execution_id=ex, step_id="restart",
                                    status="rejected", decided_by="slack:U1",
                                    deadline=utcnow()), True)
    lines = {str(o["audit"]): o for o in _objects(json_lines) if "audit" in o}
    assert set(lines) == {"step.taken_over", "execution.taken_over", "page.sent",
                          "approval.decided"}
    step = lines["step.taken_over"]
    assert (step["previous_owner"], step["step"], step["claims"]) == ("w1", "page", 2)
    assert float(str(step["lease_expired_seconds_ago"])) >= 0.0
    assert lines["execution.taken_over"]["previous_owner"] == "r1"
    page = lines["page.sent"]
    assert (page["incident"], page["vendor"], page["dedup_key"]) == (
        f"INC-{incident.number}", "pagerduty", "k1")
    decided = lines["approval.decided"]
    assert (decided["decision"], decided["decided_by"], decided["step"]) == (
        "reject", "slack:U1", "restart")


def test_serve_logs_json_lines_with_the_intake_role(tmp_path: Path) -> None:
    config = tmp_path / "intake.yaml"
    config.write_text("sources:\n  alertmanager: {bearer_token: {env: LOG_TOKEN}}\n")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FIRELANE_WAKE_ADDRESS": "off",
           "LOG_TOKEN": "serve-token-0123456789", "FIRELANE_LOG_FORMAT": "json",
           "FIRELANE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port", str(port),
                                 "--config", str(config), "--no-respond"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        answer = httpx.post(f"http://127.0.0.1:{port}/alerts/alertmanager", content=b"{}",
                            headers={"authorization": "Bearer nope-nope-nope-123"})
        assert answer.status_code == 401
        os.kill(proc.pid, signal.SIGHUP)
        while "reloaded" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    objects = [json.loads(line) for line in log.read_text().splitlines()]
    assert {o["role"] for o in objects} == {"intake"}
    assert {o["logger"] for o in objects} >= {"firelane.audit", "firelane.intake"}
    [reloaded] = [o for o in objects if "reloaded" in o["message"]]
    assert reloaded["level"] == "INFO" and ISO_Z.match(reloaded["time"])
    assert "serve-token" not in log.read_text() and "nope-nope" not in log.read_text()

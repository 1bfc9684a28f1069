"""Secrets stay in their blocks: planted values never reach logs, parameters, artifacts, the
timeline, the ledger or the report, even when a careless client logs them or puts them in an
exception (`firelane.redaction`)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import IncidentDraft, Severity
from firelane.redaction import MASK, RedactingFilter, redact, register_secret
from firelane.store import open_store
from integrations.common import forget_blocks
from integrations.jira.block import JiraCredentials
from integrations.pagerduty.block import PagerDutyCredentials
from integrations.sandbox import Sandbox
from integrations.slack.block import SlackCredentials
from integrations.video.block import ZoomCredentials

RUNBOOK = """version: 1
name: secrets-check
credentials: {jira: planted, pagerduty: planted, slack: planted, video: planted}
steps:
  - {id: ticket, uses: jira.create_issue, with: {project: OPS, summary: "DB down"}}
  - {id: page, uses: pagerduty.trigger, with: {summary: "DB down"}}
  - {id: channel, uses: slack.create_channel}
  - {id: bridge, uses: video.create_meeting}
  - {id: leak, uses: test.leaky, on_error: continue}
"""


def test_redact_masks_registered_values_and_token_shapes() -> None:
    planted = "pl4nted-" + secrets.token_hex(8)
    register_secret(planted)
    register_secret("abc")
    text = (f"x {planted} y; Authorization: Bearer abcdefghij.0123456; xoxb-1234567890-abcdef; "
            "postgresql://fl:hunter22@db/x; password=swordfish9; abc stays")
    out = redact(text)
    assert planted not in out and "abcdefghij.0123456" not in out and "xoxb-1234" not in out
    assert "hunter22" not in out and "swordfish9" not in out
    assert out.count(MASK) == 5 and out.endswith("abc stays")
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH " \
          "PRIVATE KEY-----"
    assert redact(f"key: {key} end") == f"key: {MASK} end"
    ordinary = "Basic authentication failed; Bearer tokens expire; token rotation is weekly"
    assert redact(ordinary) == ordinary


def test_filter_rewrites_message_args_and_traceback() -> None:
    planted = "tr4ceback-" + secrets.token_hex(8)
    register_secret(planted)
    try:
        raise ValueError(f"bad {planted}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (planted,),
                                   __import__("sys").exc_info())
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert planted not in formatted and formatted.count(MASK) == 2


def _plant(sb: Sandbox) -> dict[str, str]:
    planted = {kind: f"{kind}-{secrets.token_hex(12)}" for kind in
               ("jira", "pd_api", "pd_routing", "zoom")}
    planted["slack"] = f"xoxb-{secrets.token_hex(12)}"
    jira = JiraCredentials.for_sandbox(sb.url, sb.ca_file)
    jira.api_token = SecretStr(planted["jira"])
    pd = PagerDutyCredentials.for_sandbox(sb.url, sb.ca_file)
    pd.api_token, pd.routing_key = SecretStr(planted["pd_api"]), SecretStr(planted["pd_routing"])
    slack = SlackCredentials.for_sandbox(sb.url, sb.ca_file)
    slack.token = SecretStr(planted["slack"])
    zoom = ZoomCredentials.for_sandbox(sb.url, sb.ca_file)
    zoom.client_secret = SecretStr(planted["zoom"])
    for block in (jira, pd, slack, zoom):
        block.save("planted", overwrite=True)
    forget_blocks()
    return planted


async def _prefect_view(flow_run_id: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.flush()
    async with get_client() as client:
        logs: list[Any] = []
        for _ in range(50):
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            if any("calling Slack" in log.message for log in logs):
                break
            await asyncio.sleep(0.2)
        run = await client.read_flow_run(UUID(flow_run_id))
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])))
    assert any("calling Slack" in log.message for log in logs), "the leak was never logged"
    return "\n".join([*(log.message for log in logs), json.dumps(run.parameters),
                      *(json.dumps(a.model_dump(mode="json")) for a in artifacts)])


@pytest.mark.usefixtures("prefect_api")
def test_planted_block_secrets_appear_nowhere(firelane_env: str, sandbox: Sandbox,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.records.report import render
    from flows.runs.report import assemble
    from flows.runs.run_runbook import run_runbook_result

    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    planted = _plant(sandbox)
    store = open_store(firelane_env)
    incident = store.declare_incident(IncidentDraft(title="DB down", severity=Severity.SEV2,
                                                    service="db"))
    execution = store.create_execution(new_execution(parse_runbook(RUNBOOK), incident, {}))
    result = asyncio.run(run_runbook_result(execution.id))
    records = store.step_records(execution.id)
    assert {k: v.status.value for k, v in records.items()} == {
        "ticket": "succeeded", "page": "succeeded", "channel": "succeeded",
        "bridge": "succeeded", "leak": "failed"}, result
    assert MASK in (records["leak"].error or "")
    flow_run_id = store.get_execution(execution.id).flow_run_id
    assert flow_run_id
    report, _ = asyncio.run(assemble(store, incident, "UTC", True))
    places = {
        "Prefect logs, parameters and artifacts": asyncio.run(_prefect_view(flow_run_id)),
        "timeline": json.dumps([e.model_dump(mode="json") for e in store.timeline(incident.id)]),
        "ledger": json.dumps({k: dataclasses.asdict(v) for k, v in records.items()}, default=str),
        "report": render(report, "md") + render(report, "html"),
        "run result": json.dumps(result),
    }
    for where, text in places.items():
        for kind, value in planted.items():
            assert value not in text, f"the {kind} secret is in the {where}"
    assert MASK in places["Prefect logs, parameters and artifacts"]


def test_handlers_configured_after_install_get_redacted_records() -> None:
    import io

    from firelane.redaction import install

    install()
    planted = "l4te-" + secrets.token_hex(8)
    register_secret(planted)
    stream = io.StringIO()
    late = logging.getLogger(f"late.{secrets.token_hex(4)}")
    late.addHandler(logging.StreamHandler(stream))
    late.propagate = False
    try:
        raise RuntimeError(f"vendor said {planted}")
    except RuntimeError:
        late.exception("call failed with %s", planted)
    assert planted not in stream.getvalue() and stream.getvalue().count(MASK) == 2


@pytest.mark.usefixtures("prefect_api")
def test_the_intake_never_answers_or_logs_a_secret(firelane_env: str, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    """`firelane serve` with its source secrets in a Secret block and the environment, the
    planted vendor blocks, and the leaky step run by its inline responder: no secret in any
    answer (accepted, refused, incident, metrics) or in the process's whole log output."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from prefect.blocks.system import Secret

    from bench.common import free_port

    planted = _plant(sandbox)
    planted.update(am=f"am-{secrets.token_hex(12)}", hmac=f"hm-{secrets.token_hex(12)}",
                   signing=f"sg-{secrets.token_hex(12)}")
    Secret(value=planted["am"]).save("intake-am-token", overwrite=True)
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "secrets-check.yaml").write_text(RUNBOOK)
    (tmp_path / "intake.yaml").write_text(
        "default_runbook: secrets-check\nslack_signing_secret: {env: PLANTED_SIGNING}\n"
        "sources:\n  alertmanager: {bearer_token: {block: intake-am-token}}\n"
        "  grafana: {hmac_secret: {env: PLANTED_HMAC}}\n")
    port = free_port()
    log = tmp_path / "intake.log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "FIRELANE_RUNBOOKS_DIR": str(tmp_path / "runbooks"), "FIRELANE_WAKE_ADDRESS": "off",
           "PLANTED_HMAC": planted["hmac"], "PLANTED_SIGNING": planted["signing"]}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--port", str(port),
                             "--config", str(tmp_path / "intake.yaml")], env=env, text=True,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    base = f"http://127.0.0.1:{port}"
    answers: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        body = (Path(__file__).parent / "payloads" / "alertmanager_group_mixed.json").read_bytes()
        json_type = {"content-type": "application/json"}
        sent = [
            httpx.post(f"{base}/alerts/alertmanager?token={planted['am']}", content=body,
                       headers={**json_type, "authorization": f"Bearer {planted['am']}"}),
            httpx.post(f"{base}/alerts/alertmanager", content=body,
                       headers={**json_type, "authorization": "Bearer wrong-token-123456"}),
            httpx.post(f"{base}/alerts/grafana", content=b'{"alerts": []}',
                       headers={**json_type, "x-grafana-alerting-signature": "sha256=00"}),
            httpx.post(f"{base}/slack/interactions", content=b"payload=%7B%7D",
                       headers={"x-slack-signature": "v0=00",
                                "x-slack-request-timestamp": str(int(time.time()))}),
        ]
        assert [r.status_code for r in sent] == [202, 401, 401, 401], [r.text for r in sent]
        store = open_store(firelane_env)
        [incident] = store.list_incidents()
        while not all(e.status in ("succeeded", "failed")
                      for e in store.list_executions(incident.id)):
            assert time.monotonic() < deadline + 120, "the response never finished"
            time.sleep(0.5)
        reader, _ = store.create_token("secrets-reader", "read", "ann")
        shown = httpx.get(f"{base}/incidents/INC-{incident.number}",
                          headers={"authorization": f"Bearer {reader}"})
        assert shown.status_code == 200, shown.text
        sent += [shown, httpx.get(f"{base}/metrics")]
        answers = [f"{r.status_code} {r.headers} {r.text}" for r in sent]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    output = log.read_text()
    assert "calling Slack with token" in output, "the leaky step's log never reached the intake"
    for kind, value in planted.items():
        assert value not in output, f"the {kind} secret is in the intake's log"
        assert not any(value in answer for answer in answers), f"the {kind} secret answered"
    assert MASK in output


def test_redaction_keeps_args_formatters_unpack() -> None:
    import io

    from uvicorn.logging import AccessFormatter

    from firelane.redaction import install

    install()
    planted = "qu3ry-" + secrets.token_hex(8)
    register_secret(planted)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s'))
    access = logging.getLogger(f"access.{secrets.token_hex(4)}")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    for path in (f"/alerts/generic?key={planted}", "/healthz"):
        access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1:5", "POST", path, "1.1", 202)
    lines = stream.getvalue().splitlines()
    assert lines == [f'10.0.0.1:5 "POST /alerts/generic?key={MASK} HTTP/1.1" 202 Accepted',
                     '10.0.0.1:5 "POST /healthz HTTP/1.1" 202 Accepted']

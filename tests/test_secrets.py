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
    from flows.report import render
    from flows.report_flow import assemble
    from flows.runbook_flow import run_runbook

    monkeypatch.setenv("FIRELANE_REPORTS_DIR", str(tmp_path / "reports"))
    planted = _plant(sandbox)
    store = open_store(firelane_env)
    incident = store.declare_incident(IncidentDraft(title="DB down", severity=Severity.SEV2,
                                                    service="db"))
    execution = store.create_execution(new_execution(parse_runbook(RUNBOOK), incident, {}))
    result = asyncio.run(run_runbook(execution.id))
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

"""A step that names `approvers` is decided only by someone a surface can prove: `firelane
approve --as <an approver>` is refused (a claim), and so is an API token whose owner is not an
approver, or one without the write scope; the approver's own token decides, through the CLI's
`--token` or the HTTP API, recorded as theirs. The approval form says so."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from firelane.inputs import new_execution
from firelane.loader import parse_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import Store, open_store
from flows.cli import main
from flows.intake.app import create_app
from flows.intake.config import IntakeConfig
from flows.runs.run_runbook import run_runbook_result

RUNBOOK = """version: 1
name: gated
steps:
  - id: fix
    uses: test.change
    with: {name: fixed}
    approval: {approvers: [ann], timeout_seconds: 120, message: Restart web?}
"""


def _start(store: Store) -> tuple[int, str]:
    incident = store.declare_incident(IncidentDraft(title="web 5xx", severity=Severity.SEV2,
                                                    service="web"))
    execution = store.create_execution(new_execution(parse_runbook(RUNBOOK, "gated.yaml"),
                                                     incident, {}))
    return incident.number, execution.id


async def _waiting(store: Store, number: int) -> None:
    incident = store.get_incident(f"INC-{number}")
    for _ in range(600):
        if any(a.flow_run_id for a in store.approvals_for(incident.id, "fix")):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the approval was never requested")


async def _patch(app: Any, number: int, token: str, approve: bool) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") as client:
        return await client.post(f"/api/v1/incidents/INC-{number}/approvals/fix",
                                 json={"approve": approve, "reason": "deploy 42"},
                                 headers={"authorization": f"Bearer {token}"})


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize("surface", ["cli", "api"])
def test_only_the_approvers_own_token_decides(firelane_env: str, surface: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRELANE_API_TOKEN", raising=False)
    store = open_store(firelane_env)
    ann, _ = store.create_token("ann", "write", "ann")
    bob, _ = store.create_token("bob", "write", "bob")
    reader, _ = store.create_token("ann-read", "read", "ann")
    number, execution_id = _start(store)
    app = create_app(store, IntakeConfig())

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        flow = asyncio.create_task(run_runbook_result(execution_id))
        await _waiting(store, number)
        ref = f"INC-{number}"
        tries: list[Any] = [await asyncio.to_thread(main, ["approve", ref, "fix", "--as", "ann"])]
        if surface == "cli":
            tries += [await asyncio.to_thread(main, ["approve", ref, "fix", "--token", t])
                      for t in (bob, reader, ann)]
        else:
            tries += [(await _patch(app, number, t, True)).status_code
                      for t in (bob, reader, ann)]
        return tries, await flow

    tries, result = asyncio.run(scenario())
    assert tries == ([1, 1, 1, 0] if surface == "cli" else [1, 403, 403, 200]), tries
    assert result["status"] == "succeeded"
    incident = store.get_incident(f"INC-{number}")
    [approval] = store.approvals_for(incident.id, "fix")
    assert approval.status == "approved"
    assert approval.decided_by == ("token:ann" if surface == "cli" else "api:ann")
    refused = [e.details for e in store.timeline(incident.id) if e.kind == "approval.refused"]
    assert [(r["how"], r["by"]) for r in refused] == [
        ("cli", "ann"), ("token" if surface == "cli" else "api", "bob")]
    assert "cannot prove who made it" in refused[0]["reason"]
    assert "A decision in this form is refused" in approval.message

"""A runbook of kubernetes.* steps through the real `run-runbook` flow in a sandbox run: the
engine hands the runbook's `kubernetes:` allowlist to the actions (a diagnosed bad rollout is
undone; a namespace the runbook does not list fails its step before any request)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import open_store
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox
from tests.kubernetes_fixtures import (
    BAD,
    cluster_fixture,  # noqa: F401  (the `cluster` fixture)
    deploy,
    image_of,
    web,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

RUNBOOK = """version: 1
name: k8s-undo
kubernetes:
  namespaces: [{namespace}]
  workloads: [deployment/web]
steps:
  - id: status
    uses: kubernetes.rollout_status
    with: {{namespace: shop, name: web}}
  - id: diagnose
    needs: [status]
    uses: kubernetes.describe
    with: {{namespace: shop, name: web}}
  - id: undo
    needs: [diagnose]
    if: steps.status.outputs.failed
    uses: kubernetes.rollout_undo
    with: {{namespace: shop, name: web, timeout_seconds: 30}}
"""


def _run(firelane_env: str, tmp_path: Path, namespace: str) -> tuple[str, dict[str, str]]:
    path = tmp_path / "k8s-undo.yaml"
    path.write_text(RUNBOOK.format(namespace=namespace))
    store = open_store(firelane_env)
    incident = store.declare_incident(IncidentDraft(title="web 5xx", severity=Severity.SEV1,
                                                    service="web"))
    execution = store.create_execution(new_execution(load_runbook(path), incident, {},
                                                     sandbox=True))
    result = asyncio.run(run_runbook_result(execution.id))
    records = store.step_records(execution.id)
    return str(result["status"]), {k: v.error or v.status.value for k, v in records.items()}


def _stalled(sb: Sandbox) -> None:
    deploy(sb, BAD)
    deadline = time.monotonic() + 10
    while not any(c["reason"] == "ProgressDeadlineExceeded"
                  for c in web(sb)["status"]["conditions"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_runbook_diagnoses_and_undoes_a_bad_rollout(
        firelane_env: str, cluster: Sandbox, tmp_path: Path) -> None:
    _stalled(cluster)
    status, steps = _run(firelane_env, tmp_path, "shop")
    assert status == "succeeded", steps
    assert set(steps.values()) == {"succeeded"}
    assert image_of(cluster) == "registry.example/web:1"


def test_a_runbook_that_does_not_list_the_namespace_is_refused(
        firelane_env: str, cluster: Sandbox, tmp_path: Path) -> None:
    cluster.state.requests.clear()
    status, steps = _run(firelane_env, tmp_path, "other")
    assert status == "failed"
    assert "namespace 'shop' is not in this runbook's kubernetes.namespaces" in steps["status"]
    assert not [r for r in cluster.state.requests if r.startswith(("GET /kubernetes",
                                                                   "PATCH /kubernetes"))]

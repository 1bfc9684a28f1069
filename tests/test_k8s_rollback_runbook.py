"""The shipped `runbooks/k8s-rollback.yaml` end to end through the real `run-runbook` flow, in
a sandbox run: the Kubernetes stand-in holds `shop/web` stalled on a crash-looping image, a real
Prometheus scrapes the error ratio the test sets. The approval shows the revision and image
the rollback returns to; the rollback undoes to the good image once; the verification holds
only once the ratio is low, with its evaluations on the timeline; the war room gets the graph;
the page, ticket and incident are resolved. A rejected approval changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firelane.inputs import new_execution
from firelane.loader import load_runbook
from firelane.models import IncidentDraft, Severity
from firelane.store import Store, open_store
from flows.runs.approvals import decide
from flows.runs.run_runbook import run_runbook_result
from integrations.sandbox import Sandbox
from tests.kubernetes_fixtures import (
    BAD,
    cluster_fixture,  # noqa: F401  (the `cluster` fixture)
    deploy,
    image_of,
    web,
)
from tests.prometheus_fixtures import Exporter, PrometheusProcess, needs_prometheus

pytestmark = [pytest.mark.usefixtures("prefect_api"), needs_prometheus,
              pytest.mark.timeout(240)]

RUNBOOK = Path(__file__).resolve().parents[1] / "runbooks" / "k8s-rollback.yaml"
RATIO = 'firelane_test_ratio{service="web"}'


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Exporter, PrometheusProcess]]:
    """A real Prometheus scraping an exporter whose 5xx ratio the test sets (high at first),
    saved as the `default` PrometheusConnection block the runbook names."""
    from integrations.prometheus.block import PrometheusConnection

    exporter = Exporter()
    exporter.set(web=0.4)
    proc = PrometheusProcess(tmp_path / "prometheus", [f"127.0.0.1:{exporter.port}"])
    proc.wait_for(RATIO, 0.4)
    PrometheusConnection(url=proc.url).save("default", overwrite=True)
    yield exporter, proc
    proc.stop()
    exporter.close()


def _stalled(sb: Sandbox) -> None:
    deploy(sb, BAD)
    deadline = time.monotonic() + 10
    while not any(c["reason"] == "ProgressDeadlineExceeded"
                  for c in web(sb)["status"]["conditions"]):
        assert time.monotonic() < deadline, "the bad rollout never stalled"
        time.sleep(0.1)


def _run(store: Store, exporter: Exporter, approve: bool) -> tuple[dict[str, Any], str, str]:
    incident = store.declare_incident(IncidentDraft(
        title="web 5xx rate above 5%", severity=Severity.SEV1, service="web",
        labels={"alertname": "HighErrorRate", "platform": "kubernetes"}))
    execution = store.create_execution(new_execution(
        load_runbook(RUNBOOK), incident, {"error_ratio": RATIO}, sandbox=True))

    async def scenario() -> tuple[dict[str, Any], str]:
        flow = asyncio.create_task(run_runbook_result(execution.id))
        for _ in range(900):
            pending = [a for a in store.approvals_for(incident.id, "rollback") if a.flow_run_id]
            if pending:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the rollback's approval was never requested")
        if approve:
            exporter.set(web=0.002)
        await decide(store, pending[0], approve, "ann", "bad image confirmed")
        return await flow, pending[0].message

    result, request = asyncio.run(scenario())
    return result, request, execution.id


def test_the_bad_rollout_is_undone_after_approval_and_verified_by_prometheus(
        firelane_env: str, cluster: Sandbox, prometheus: tuple[Exporter, PrometheusProcess],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(RUNBOOK.parent))
    exporter, _ = prometheus
    _stalled(cluster)
    store = open_store(firelane_env)
    result, request, execution_id = _run(store, exporter, approve=True)
    assert result["status"] == "succeeded", result
    assert f"({BAD}) → revision 1 (registry.example/web:1)" in request
    assert image_of(cluster) == "registry.example/web:1"
    records = store.step_records(execution_id)
    assert records["rollback"].outputs["from_revision"] == 2  # type: ignore[index]
    verify = records["verify"].outputs or {}
    assert verify["held"] is True and verify["evaluations"] >= 2
    [incident] = store.list_incidents()
    assert incident.status.value == "resolved"
    kinds = [e.kind for e in store.timeline(incident.id)]
    assert kinds.count("prometheus.evaluation") == verify["evaluations"]
    assert kinds.count("prometheus.graph_posted") == 2, "both graphs went to the war room"
    state = cluster.state.dump()
    assert [i["status"] for i in state["pd_incidents"].values()] == ["resolved"]
    room = next(iter(state["slack_channels"]))
    charts = [f for f in state["slack_files"].values() if room in f["channels"]]
    assert len(charts) == 2 and all(f["length"] > 0 and f["channels"] == [room]
                                    for f in charts), charts
    texts = " ".join(m["text"] for m in state["slack_messages"])
    assert "back from revision 2" in texts and "registry.example/web:1" in texts


def test_a_rejected_rollback_changes_nothing(
        firelane_env: str, cluster: Sandbox, prometheus: tuple[Exporter, PrometheusProcess],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(RUNBOOK.parent))
    exporter, _ = prometheus
    _stalled(cluster)
    store = open_store(firelane_env)
    result, _, execution_id = _run(store, exporter, approve=False)
    assert image_of(cluster) == BAD, "a rejected rollback must not touch the Deployment"
    records = store.step_records(execution_id)
    assert records["rollback"].status.value == "skipped"
    assert records["verify"].status.value == "skipped"
    [incident] = store.list_incidents()
    assert incident.status.value != "resolved", result

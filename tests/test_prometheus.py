"""`prometheus.query` and `prometheus.check` against a real Prometheus process scraping an
exporter the test drives; a stopped, slow or refusing Prometheus fails the step clearly and in
bounded time, and the configured credentials reach the server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr, ValidationError

from bench.common import free_port
from firelane.errors import ActionError, VendorRejected, VendorUnavailable
from firelane.registry import ActionContext, call_action, registered_actions
from integrations.common import forget_blocks
from tests.prometheus_fixtures import (
    BASIC_PASSWORD,
    BASIC_USER,
    Exporter,
    PrometheusProcess,
    local_server,
    make_ctx,
    needs_prometheus,
)

pytestmark = [pytest.mark.usefixtures("prefect_api", "fast_retries"), pytest.mark.timeout(120)]

RATIO = "firelane_test_ratio"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FIRELANE_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("FIRELANE_RETRY_SETTLE_SECONDS", "0.05")


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    yield served
    served.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[PrometheusProcess]:
    proc = PrometheusProcess(tmp_path_factory.mktemp("prometheus"),
                             [f"127.0.0.1:{exporter.port}"])
    yield proc
    proc.stop()


def connection(name: str, url: str, **fields: Any) -> ActionContext:
    """Save a `PrometheusConnection` block as `name`; a context whose runbook names it."""
    from integrations.prometheus.block import PrometheusConnection

    PrometheusConnection(url=url, **fields).save(name, overwrite=True)
    forget_blocks()
    return make_ctx(name)


def run(name: str, inputs: dict[str, Any], ctx: ActionContext) -> Any:
    return asyncio.run(call_action(name, inputs, ctx))


def evaluations(ctx: ActionContext) -> list[dict[str, Any]]:
    return [e.details for e in ctx.events if e.kind == "prometheus.evaluation"]


def test_both_actions_are_read_only() -> None:
    actions = registered_actions()
    for name in ("prometheus.query", "prometheus.check"):
        assert actions[name].read_only and not actions[name].destructive


@needs_prometheus
def test_query_returns_a_typed_vector_and_scalar(exporter: Exporter,
                                                 prometheus: PrometheusProcess) -> None:
    exporter.set(web=0.5, api=0.25)
    prometheus.wait_for(f"sum({RATIO})", 0.75)
    ctx = connection("prom-real", prometheus.url)

    vector = run("prometheus.query", {"query": RATIO}, ctx)
    assert vector.result_type == "vector"
    by_service = {s.labels["service"]: s for s in vector.series}
    assert set(by_service) == {"web", "api"}
    assert by_service["web"].value == 0.5 and by_service["web"].text == "0.5"
    assert by_service["api"].labels["job"] == "app"
    assert vector.value is None

    scalar = run("prometheus.query", {"query": f"scalar(sum({RATIO}))"}, ctx)
    assert scalar.result_type == "scalar"
    assert scalar.value == 0.75 and scalar.series[0].labels == {}

    one = run("prometheus.query", {"query": f'{RATIO}{{service="web"}}'}, ctx)
    assert one.result_type == "vector" and one.value == 0.5

    nan = run("prometheus.query", {"query": "0/0"}, ctx)
    assert nan.result_type == "scalar" and nan.value is None and nan.series[0].text == "NaN"
    assert [e.kind for e in ctx.events].count("prometheus.query") == 4


@needs_prometheus
def test_check_holds_once_the_value_drops_and_stays(exporter: Exporter,
                                                    prometheus: PrometheusProcess) -> None:
    exporter.set(web=0.05)
    prometheus.wait_for(RATIO, 0.05)
    ctx = connection("prom-real", prometheus.url)

    async def recover() -> None:
        while not evaluations(ctx):
            await asyncio.sleep(0.05)
        exporter.set(web=0.001)

    async def scenario() -> Any:
        helper = asyncio.create_task(recover())
        out = await call_action("prometheus.check", {
            "query": RATIO, "op": "<", "threshold": 0.01, "for_seconds": 2,
            "within_seconds": 60, "interval_seconds": 0.5}, ctx)
        await helper
        return out

    out = asyncio.run(scenario())
    assert out.held and out.held_seconds >= 2
    assert out.series[0].value == 0.001
    seen = evaluations(ctx)
    assert seen[0]["holds"] is False and seen[0]["values"][0]["value"] == "0.05"
    assert seen[-1]["holds"] is True and seen[-1]["values"][0]["value"] == "0.001"
    assert len(seen) == out.evaluations


@needs_prometheus
def test_check_that_never_holds_fails_at_its_deadline_with_the_last_values(
        exporter: Exporter, prometheus: PrometheusProcess) -> None:
    exporter.set(web=0.05, api=0.002)
    prometheus.wait_for(f"count({RATIO})", 2)
    prometheus.wait_for(f'{RATIO}{{service="web"}}', 0.05)
    ctx = connection("prom-real", prometheus.url)
    with pytest.raises(ActionError) as caught:
        run("prometheus.check", {"query": RATIO, "op": "<", "threshold": 0.01,
                                 "for_seconds": 1, "within_seconds": 3,
                                 "interval_seconds": 0.5}, ctx)
    message = str(caught.value)
    assert "did not hold for 1 s within 3 s" in message
    assert 'service="web"' in message and "0.05" in message
    assert not caught.value.retryable
    seen = evaluations(ctx)
    assert len(seen) >= 2 and not any(e["holds"] for e in seen)
    assert {v["labels"]["service"]: v["value"] for v in seen[-1]["values"]} == {
        "web": "0.05", "api": "0.002"}


@needs_prometheus
def test_an_empty_result_does_not_hold_unless_the_runbook_says_so(
        prometheus: PrometheusProcess) -> None:
    ctx = connection("prom-real", prometheus.url)
    missing = f'{RATIO}{{service="nowhere"}}'
    with pytest.raises(ActionError, match="last values: no series"):
        run("prometheus.check", {"query": missing, "op": "<", "threshold": 1,
                                 "for_seconds": 0, "within_seconds": 1,
                                 "interval_seconds": 0.3}, ctx)
    out = run("prometheus.check", {"query": missing, "op": "<", "threshold": 1,
                                   "for_seconds": 0, "within_seconds": 5,
                                   "empty_holds": True}, ctx)
    assert out.held and out.evaluations == 1 and out.series == []


@needs_prometheus
def test_a_promql_error_is_rejected_with_prometheus_own_message(
        prometheus: PrometheusProcess) -> None:
    ctx = connection("prom-real", prometheus.url)
    with pytest.raises(VendorRejected) as caught:
        run("prometheus.query", {"query": "sum(rate(x[5m]"}, ctx)
    assert caught.value.status == 400 and not caught.value.retryable
    assert "bad_data" in str(caught.value) and "parse error" in str(caught.value)

    with pytest.raises(VendorRejected, match="parse error"):
        run("prometheus.check", {"query": "1 +", "op": "<", "threshold": 1,
                                 "within_seconds": 60}, ctx)
    assert not evaluations(ctx)
    with pytest.raises(VendorRejected, match="range vector"):
        run("prometheus.query", {"query": f"{RATIO}[1m]"}, ctx)


@needs_prometheus
def test_basic_auth_reaches_a_prometheus_that_requires_it(
        exporter: Exporter, tmp_path: Path) -> None:
    guarded = PrometheusProcess(tmp_path / "guarded", [f"127.0.0.1:{exporter.port}"],
                                basic_auth=True)
    try:
        ok = run("prometheus.query", {"query": "1 + 1"}, connection(
            "prom-basic", guarded.url, basic_username=BASIC_USER,
            basic_password=SecretStr(BASIC_PASSWORD)))
        assert ok.value == 2
        with pytest.raises(VendorRejected) as caught:
            run("prometheus.query", {"query": "1 + 1"}, connection(
                "prom-basic-wrong", guarded.url, basic_username=BASIC_USER,
                basic_password=SecretStr("wrong")))
        assert caught.value.status == 401 and "basic auth" in str(caught.value)
    finally:
        guarded.stop()


@needs_prometheus
def test_a_stopped_prometheus_fails_the_step_within_its_deadline(
        exporter: Exporter, tmp_path: Path) -> None:
    doomed = PrometheusProcess(tmp_path / "doomed", [f"127.0.0.1:{exporter.port}"])
    try:
        ctx = connection("prom-doomed", doomed.url)
        assert run("prometheus.query", {"query": "1"}, ctx).value == 1
    finally:
        doomed.stop()
    with pytest.raises(VendorUnavailable, match="cannot reach") as caught:
        run("prometheus.query", {"query": "1"}, ctx)
    assert caught.value.retryable
    assert any(e.kind == "integration.retry" for e in ctx.events)

    with pytest.raises(VendorUnavailable, match=r"last evaluation failed: .*cannot reach"):
        run("prometheus.check", {"query": "1", "op": "<", "threshold": 2,
                                 "for_seconds": 0, "within_seconds": 1.5,
                                 "interval_seconds": 0.5}, ctx)
    seen = evaluations(ctx)
    assert seen and all(e["error"] and not e["holds"] for e in seen)


def test_a_refused_connection_is_unavailable() -> None:
    ctx = connection("prom-refused", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(VendorUnavailable, match="ConnectError"):
        run("prometheus.query", {"query": "up"}, ctx)


def test_a_slow_prometheus_times_out_instead_of_hanging() -> None:
    with local_server(delay=30) as slow:
        ctx = connection("prom-slow", slow.url, timeout_seconds=0.5)
        with pytest.raises(VendorUnavailable, match=r"no answer .* within 0\.5 s"):
            run("prometheus.query", {"query": "up"}, ctx)
        with pytest.raises(VendorUnavailable, match=r"did not hold .* no answer"):
            run("prometheus.check", {"query": "up", "op": "==", "threshold": 1,
                                     "for_seconds": 0, "within_seconds": 1.2,
                                     "interval_seconds": 0.2}, ctx)
        assert evaluations(ctx)
        timeouts = [parse_qs(form)["timeout"][0] for _, form in slow.requests]
        assert timeouts and all(int(t.removesuffix("ms")) <= 500 for t in timeouts)


def test_a_5xx_is_unavailable_and_a_401_rejected() -> None:
    error = {"status": "error", "errorType": "unavailable", "error": "tsdb not ready"}
    with local_server(status=503, body=error) as down:
        with pytest.raises(VendorUnavailable, match="tsdb not ready") as caught:
            run("prometheus.query", {"query": "up"}, connection("prom-503", down.url))
        assert caught.value.status == 503
    refusal = {"status": "error", "error": "Unauthorized"}
    with local_server(status=401, body=refusal) as guard, \
            pytest.raises(VendorRejected, match="Unauthorized"):
        run("prometheus.query", {"query": "up"}, connection("prom-401", guard.url))


def test_the_bearer_token_is_sent_and_never_shown() -> None:
    with local_server() as recorder:
        ctx = connection("prom-bearer", recorder.url, bearer_token=SecretStr("s3cr3t-t0ken"))
        assert run("prometheus.query", {"query": "up == 1"}, ctx).value == 1
    headers, form = recorder.requests[-1]
    assert headers["Authorization"] == "Bearer s3cr3t-t0ken"
    assert parse_qs(form)["query"] == ["up == 1"]
    assert all("s3cr3t-t0ken" not in str(e.model_dump()) for e in ctx.events)


def test_basic_auth_is_sent_as_configured() -> None:
    with local_server() as recorder:
        run("prometheus.query", {"query": "up"}, connection(
            "prom-basic-recorded", recorder.url, basic_username="ops",
            basic_password=SecretStr("pw")))
    headers, _ = recorder.requests[-1]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ops:pw").decode()


def test_inputs_and_blocks_refuse_what_cannot_work() -> None:
    from integrations.prometheus.block import PrometheusConnection

    with pytest.raises(ValidationError, match="cannot exceed within_seconds"):
        run("prometheus.check", {"query": "up", "op": "<", "threshold": 1,
                                 "for_seconds": 120, "within_seconds": 60}, make_ctx("x"))
    with pytest.raises(ValidationError, match="op"):
        run("prometheus.check", {"query": "up", "op": "=<", "threshold": 1}, make_ctx("x"))
    with pytest.raises(ValidationError, match="not both"):
        PrometheusConnection(url="http://p:9090", bearer_token=SecretStr("t"),
                             basic_username="u", basic_password=SecretStr("p"))
    with pytest.raises(ValidationError, match="needs both"):
        PrometheusConnection(url="http://p:9090", basic_username="u")


RUNBOOK = """version: 1
name: verify-ratio
credentials: {prometheus: prom-engine}
steps:
  - {id: ratio, uses: prometheus.query, with: {query: 'firelane_test_ratio{service="web"}'}}
  - id: verify
    uses: prometheus.check
    needs: [ratio]
    with: {query: firelane_test_ratio, op: "<", threshold: 0.01, for_seconds: 0,
           within_seconds: 2, interval_seconds: 0.5}
on_failure:
  - {id: tell, uses: test.effect, with: {name: "ratio {{ steps.ratio.outputs.value }}"}}
"""


@needs_prometheus
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_a_runbook_verifies_with_prometheus_and_fails_over_to_on_failure(
        firelane_env: str, exporter: Exporter, prometheus: PrometheusProcess,
        dry_run: bool) -> None:
    from firelane.store import open_store
    from flows.runs.run_runbook import run_runbook_result
    from tests.helpers import prepare
    from tests.plugin_actions import effects

    store = open_store(firelane_env)
    connection("prom-engine", prometheus.url)
    exporter.set(web=0.05)
    prometheus.wait_for(RATIO, 0.05)
    rc = prepare(store, RUNBOOK, dry_run=dry_run)
    result = asyncio.run(run_runbook_result(rc.execution.id))
    records = store.step_records(rc.execution.id)
    assert result["status"] == "failed"
    assert records["ratio"].status.value == "succeeded"
    assert (records["ratio"].outputs or {})["value"] == 0.05
    assert "dry_run" not in (records["ratio"].outputs or {}), "read-only steps run for real"
    assert records["verify"].status.value == "failed"
    assert 'service="web"} 0.05' in str(records["verify"].error)
    timeline = store.timeline(rc.incident.id)
    assert [e for e in timeline if e.kind == "prometheus.evaluation" and e.step_id == "verify"]
    if not dry_run:
        assert [n for _, n in effects()] == ["ratio 0.05"]

    exporter.set(web=0.001)
    prometheus.wait_for(RATIO, 0.001)
    rc = prepare(store, RUNBOOK, dry_run=dry_run)
    result = asyncio.run(run_runbook_result(rc.execution.id))
    assert result["status"] == "succeeded"
    assert (store.step_records(rc.execution.id)["verify"].outputs or {})["held"] is True


@needs_prometheus
def test_doctor_checks_a_connection_block_against_the_server(
        prometheus: PrometheusProcess) -> None:
    from integrations.block_types import check_credentials

    connection("doctor-ok", prometheus.url)
    said = asyncio.run(check_credentials("prometheus", "doctor-ok"))
    assert said == "query answered (vector)"
    connection("doctor-down", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(VendorUnavailable):
        asyncio.run(check_credentials("prometheus", "doctor-down"))

"""`alertmanager.silence` and `alertmanager.expire_silence` against a real Alertmanager (0.25):
a silence matches the incident's alert, is made once per step however often the step runs,
expires (twice is fine), and every failure is the right error with Alertmanager's reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from bench.common import free_port
from firelane.errors import ActionError, VendorRejected, VendorUnavailable
from firelane.registry import ActionContext, call_action, get_action
from integrations.common import forget_blocks
from tests.alertmanager_fixtures import (
    BASIC_PASSWORD,
    BASIC_USER,
    AlertmanagerProcess,
    make_ctx,
    needs_alertmanager,
)
from tests.fault_proxy import FaultProxy, ProxyFault

pytestmark = [pytest.mark.usefixtures("prefect_api", "fast_retries"), pytest.mark.timeout(120)]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("FIRELANE_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("FIRELANE_RETRY_SETTLE_SECONDS", "0.3")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerProcess]:
    proc = AlertmanagerProcess(tmp_path_factory.mktemp("alertmanager"))
    yield proc
    proc.stop()


def connection(name: str, url: str, key: str = "firelane-am-test", **fields: Any,
               ) -> ActionContext:
    """Save an `AlertmanagerConnection` block as `name`; a context whose runbook names it."""
    from integrations.alertmanager.block import AlertmanagerConnection

    AlertmanagerConnection(url=url, **fields).save(name, overwrite=True)
    forget_blocks()
    return make_ctx(name, key=key)


def run(name: str, inputs: dict[str, Any], ctx: ActionContext) -> Any:
    return asyncio.run(call_action(name, inputs, ctx))


def mine(am: AlertmanagerProcess, key: str) -> list[dict[str, Any]]:
    return [s for s in am.silences() if f"[firelane:{key}]" in str(s["comment"])]


def test_both_actions_are_destructive_with_a_preview() -> None:
    for name in ("alertmanager.silence", "alertmanager.expire_silence"):
        spec = get_action(name)
        assert spec.destructive and not spec.read_only and spec.preview is not None
    preview = get_action("alertmanager.silence").describe_effect(
        get_action("alertmanager.silence").inputs.model_validate({"duration_seconds": 1800}))
    assert preview == {"silence": "the incident's alertname and service labels for 0:30:00"}


@needs_alertmanager
def test_a_silence_matches_the_incidents_alert_and_is_active(
        alertmanager: AlertmanagerProcess) -> None:
    ctx = connection("am-real", alertmanager.url, key="k-create")
    before = datetime.now(UTC)
    out = run("alertmanager.silence", {"duration_seconds": 600, "comment": "rolling back"}, ctx)
    assert out.created and out.silence_id and not out.dry_run
    assert out.url == f"{alertmanager.url}/#/silences/{out.silence_id}"
    seen = alertmanager.silence(out.silence_id)
    assert seen["status"] == {"state": "active"}
    assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in seen["matchers"]} \
        == {("alertname", "HighErrorRate", False, True), ("service", "checkout", False, True)}
    assert "INC-12 (Checkout 5xx above 1%): rolling back [firelane:k-create]" in seen["comment"]
    assert seen["createdBy"] == "firelane"
    ends = datetime.fromisoformat(str(seen["endsAt"]))
    assert before + timedelta(seconds=590) < ends < before + timedelta(seconds=620)
    assert out.ends_at == ends
    assert [e.kind for e in ctx.events] == ["alertmanager.silenced"]


@needs_alertmanager
def test_the_same_step_twice_or_resumed_makes_one_silence(
        alertmanager: AlertmanagerProcess) -> None:
    ctx = connection("am-real", alertmanager.url, key="k-twice")
    first = run("alertmanager.silence", {}, ctx)
    again = run("alertmanager.silence", {}, ctx)
    resumed = run("alertmanager.silence", {}, replace(
        ctx, attempt=2, repeat_since=datetime.now(UTC) - timedelta(seconds=30), events=[]))
    assert first.created and not again.created and not resumed.created
    assert first.silence_id == again.silence_id == resumed.silence_id
    assert len(mine(alertmanager, "k-twice")) == 1
    other = run("alertmanager.silence", {}, connection("am-real", alertmanager.url,
                                                       key="k-other"))
    assert other.created and other.silence_id != first.silence_id


@needs_alertmanager
def test_expire_then_expire_again_is_fine_and_an_unknown_id_is_rejected(
        alertmanager: AlertmanagerProcess) -> None:
    ctx = connection("am-real", alertmanager.url, key="k-expire")
    made = run("alertmanager.silence", {"matchers": [
        {"name": "instance", "value": "web-.*", "is_regex": True}]}, ctx)
    assert alertmanager.silence(made.silence_id)["matchers"] == [
        {"name": "instance", "value": "web-.*", "isRegex": True, "isEqual": True}]
    out = run("alertmanager.expire_silence", {"silence_id": made.silence_id}, ctx)
    assert out.state == "expired" and not out.already_expired
    assert alertmanager.silence(made.silence_id)["status"] == {"state": "expired"}
    twice = run("alertmanager.expire_silence", {"silence_id": made.silence_id}, ctx)
    assert twice.state == "expired" and twice.already_expired
    after = run("alertmanager.silence", {"matchers": [
        {"name": "instance", "value": "web-.*", "is_regex": True}]}, ctx)
    assert after.created, "an expired silence is not reused: the step quiets again"
    with pytest.raises(VendorRejected, match="no silence 00000000-"):
        run("alertmanager.expire_silence",
            {"silence_id": "00000000-0000-4000-8000-000000000000"}, ctx)


@needs_alertmanager
def test_a_bad_matcher_is_rejected_with_alertmanagers_reason(
        alertmanager: AlertmanagerProcess) -> None:
    ctx = connection("am-real", alertmanager.url, key="k-bad")
    with pytest.raises(VendorRejected) as caught:
        run("alertmanager.silence", {"matchers": [
            {"name": "instance", "value": "(", "is_regex": True}]}, ctx)
    assert caught.value.status == 400 and not caught.value.retryable
    assert "invalid regular expression" in str(caught.value)
    with pytest.raises(VendorRejected, match="at least one matcher must not match the empty"):
        run("alertmanager.silence", {"matchers": [{"name": "instance", "value": ""}]}, ctx)
    assert mine(alertmanager, "k-bad") == []
    assert not [e for e in ctx.events if e.kind == "integration.retry"]


@needs_alertmanager
def test_a_dry_run_says_what_it_would_silence_and_creates_nothing(
        alertmanager: AlertmanagerProcess) -> None:
    ctx = replace(connection("am-real", alertmanager.url, key="k-dry"), dry_run=True)
    out = run("alertmanager.silence", {"duration_seconds": 300}, ctx)
    assert out.dry_run and not out.created and out.silence_id == "dry-run-silence_id"
    assert [m.show() for m in out.matchers] == ['alertname="HighErrorRate"',
                                                'service="checkout"']
    [event] = ctx.events
    assert event.kind == "alertmanager.dry_run"
    assert 'would silence alertname="HighErrorRate", service="checkout"' in event.summary
    assert mine(alertmanager, "k-dry") == []
    expired = run("alertmanager.expire_silence", {"silence_id": "x"}, ctx)
    assert expired.dry_run


def test_an_incident_without_the_labels_is_refused_before_any_call() -> None:
    ctx = make_ctx("am-nowhere", labels={})
    with pytest.raises(ActionError, match="has no 'alertname' label") as caught:
        run("alertmanager.silence", {}, ctx)
    assert not caught.value.retryable
    with pytest.raises(ValidationError, match="at least 1"):
        run("alertmanager.silence", {"matchers": []}, ctx)


def test_alertmanager_down_is_unavailable() -> None:
    ctx = connection("am-down", f"http://127.0.0.1:{free_port()}", key="k-down")
    with pytest.raises(VendorUnavailable, match="cannot reach") as caught:
        run("alertmanager.silence", {}, ctx)
    assert caught.value.retryable
    assert len([e for e in ctx.events if e.kind == "integration.retry"]) == 2
    with pytest.raises(VendorUnavailable, match="cannot reach"):
        run("alertmanager.expire_silence", {"silence_id": "x"}, ctx)


@needs_alertmanager
def test_basic_auth_reaches_an_alertmanager_that_requires_it(tmp_path: Path) -> None:
    guarded = AlertmanagerProcess(tmp_path / "guarded", basic_auth=True)
    try:
        ok = run("alertmanager.silence", {}, connection(
            "am-basic", guarded.url, key="k-basic", basic_username=BASIC_USER,
            basic_password=SecretStr(BASIC_PASSWORD)))
        assert ok.created
        with pytest.raises(VendorRejected) as caught:
            run("alertmanager.silence", {}, connection(
                "am-basic-wrong", guarded.url, key="k-basic-2", basic_username=BASIC_USER,
                basic_password=SecretStr("wrong")))
        assert caught.value.status == 401 and "basic auth" in str(caught.value)
    finally:
        guarded.stop()


FAULTS: dict[str, dict[str, Any]] = {
    "429": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    "timeout": {"kind": "timeout"},
    "reset": {"kind": "reset"},
    "dropped": {"kind": "dropped"},
    "applied-then-500": {"kind": "applied_then_500"},
    "applied-then-lost": {"kind": "applied_then_lost"},
}


@needs_alertmanager
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", ["alertmanager.silence"])
@pytest.mark.fault_matrix
def test_fault_matrix_one_silence_whatever_happens_to_the_create(
        alertmanager: AlertmanagerProcess, action: str, fault: str) -> None:
    key = f"k-fault-{fault}"
    with FaultProxy(alertmanager.port) as proxy:
        armed = proxy.arm(ProxyFault(**FAULTS[fault], match=b"POST /api/v2/silences"))
        ctx = connection(f"am-fault-{fault}", f"http://127.0.0.1:{proxy.port}", key=key,
                         timeout_seconds=1.0)
        out = run(action, {}, ctx)
        assert armed.hits == 1, "the fault never fired"
        assert len(mine(alertmanager, key)) == 1, f"{fault}: not exactly one silence"
        retries = [e for e in ctx.events if e.kind == "integration.retry"]
        assert len(retries) == 1 and retries[0].details["attempt"] == 1
        assert out.created == (not fault.startswith("applied"))
        again = run(action, {}, ctx)
        assert again.silence_id == out.silence_id and len(mine(alertmanager, key)) == 1


RUNBOOK = """version: 1
name: quiet-while-fixing
credentials: {alertmanager: am-engine}
steps:
  - id: quiet
    uses: alertmanager.silence
    with:
      matchers: [{name: alertname, value: HighErrorRate}, {name: service,
                  value: "{{ incident.service }}"}]
      duration_seconds: 900
  - id: unquiet
    needs: [quiet]
    uses: alertmanager.expire_silence
    with: {silence_id: "{{ steps.quiet.outputs.silence_id }}"}
"""


@needs_alertmanager
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_a_runbook_silences_then_lifts_the_silence_and_a_dry_run_touches_nothing(
        firelane_env: str, alertmanager: AlertmanagerProcess, dry_run: bool) -> None:
    from firelane.store import open_store
    from flows.runs.run_runbook import run_runbook_result
    from tests.helpers import prepare

    store = open_store(firelane_env)
    connection("am-engine", alertmanager.url)
    before = len(alertmanager.silences())
    rc = prepare(store, RUNBOOK, dry_run=dry_run, service="checkout")
    assert asyncio.run(run_runbook_result(rc.execution.id))["status"] == "succeeded"
    records = store.step_records(rc.execution.id)
    quiet, unquiet = records["quiet"].outputs or {}, records["unquiet"].outputs or {}
    if dry_run:
        assert quiet["dry_run"] and unquiet["dry_run"]
        assert unquiet["silence_id"] == quiet["silence_id"] == "dry-run-silence_id"
        assert len(alertmanager.silences()) == before
        [would] = [e for e in store.timeline(rc.incident.id)
                   if e.kind == "alertmanager.dry_run" and e.step_id == "quiet"]
        assert 'would silence alertname="HighErrorRate", service="checkout"' in would.summary
        return
    assert quiet["created"] and unquiet["state"] == "expired"
    seen = alertmanager.silence(quiet["silence_id"])
    assert seen["status"] == {"state": "expired"}
    assert f"INC-{rc.incident.number} (checkout errors)" in seen["comment"]
    kinds = [e.kind for e in store.timeline(rc.incident.id)]
    assert "alertmanager.silenced" in kinds and "alertmanager.silence_expired" in kinds


@needs_alertmanager
def test_doctor_checks_a_connection_block_against_alertmanager(
        alertmanager: AlertmanagerProcess) -> None:
    from integrations.block_types import check_credentials

    connection("doctor-am", alertmanager.url)
    assert asyncio.run(check_credentials("alertmanager", "doctor-am")).startswith(
        "silences readable (")
    connection("doctor-am-down", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(VendorUnavailable):
        asyncio.run(check_credentials("alertmanager", "doctor-am-down"))


@needs_alertmanager
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("action", ["alertmanager.expire_silence"])
@pytest.mark.fault_matrix
def test_fault_matrix_the_silence_ends_once_whatever_happens_to_the_delete(
        alertmanager: AlertmanagerProcess, action: str, fault: str) -> None:
    key = f"k-expire-{fault}"
    made = run("alertmanager.silence", {}, connection(f"am-made-{fault}", alertmanager.url,
                                                       key=key))
    with FaultProxy(alertmanager.port) as proxy:
        armed = proxy.arm(ProxyFault(**FAULTS[fault], match=b"DELETE /api/v2/silence/"))
        ctx = connection(f"am-expire-{fault}", f"http://127.0.0.1:{proxy.port}",
                         key=f"{key}-expire", timeout_seconds=1.0)
        run(action, {"silence_id": made.silence_id}, ctx)
        assert armed.hits == 1, "the fault never fired"
        [silence] = mine(alertmanager, key)
        assert silence["status"]["state"] == "expired", f"{fault}: the silence is still on"
        retries = [e for e in ctx.events if e.kind == "integration.retry"]
        assert len(retries) == 1 and retries[0].details["attempt"] == 1
        run(action, {"silence_id": made.silence_id}, ctx)
        assert [s["status"]["state"] for s in mine(alertmanager, key)] == ["expired"]

"""Statuspage: the real client over HTTPS against the sandbox's stand-in (no mocks).

Covers create-then-update, component statuses, exactly-once after a lost answer and after a
resumed step, the documented rate limit (paced, and a 420/429 honoured), a bad key, the
vendor's 422 message, the documented limits and the documented response shapes.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from firelane.errors import VendorRejected
from integrations.sandbox import Sandbox
from integrations.sandbox.state import STATUSPAGE_COMPONENTS
from integrations.statuspage import block as statuspage_block
from integrations.statuspage.block import SANDBOX_API_KEY, SANDBOX_PAGE_ID, StatuspageCredentials
from tests.sandbox_fixtures import make_ctx, run_action

CHECKOUT = "cmp0checkout"
INCIDENTS = f"/statuspage/v1/pages/{SANDBOX_PAGE_ID}/incidents"


def _updates(sb: Sandbox) -> int:
    return sum(len(i["_updates"]) for i in sb.state.statuspage_incidents.values())


def _post(status: str, body: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "body": body, **extra}


class _Documented(BaseModel):
    model_config = ConfigDict(extra="allow")


class Component(_Documented):
    """`Component` as https://developer.statuspage.io/#tag/components shows it."""

    id: str
    page_id: str
    name: str
    status: str
    position: int
    created_at: str
    updated_at: str
    group_id: str | None
    showcase: bool
    only_show_if_degraded: bool


class IncidentUpdate(_Documented):
    """`IncidentUpdate` as the incident's `incident_updates` items."""

    id: str
    incident_id: str
    body: str
    status: str
    created_at: str
    display_at: str
    deliver_notifications: bool
    affected_components: list[dict[str, str]] | None


class Incident(_Documented):
    """`Incident` as `GET/POST/PATCH /pages/{page_id}/incidents[/{id}]` return it."""

    id: str
    name: str
    status: str
    impact: str
    page_id: str
    shortlink: str
    created_at: str
    updated_at: str
    resolved_at: str | None
    metadata: dict[str, dict[str, Any]]
    components: list[Component]
    incident_updates: list[IncidentUpdate]


def _tls(sb: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sb.ca_file)


def _creds(sb: Sandbox, **change: Any) -> StatuspageCredentials:
    return StatuspageCredentials.for_sandbox(sb.url, sb.ca_file).model_copy(update=change)


def test_create_then_update_is_one_incident_with_two_updates(sandbox: Sandbox) -> None:
    first = asyncio.run(run_action("statuspage.post_update", _post(
        "investigating", "Checkout errors; we are looking.",
        components={CHECKOUT: "partial_outage"}, update_id="u1"), make_ctx("first")))
    second = asyncio.run(run_action("statuspage.post_update", _post(
        "identified", "A bad release; rolling back.", update_id="u2"), make_ctx("second")))
    assert first.created and first.posted and not second.created and second.posted
    assert first.incident_id == second.incident_id and first.url.startswith("https://")
    [incident] = sandbox.state.statuspage_incidents.values()
    assert [u["status"] for u in incident["_updates"]] == ["investigating", "identified"]
    assert incident["name"] == "Checkout 5xx above 5%" and incident["impact"] == "major"
    assert incident["metadata"]["firelane"]["incident_id"] == "a" * 32
    assert incident["metadata"]["firelane"]["last_update"] == "u2"
    assert sandbox.state.statuspage_components[CHECKOUT]["status"] == "partial_outage"


def test_component_status_is_set_once(sandbox: Sandbox) -> None:
    inputs = {"component_id": CHECKOUT, "status": "degraded_performance"}
    out = asyncio.run(run_action("statuspage.set_component_status", inputs, make_ctx("c")))
    again = asyncio.run(run_action("statuspage.set_component_status", inputs, make_ctx("c")))
    assert (out.changed, out.from_status, out.name) == (True, "operational", "Checkout")
    assert not again.changed and again.from_status == "degraded_performance"
    assert len(sandbox.state.statuspage_component_changes) == 1


def test_update_after_an_applied_then_lost_answer_is_posted_once(sandbox: Sandbox) -> None:
    asyncio.run(run_action("statuspage.post_update", _post("investigating", "looking",
                                                           update_id="u1"), make_ctx("a")))
    incident_id = next(iter(sandbox.state.statuspage_incidents))
    rule = sandbox.faults.add(path=f"{INCIDENTS}/{incident_id}", method="PATCH",
                              kind="apply_then_reset")
    ctx = make_ctx("b")
    out = asyncio.run(run_action("statuspage.post_update", _post("monitoring", "fixed",
                                                                 update_id="u2"), ctx))
    assert rule.hits == 1 and out.posted and not out.created
    assert [e.kind for e in ctx.events].count("integration.retry") == 1
    assert _updates(sandbox) == 2


def test_a_resumed_step_sees_its_own_update_and_posts_nothing(sandbox: Sandbox) -> None:
    inputs = _post("investigating", "looking", components={CHECKOUT: "major_outage"})
    first = asyncio.run(run_action("statuspage.post_update", inputs, make_ctx("resume")))
    resumed = replace(make_ctx("resume"), repeat_since=datetime.now(UTC))
    out = asyncio.run(run_action("statuspage.post_update", inputs, resumed))
    assert first.posted and (out.created, out.posted) == (True, False)
    assert out.incident_id == first.incident_id and _updates(sandbox) == 1


def test_requests_are_paced_to_one_per_second(sandbox: Sandbox) -> None:
    started = time.monotonic()
    for status in ("degraded_performance", "operational"):
        asyncio.run(run_action("statuspage.set_component_status",
                               {"component_id": CHECKOUT, "status": status}, make_ctx(status)))
    calls = sandbox.state.statuspage_calls
    assert [c["status"] for c in calls] == [None] * 4
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.9 and time.monotonic() - started >= 2.9


@pytest.mark.parametrize("status", [420, 429])
def test_a_rate_limit_answer_is_honoured(sandbox: Sandbox, status: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.state, "statuspage_rate_limit", {"requests": 1, "window": 1})
    monkeypatch.setattr(sandbox.state, "statuspage_rate_status", status)
    monkeypatch.setattr(statuspage_block, "SANDBOX_INTERVAL_SECONDS", 1.2)
    time.sleep(1.3)
    other = httpx.get(f"{sandbox.url}{INCIDENTS}", verify=_tls(sandbox),
                      headers={"Authorization": f"OAuth {SANDBOX_API_KEY}"})
    assert other.status_code == 200
    ctx = make_ctx("limited")
    out = asyncio.run(run_action("statuspage.post_update", _post("investigating", "x"), ctx))
    retries = [e for e in ctx.events if e.kind == "integration.retry"]
    assert out.created and len(sandbox.state.statuspage_incidents) == 1
    assert len(retries) == 1 and f"HTTP {status}" in retries[0].details["error"]
    assert retries[0].details["wait_seconds"] >= 1
    assert [c["status"] for c in sandbox.state.statuspage_calls].count(status) == 1


def test_a_bad_key_is_a_clear_refusal(sandbox: Sandbox) -> None:
    async def read() -> None:
        async with _creds(sandbox, api_key=SecretStr("revoked")).get_client() as client:
            await client.get_page()

    with pytest.raises(VendorRejected, match=r"statuspage: Could not authenticate \(HTTP 401"):
        asyncio.run(read())


def test_the_vendors_422_message_surfaces(sandbox: Sandbox) -> None:
    with pytest.raises(VendorRejected, match=r"Component cmp0nothing could not be found.*422"):
        asyncio.run(run_action("statuspage.post_update", _post(
            "investigating", "x", components={"cmp0nothing": "major_outage"}), make_ctx()))

    async def unnamed() -> None:
        async with _creds(sandbox).get_client() as client:
            await client.create_incident({"status": "investigating", "body": "x"})

    with pytest.raises(VendorRejected, match="Name can't be blank"):
        asyncio.run(unnamed())
    with pytest.raises(VendorRejected, match=r"could not be found.*404"):
        asyncio.run(run_action("statuspage.set_component_status",
                               {"component_id": "cmp0nothing", "status": "operational"},
                               make_ctx()))
    assert sandbox.state.statuspage_incidents == {}


def test_long_names_and_bodies_are_fitted_to_the_documented_limits(sandbox: Sandbox) -> None:
    ctx = make_ctx("long")
    asyncio.run(run_action("statuspage.post_update", _post(
        "investigating", "b" * 25001, name="n" * 300), ctx))
    [incident] = sandbox.state.statuspage_incidents.values()
    assert len(incident["name"]) == 255 and len(incident["_updates"][0]["body"]) == 25000
    fitted = {e.details["field"] for e in ctx.events if e.kind == "vendor.fitted"}
    assert fitted == {"incident.name", "incident.body"}
    too_long = httpx.post(f"{sandbox.url}{INCIDENTS}", verify=_tls(sandbox),
                          headers={"Authorization": f"OAuth {SANDBOX_API_KEY}"},
                          json={"incident": {"name": "n" * 256}})
    assert too_long.status_code == 422 and "maximum is 255" in too_long.json()["message"]


def test_answers_have_the_documented_shapes(sandbox: Sandbox) -> None:
    asyncio.run(run_action("statuspage.post_update", _post(
        "investigating", "x", components={CHECKOUT: "major_outage"}), make_ctx("s")))

    async def read() -> tuple[Any, Any, Any]:
        async with _creds(sandbox).get_client() as client:
            rows = await client.list_incidents()
            return rows, await client.get_incident(rows[0]["id"]), \
                await client.get_component(CHECKOUT)

    rows, one, component = asyncio.run(read())
    incident = Incident.model_validate(one)
    assert [Incident.model_validate(r).id for r in rows] == [incident.id]
    assert incident.components[0].id == CHECKOUT and incident.impact == "critical"
    update = incident.incident_updates[0]
    assert update.affected_components == [{"code": CHECKOUT, "name": "Checkout",
                                           "old_status": "operational",
                                           "new_status": "major_outage"}]
    assert Component.model_validate(component).status == "major_outage"


@pytest.mark.usefixtures("prefect_api")
def test_check_credentials_reads_the_page(sandbox: Sandbox) -> None:
    from integrations.block_types import CREDENTIALS, check_credentials

    assert CREDENTIALS["statuspage"] is StatuspageCredentials
    _creds(sandbox).save("sp-check", overwrite=True)
    said = asyncio.run(check_credentials("statuspage", "sp-check"))
    assert said == f"page 'Firelane Sandbox' ({SANDBOX_PAGE_ID}) readable"
    _creds(sandbox, api_key=SecretStr("revoked")).save("sp-check", overwrite=True)
    with pytest.raises(VendorRejected, match="Could not authenticate"):
        asyncio.run(check_credentials("statuspage", "sp-check"))


def test_admin_state_config_and_reset(sandbox: Sandbox) -> None:
    asyncio.run(run_action("statuspage.post_update", _post("investigating", "x"), make_ctx()))
    admin = httpx.Client(base_url=f"{sandbox.url}/_admin", verify=_tls(sandbox))
    state = admin.get("/state").json()
    [incident] = state["statuspage_incidents"].values()
    assert incident["incident_updates"][0]["body"] == "x" and "statuspage_windows" not in state
    assert admin.post("/config", json={"statuspage_components": {"cmp00000mail": "Mail"}}
                      ).json() == {"ok": True}
    try:
        assert list(admin.get("/state").json()["statuspage_components"]) == ["cmp00000mail"]
        admin.post("/reset")
        state = admin.get("/state").json()
        assert state["statuspage_incidents"] == {} and state["statuspage_calls"] == []
        assert state["statuspage_components"]["cmp00000mail"]["status"] == "operational"
    finally:
        admin.post("/config", json={"statuspage_components": STATUSPAGE_COMPONENTS})

"""PagerDuty actions. Pages are deduplicated by PagerDuty itself through `dedup_key`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pagerduty
from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ConfigError, IntegrationError, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import cached_block, in_thread, load_block, retrying, vendor_error
from integrations.limits import fit_for, fit_key
from integrations.pagerduty.limits import DEDUP_KEY, SUMMARY

if TYPE_CHECKING:
    from integrations.pagerduty.block import PagerDutyCredentials

__all__ = ["TriggerInputs", "TriggerOutputs"]

T = TypeVar("T")


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await in_thread(fn, *args, **kwargs)
    except pagerduty.HttpError as exc:
        response = exc.response
        raise vendor_error("pagerduty", response.status_code if response is not None else None,
                           str(exc).splitlines()[0][:300],
                           response.headers.get("Retry-After") if response is not None
                           else None) from exc
    except pagerduty.Error as exc:
        raise VendorUnavailable("pagerduty", str(exc).splitlines()[0][:300]) from exc
    except OSError as exc:
        raise VendorUnavailable("pagerduty", f"{type(exc).__name__}: {exc}") from exc


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _creds(ctx: ActionContext) -> PagerDutyCredentials:
    from integrations.pagerduty.block import PagerDutyCredentials

    creds: PagerDutyCredentials = await load_block(PagerDutyCredentials, ctx, "pagerduty")
    return creds


async def _routing_key(ctx: ActionContext, block_name: str | None) -> str | None:
    if ctx.sandbox or not block_name:
        return None
    from prefect.blocks.system import Secret

    try:
        secret: Any = await cached_block(Secret, block_name)
    except ValueError as exc:
        raise ConfigError(f"no Secret block named {block_name!r} for the PagerDuty routing "
                          "key (service catalog pagerduty.routing_key_block)") from exc
    return str(secret.get())


class TriggerInputs(_In):
    """`pagerduty.trigger` inputs."""

    summary: str = Field(min_length=1, description=(
        "What is wrong; fitted to 1,024 characters, the full text into custom_details"))
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    source: str | None = Field(default=None, description="Where (default: the service)")
    dedup_key: str | None = Field(default=None, description=(
        "Default: the step's key; a key over 255 characters is hashed deterministically"))
    routing_key_block: str | None = Field(
        default=None, description="Secret block holding the service's routing key",
        json_schema_extra={"catalog": "pagerduty.routing_key_block"})
    custom_details: dict[str, Any] = Field(default_factory=dict)
    links: list[dict[str, str]] = Field(default_factory=list, description="[{href, text}]")


class TriggerOutputs(BaseModel):
    """The page's dedup key (use it to acknowledge, resolve or annotate)."""

    dedup_key: str
    dry_run: bool = False
    routing_key_block: str | None = None


@action("pagerduty.trigger", pages=True)
async def trigger(inputs: TriggerInputs, ctx: ActionContext) -> TriggerOutputs:
    """Page the on-call through Events v2. The dedup_key makes a repeat a no-op at PagerDuty.

    Events v2 answers with the dedup key only; `pagerduty.find_incident` (a separate step,
    off the paging path) finds the incident's web page for the incident's `page` link.
    Example: `{uses: pagerduty.trigger, with: {summary: "{{ incident.title }}"}}`
    """
    key = fit_for(ctx, DEDUP_KEY, inputs.dedup_key or ctx.idempotency_key, key=True)
    summary = fit_for(ctx, SUMMARY, inputs.summary)
    details = inputs.custom_details if summary == inputs.summary else {
        **inputs.custom_details, "full_summary": inputs.summary}
    if ctx.dry_run:
        return TriggerOutputs(dedup_key=key, dry_run=True)
    source = inputs.source or ctx.incident.service

    async def attempt() -> TriggerOutputs:
        creds = await _creds(ctx)
        client = creds.events_client(await _routing_key(ctx, inputs.routing_key_block))
        got = await _call(client.trigger, summary, source, dedup_key=key,
                          severity=inputs.severity, custom_details=details or None,
                          links=inputs.links or None)
        return TriggerOutputs(dedup_key=str(got), routing_key_block=inputs.routing_key_block)

    return await retrying(attempt, ctx)


class FindInputs(_In):
    """`pagerduty.find_incident` inputs."""

    dedup_key: str = Field(min_length=1, description="The page's dedup key")
    wait_seconds: float = Field(default=10.0, ge=0, le=120, description=(
        "How long to wait for PagerDuty to open the incident (it does so a moment after the "
        "event is accepted)"))


class FindOutputs(BaseModel):
    """The PagerDuty incident a page opened (empty when it cannot be found)."""

    incident_id: str = ""
    url: str = Field(default="", description="The incident's html_url (its `page` link)")
    status: str = ""


@action("pagerduty.find_incident", read_only=True, link="page")
async def find_incident(inputs: FindInputs, ctx: ActionContext) -> FindOutputs:
    """Find the PagerDuty incident a page opened, for its web address: the incident's `page`
    link and a war-room bookmark. Kept out of `pagerduty.trigger` so the page itself never
    waits on the REST API; without an API token, or when PagerDuty has not opened the incident
    within `wait_seconds`, the link is left out and the timeline says why.
    Example: `{uses: pagerduty.find_incident, needs: [page], with: {dedup_key:
    "{{ steps.page.outputs.dedup_key }}"}}`
    """
    creds = await _creds(ctx)
    if creds.api_token is None:
        ctx.emit("page.link_unknown", "no PagerDuty REST API token: the page's link is left "
                 "out", {"dedup_key": inputs.dedup_key})
        return FindOutputs()
    deadline = time.monotonic() + inputs.wait_seconds
    while True:
        rows = await retrying(lambda: _call(creds.rest_client().rget, "incidents",
                                            params={"incident_key": inputs.dedup_key}), ctx)
        found = [r for r in rows if r.get("incident_key") == inputs.dedup_key]
        if found:
            return FindOutputs(incident_id=str(found[0]["id"]),
                               url=str(found[0].get("html_url") or ""),
                               status=str(found[0].get("status") or ""))
        if time.monotonic() >= deadline:
            ctx.emit("page.link_unknown", f"PagerDuty opened no incident for the page within "
                     f"{inputs.wait_seconds:g} s; its link is left out",
                     {"dedup_key": inputs.dedup_key})
            return FindOutputs()
        await asyncio.sleep(0.5)


class KeyInputs(_In):
    """A page, by dedup key."""

    dedup_key: str = Field(min_length=1, description="From pagerduty.trigger's outputs")
    routing_key_block: str | None = Field(
        default=None, json_schema_extra={"catalog": "pagerduty.routing_key_block"},
        description="Secret block holding the service's routing key")


class KeyOutputs(BaseModel):
    """The page acted on."""

    dedup_key: str
    event_action: str


async def _event(inputs: KeyInputs, ctx: ActionContext, verb: str) -> KeyOutputs:
    async def attempt() -> KeyOutputs:
        creds = await _creds(ctx)
        client = creds.events_client(await _routing_key(ctx, inputs.routing_key_block))
        key = fit_key(inputs.dedup_key, DEDUP_KEY.maximum)
        await _call(getattr(client, verb), key)
        return KeyOutputs(dedup_key=key, event_action=verb)

    return await retrying(attempt, ctx)


@action("pagerduty.acknowledge")
async def acknowledge(inputs: KeyInputs, ctx: ActionContext) -> KeyOutputs:
    """Acknowledge a page (stops escalation); repeating it is harmless."""
    return await _event(inputs, ctx, "acknowledge")


@action("pagerduty.resolve")
async def resolve(inputs: KeyInputs, ctx: ActionContext) -> KeyOutputs:
    """Resolve a page; repeating it is harmless."""
    return await _event(inputs, ctx, "resolve")


async def _incident_id(client: Any, dedup_key: str) -> str:
    dedup_key = fit_key(dedup_key, DEDUP_KEY.maximum)
    rows = await _call(client.rget, "incidents", params={"incident_key": dedup_key})
    found = [r for r in rows if r.get("incident_key") == dedup_key]
    if not found:
        raise IntegrationError("pagerduty", f"no incident with dedup key {dedup_key!r} yet")
    return str(found[0]["id"])


class NoteInputs(_In):
    """`pagerduty.add_note` inputs."""

    dedup_key: str = Field(min_length=1, description="The page's dedup key")
    content: str = Field(min_length=1, max_length=25000, description="The note")


class NoteOutputs(BaseModel):
    """The note that exists."""

    incident_id: str
    note_id: str
    created: bool


@action("pagerduty.add_note")
async def add_note(inputs: NoteInputs, ctx: ActionContext) -> NoteOutputs:
    """Add a note to the PagerDuty incident once (a marker of the step's key finds it again)."""
    marker = f"[firelane:{ctx.idempotency_key}]"

    async def attempt() -> NoteOutputs:
        client = (await _creds(ctx)).rest_client()
        incident = await _incident_id(client, inputs.dedup_key)
        for note in await _call(client.rget, f"incidents/{incident}/notes"):
            if marker in note.get("content", ""):
                return NoteOutputs(incident_id=incident, note_id=note["id"], created=False)
        note = await _call(client.rpost, f"incidents/{incident}/notes",
                           json={"content": f"{inputs.content}\n{marker}"})
        return NoteOutputs(incident_id=incident, note_id=note["id"], created=True)

    return await retrying(attempt, ctx)


class OncallInputs(_In):
    """`pagerduty.get_oncall` inputs."""

    escalation_policy_id: str | None = Field(default=None, description="Default: every policy")
    level: int = Field(default=1, ge=1, description="Escalation level")


class OncallOutputs(BaseModel):
    """Who is on call."""

    users: list[dict[str, str]]
    emails: list[str]


@action("pagerduty.get_oncall", read_only=True)
async def get_oncall(inputs: OncallInputs, ctx: ActionContext) -> OncallOutputs:
    """Who is on call now at `level` (feed `emails` to slack.invite)."""

    async def attempt() -> OncallOutputs:
        client = (await _creds(ctx)).rest_client()
        params: dict[str, Any] = {"earliest": True}
        if inputs.escalation_policy_id:
            params["escalation_policy_ids"] = [inputs.escalation_policy_id]
        rows = await _call(lambda: list(client.iter_all("oncalls", params=params)))
        users = [{"id": r["user"]["id"], "name": r["user"].get("summary", ""),
                  "email": r["user"].get("email", "")}
                 for r in rows if r.get("escalation_level") == inputs.level]
        return OncallOutputs(users=users, emails=[u["email"] for u in users if u["email"]])

    return await retrying(attempt, ctx)


class LogInputs(_In):
    """`pagerduty.log_entries` inputs."""

    dedup_key: str = Field(min_length=1, description="The page's dedup key")


class LogOutputs(BaseModel):
    """The incident's log: triggered, notified, acknowledged, escalated, resolved."""

    incident_id: str
    entries: list[dict[str, Any]]


@action("pagerduty.log_entries", read_only=True)
async def log_entries(inputs: LogInputs, ctx: ActionContext) -> LogOutputs:
    """Read every log entry of the page's incident (all pages of them)."""

    async def attempt() -> LogOutputs:
        client = (await _creds(ctx)).rest_client()
        incident = await _incident_id(client, inputs.dedup_key)
        rows = await _call(lambda: list(client.iter_all(f"incidents/{incident}/log_entries")))
        return LogOutputs(incident_id=incident, entries=[
            {"type": r["type"], "summary": r.get("summary", ""), "at": r.get("created_at"),
             "agent": (r.get("agent") or {}).get("summary") or (r.get("user") or {}).get(
                 "summary")} for r in rows])

    return await retrying(attempt, ctx)

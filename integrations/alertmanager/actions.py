"""`alertmanager.silence` and `alertmanager.expire_silence`. Both are destructive (approvals,
guardrails and dry runs apply). Exactly once: a silence's comment carries the step's
idempotency key, and the step looks for an active silence with it before creating one, so a
retry after a lost answer or a resumed step finds its own silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError, ConfigError, VendorRejected, VendorUnavailable
from firelane.models import Incident
from firelane.registry import ActionContext, action
from integrations.alertmanager.client import VENDOR, AlertmanagerClient, Silence
from integrations.common import cached_block, retrying

__all__ = ["ExpireInputs", "ExpireOutputs", "Matcher", "SilenceInputs", "SilenceOutputs",
           "key_marker"]


DRY_RUN_ID = "dry-run-silence_id"
"""The silence id a dry run reports: the engine's placeholder form (`dry-run-<field>`), so
the steps that read it render and are dry-run too."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Refused(ActionError):
    retryable = False


class Matcher(_In):
    """One label matcher of a silence (`name="value"`, `=~` with is_regex, `!=` / `!~`
    with is_equal false)."""

    name: str = Field(description="Label name")
    value: str = Field(description="Value, or a regular expression with is_regex")
    is_regex: bool = False
    is_equal: bool = True

    def api(self) -> dict[str, Any]:
        """As Alertmanager's API v2 writes it."""
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex,
                "isEqual": self.is_equal}

    def show(self) -> str:
        """`alertname="HighErrorRate"`, `instance=~"web-.*"`."""
        op = ("=~" if self.is_regex else "=") if self.is_equal else (
            "!~" if self.is_regex else "!=")
        return f'{self.name}{op}"{self.value}"'


class SilenceInputs(_In):
    """`alertmanager.silence` inputs."""

    matchers: list[Matcher] | None = Field(default=None, min_length=1, description=(
        "What to silence; default: equality matchers on the incident's alert labels named "
        "in `labels`"))
    labels: list[str] = Field(default_factory=lambda: ["alertname", "service"], min_length=1,
                              description="The incident's labels the default matchers use")
    duration_seconds: float = Field(default=3600, gt=0, le=7 * 86400, description=(
        "How long the silence lasts from now"))
    comment: str | None = Field(default=None, max_length=500, description=(
        "Why (the incident's number and title are always in the comment)"))
    created_by: str = Field(default="firelane", min_length=1, description="Shown as author")


class SilenceOutputs(BaseModel):
    """The silence."""

    silence_id: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    matchers: list[Matcher]
    created: bool = Field(description="False when the step found its own silence")
    url: str = Field(default="", description="The silence in Alertmanager's web UI")
    dry_run: bool = False


class ExpireInputs(_In):
    """`alertmanager.expire_silence` inputs."""

    silence_id: str = Field(min_length=1, description=(
        "The silence, e.g. `{{ steps.quiet.outputs.silence_id }}`"))


class ExpireOutputs(BaseModel):
    """The expired silence."""

    silence_id: str
    state: str = Field(description="expired (the silence's state after the step)")
    already_expired: bool = Field(description="It had expired (or been expired) before")
    dry_run: bool = False


async def _client(ctx: ActionContext) -> AlertmanagerClient:
    """The client of the `AlertmanagerConnection` block the runbook names under
    `credentials: {alertmanager: NAME}` (default `default`). Sandbox runs use it too: the
    sandbox has no Alertmanager."""
    from integrations.alertmanager.block import AlertmanagerConnection

    name = ctx.credentials.get("alertmanager", "default")
    try:
        block: Any = await cached_block(AlertmanagerConnection, name)
    except ValueError as exc:
        raise ConfigError(f"no AlertmanagerConnection block named {name!r}: create it in the "
                          f"Prefect UI or with `AlertmanagerConnection(url=...).save({name!r})`"
                          ) from exc
    client: AlertmanagerClient = block.get_client()
    return client


def key_marker(idempotency_key: str) -> str:
    """The tag a silence's comment carries so its step can find it again."""
    return f"[firelane:{idempotency_key}]"


def default_matchers(inputs: SilenceInputs, incident: Incident) -> list[Matcher]:
    """`inputs.matchers`, else equality matchers on the incident's labels named in
    `inputs.labels` (`service` falls back to the incident's service). Every named label must
    be found: a silence broader than asked for would hide other incidents."""
    if inputs.matchers:
        return inputs.matchers
    found: list[Matcher] = []
    for name in inputs.labels:
        value = incident.labels.get(name)
        if value is None and name == "service" and incident.service != "unknown":
            value = incident.service
        if not value:
            have = ", ".join(sorted(incident.labels)) or "none"
            raise _Refused(f"INC-{incident.number} has no {name!r} label (its labels: {have}; "
                           "an incident declared by hand has none): give `matchers`, or "
                           "name other `labels`")
        found.append(Matcher(name=name, value=value))
    return found


def preview_silence(inputs: SilenceInputs) -> dict[str, str]:
    """What the silence will match and for how long, for its approval request."""
    what = (", ".join(m.show() for m in inputs.matchers) if inputs.matchers else
            "the incident's " + " and ".join(inputs.labels) + " labels")
    return {"silence": f"{what} for {timedelta(seconds=round(inputs.duration_seconds))}"}


def preview_expire(inputs: ExpireInputs) -> dict[str, str]:
    """The silence an expiry will lift."""
    return {"expire": f"silence {inputs.silence_id}"}


def _comment(inputs: SilenceInputs, ctx: ActionContext) -> str:
    why = f": {inputs.comment}" if inputs.comment else ""
    return (f"Firelane INC-{ctx.incident.number} ({ctx.incident.title}){why} "
            f"{key_marker(ctx.idempotency_key)}")


def _outputs(silence: Silence, matchers: list[Matcher], created: bool,
             client: AlertmanagerClient) -> SilenceOutputs:
    return SilenceOutputs(silence_id=silence.id, starts_at=silence.starts_at,
                          ends_at=silence.ends_at, matchers=matchers, created=created,
                          url=client.silence_url(silence.id))


@action("alertmanager.silence", destructive=True, preview=preview_silence)
async def silence(inputs: SilenceInputs, ctx: ActionContext) -> SilenceOutputs:
    """Silence the incident's alerts in Alertmanager for `duration_seconds` (default 1 h):
    matchers default to the incident's `alertname` and `service` labels; the comment names
    the incident. Exactly once: an active silence whose comment carries this step's key is
    reused, never duplicated. A bad matcher fails with Alertmanager's reason.

    Example: `{id: quiet, uses: alertmanager.silence, with: {duration_seconds: 1800,
    comment: "rolling back"}}`
    """
    matchers = default_matchers(inputs, ctx.incident)
    shown = ", ".join(m.show() for m in matchers)
    if ctx.dry_run:
        ends = datetime.now(UTC) + timedelta(seconds=inputs.duration_seconds)
        ctx.emit("alertmanager.dry_run", f"would silence {shown} until {ends:%H:%M:%S} UTC",
                 {"matchers": [m.api() for m in matchers], "comment": _comment(inputs, ctx)})
        return SilenceOutputs(silence_id=DRY_RUN_ID, ends_at=ends, matchers=matchers,
                              created=False, dry_run=True)
    client = await _client(ctx)
    marker = key_marker(ctx.idempotency_key)

    async def attempt() -> SilenceOutputs:
        mine = [s for s in await client.list_silences()
                if marker in s.comment and s.state in ("active", "pending")]
        if mine:
            ctx.emit("alertmanager.silence_found", f"silence {mine[0].id} ({shown}) already "
                     "made by this step; not creating another", {"silence_id": mine[0].id})
            return _outputs(mine[0], matchers, False, client)
        now = datetime.now(UTC)
        made_id = await client.create_silence(
            [m.api() for m in matchers], now,
            now + timedelta(seconds=inputs.duration_seconds), inputs.created_by,
            _comment(inputs, ctx))
        made = await client.get_silence(made_id)
        if made is None:
            raise VendorUnavailable(VENDOR, f"silence {made_id} was created but cannot be "
                                    "read back yet")
        ctx.emit("alertmanager.silenced", f"silenced {shown} until {made.ends_at:%H:%M:%S} "
                 f"UTC (silence {made_id})", {"silence_id": made_id,
                                               "matchers": [m.api() for m in matchers],
                                               "ends_at": made.ends_at.isoformat()})
        return _outputs(made, matchers, True, client)

    return await retrying(attempt, ctx)


@action("alertmanager.expire_silence", destructive=True, preview=preview_expire)
async def expire_silence(inputs: ExpireInputs, ctx: ActionContext) -> ExpireOutputs:
    """Expire a silence now, so its alerts notify again. A silence that has already expired
    (or was expired by hand) is success; an unknown id fails.

    Example: `{uses: alertmanager.expire_silence, with: {silence_id:
    "{{ steps.quiet.outputs.silence_id }}"}}`
    """
    if ctx.dry_run:
        ctx.emit("alertmanager.dry_run", f"would expire silence {inputs.silence_id}",
                 {"silence_id": inputs.silence_id})
        return ExpireOutputs(silence_id=inputs.silence_id, state="active",
                             already_expired=False, dry_run=True)
    client = await _client(ctx)

    async def attempt() -> ExpireOutputs:
        before = await client.get_silence(inputs.silence_id)
        if before is None:
            raise VendorRejected(VENDOR, f"no silence {inputs.silence_id}", 404)
        if before.state == "expired":
            ctx.emit("alertmanager.silence_expired", f"silence {inputs.silence_id} had "
                     "already expired", {"silence_id": inputs.silence_id, "already": True})
            return ExpireOutputs(silence_id=before.id, state="expired", already_expired=True)
        await client.expire_silence(inputs.silence_id)
        ctx.emit("alertmanager.silence_expired", f"expired silence {inputs.silence_id}",
                 {"silence_id": inputs.silence_id, "already": False})
        return ExpireOutputs(silence_id=before.id, state="expired", already_expired=False)

    return await retrying(attempt, ctx)

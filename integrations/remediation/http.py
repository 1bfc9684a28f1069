"""`http.request` (one call, expected status) and `http.check` (probe until an expectation
holds or the time is up, every probe on the timeline)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError, ConfigError, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import cached_block, default_tls

__all__ = ["CheckInputs", "CheckOutputs", "RequestInputs", "RequestOutputs"]

BODY_KEEP = 2048


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestInputs(_In):
    """`http.request` inputs."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    url: str = Field(pattern=r"^https?://", description="Where")
    headers: dict[str, str] = Field(default_factory=dict, description="Plain headers")
    headers_block: str | None = Field(default=None, description="HttpHeaders block (secrets)")
    json_body: Any = Field(default=None, alias="json", description="JSON body")
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout_seconds: float = Field(default=10, gt=0, le=300)


class RequestOutputs(BaseModel):
    """The response."""

    status: int | None
    body: str
    seconds: float
    dry_run: bool = False


async def _headers(plain: dict[str, str], block: str | None) -> dict[str, str]:
    if block is None:
        return dict(plain)
    from integrations.remediation.blocks import HttpHeaders

    try:
        found: Any = await cached_block(HttpHeaders, block)
    except ValueError as exc:
        raise ConfigError(f"no HttpHeaders block named {block!r}") from exc
    return {**plain, **{k: v.get_secret_value() for k, v in found.headers.items()}}


def _failure(exc: httpx.HTTPError) -> str:
    """The exception's kind and, when it has one, its first 160 characters of message (a
    certificate the probe does not trust reads differently from a refused connection)."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message[:160]}" if message else type(exc).__name__


@action("http.request", destructive=True)
async def request(inputs: RequestInputs, ctx: ActionContext) -> RequestOutputs:
    """Make one HTTP call (a webhook, a feature-flag flip) and check its status.

    Example: `{uses: http.request, with: {url: "https://flags/api/off", json: {flag: x}}}`
    """
    if ctx.dry_run:
        ctx.emit("http.dry_run", f"would {inputs.method} {inputs.url}", {"url": inputs.url})
        return RequestOutputs(status=None, body="", seconds=0, dry_run=True)
    headers = await _headers(inputs.headers, inputs.headers_block)
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=inputs.timeout_seconds,
                                     verify=default_tls()) as client:
            response = await client.request(inputs.method, inputs.url, headers=headers,
                                            json=inputs.json_body)
    except httpx.HTTPError as exc:
        raise VendorUnavailable("http", f"{inputs.method} {inputs.url}: "
                                f"{type(exc).__name__}: {exc}") from exc
    seconds = round(time.monotonic() - started, 3)
    if response.status_code not in inputs.expect_status:
        error = ActionError(f"{inputs.method} {inputs.url} answered {response.status_code}, "
                            f"expected {inputs.expect_status}: {response.text[:300]}")
        error.retryable = response.status_code >= 500 or response.status_code == 429
        raise error
    return RequestOutputs(status=response.status_code, body=response.text[:BODY_KEEP],
                          seconds=seconds)


class CheckInputs(_In):
    """`http.check` inputs."""

    url: str = Field(pattern=r"^https?://", description="What to probe",
                     json_schema_extra={"catalog": "health_url"})
    expect_status: list[int] = Field(default_factory=lambda: [200])
    body_contains: str | None = Field(default=None, description="Text the body must contain")
    max_latency_ms: float | None = Field(default=None, gt=0)
    within_seconds: float = Field(default=60, gt=0, le=3600,
                                  description="Keep probing this long")
    interval_seconds: float = Field(default=2, gt=0, le=300)
    healthy_probes: int = Field(default=1, ge=1, le=100,
                                description="Consecutive passing probes needed")
    headers_block: str | None = None
    probe_timeout_seconds: float = Field(default=5, gt=0, le=60)


class CheckOutputs(BaseModel):
    """The probes and the verdict."""

    healthy: bool
    probes: int
    last_status: int | None
    last_latency_ms: float | None


def _verdict(inputs: CheckInputs, status: int | None, body: str, ms: float) -> str | None:
    """Why a probe failed, or None when it passed."""
    if status is None:
        return "no answer"
    if status not in inputs.expect_status:
        return f"status {status}"
    if inputs.body_contains is not None and inputs.body_contains not in body:
        return f"body lacks {inputs.body_contains!r}"
    if inputs.max_latency_ms is not None and ms > inputs.max_latency_ms:
        return f"{ms:.0f} ms > {inputs.max_latency_ms:g} ms"
    return None


@action("http.check", read_only=True, waits=True)
async def check(inputs: CheckInputs, ctx: ActionContext) -> CheckOutputs:
    """Probe a URL until it is healthy (status, body, latency) or `within_seconds` pass;
    every probe goes on the timeline. Fails when the service never became healthy.

    Example: `{uses: http.check, with: {url: "http://web/healthz", within_seconds: 60}}`
    """
    headers = await _headers({}, inputs.headers_block)
    deadline = time.monotonic() + inputs.within_seconds
    probes = streak = 0
    status: int | None = None
    ms: float | None = None
    async with httpx.AsyncClient(timeout=inputs.probe_timeout_seconds,
                                 verify=default_tls()) as client:
        while True:
            probes += 1
            started = time.monotonic()
            body, status = "", None
            why: str | None = "no answer"
            try:
                response = await client.get(inputs.url, headers=headers)
                status, body = response.status_code, response.text
            except httpx.HTTPError as exc:
                why = _failure(exc)
            ms = round((time.monotonic() - started) * 1000, 1)
            why = _verdict(inputs, status, body, ms) if status is not None else why
            streak = streak + 1 if why is None else 0
            ctx.emit("http.probe", f"probe {probes} of {inputs.url}: "
                     + ("healthy" if why is None else why),
                     {"status": status, "latency_ms": ms, "healthy": why is None})
            if streak >= inputs.healthy_probes:
                return CheckOutputs(healthy=True, probes=probes, last_status=status,
                                    last_latency_ms=ms)
            if time.monotonic() + inputs.interval_seconds > deadline:
                break
            await asyncio.sleep(inputs.interval_seconds)
    error = ActionError(f"{inputs.url} not healthy within {inputs.within_seconds:g} s after "
                        f"{probes} probes (last: {why})")
    error.retryable = False
    raise error

"""`prometheus.query` (one instant query, typed result) and `prometheus.check` (a PromQL
condition that must hold continuously for `for_seconds` within `within_seconds`, every
evaluation on the timeline). Both are read-only: they run in dry runs and no guardrail holds
them."""

from __future__ import annotations

import asyncio
import math
import operator
import time
from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firelane.errors import (
    ActionError,
    ConfigError,
    IntegrationError,
    RateLimited,
    VendorUnavailable,
)
from firelane.registry import ActionContext, action
from integrations.common import cached_block, retrying
from integrations.prometheus.client import (
    PrometheusClient,
    QueryResult,
    ResultType,
    Sample,
    format_value,
)

__all__ = ["CheckInputs", "CheckOutputs", "QueryInputs", "QueryOutputs", "Series"]

SHOWN_SERIES = 20
Op = Literal["<", "<=", ">", ">=", "==", "!="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Series(BaseModel):
    """One value of a result: a vector's series with its labels, or the scalar (no labels).
    `value` is null when Prometheus answered NaN or ±Inf (`text` keeps what it said)."""

    labels: dict[str, str] = Field(default_factory=dict)
    value: float | None
    text: str = Field(description="The value as Prometheus wrote it (NaN, +Inf, 0.031)")
    timestamp: float


def _series(sample: Sample) -> Series:
    finite = sample.value if math.isfinite(sample.value) else None
    return Series(labels=sample.labels, value=finite, text=format_value(sample.value),
                  timestamp=sample.timestamp)


async def _client(ctx: ActionContext) -> PrometheusClient:
    """The client of the `PrometheusConnection` block the runbook names under
    `credentials: {prometheus: NAME}` (default `default`). Sandbox runs use it too: the
    sandbox has no Prometheus, and these actions only read."""
    from integrations.prometheus.block import PrometheusConnection

    name = ctx.credentials.get("prometheus", "default")
    try:
        block: Any = await cached_block(PrometheusConnection, name)
    except ValueError as exc:
        raise ConfigError(f"no PrometheusConnection block named {name!r}: create it in the "
                          f"Prefect UI or with `PrometheusConnection(url=...).save({name!r})`"
                          ) from exc
    client: PrometheusClient = block.get_client()
    return client


class QueryInputs(_In):
    """`prometheus.query` inputs."""

    query: str = Field(min_length=1, description="PromQL, evaluated now (an instant query)")
    timeout_seconds: float | None = Field(default=None, gt=0, le=300, description=(
        "Bound on the call (default, and at most, the block's timeout_seconds)"))


class QueryOutputs(BaseModel):
    """The typed result."""

    result_type: ResultType = Field(description="scalar, vector or string")
    series: list[Series] = Field(default_factory=list, description=(
        "A vector's series (labels and value); the scalar as one unlabelled entry"))
    value: float | None = Field(default=None, description=(
        "The scalar, or the value of a vector with exactly one series; else null"))
    text: str | None = Field(default=None, description="A string result")


@action("prometheus.query", read_only=True)
async def query(inputs: QueryInputs, ctx: ActionContext) -> QueryOutputs:
    """Run one PromQL instant query and return its typed result: `scalar` or `vector` (each
    series with its labels and value). Unavailability is retried; a PromQL error fails at
    once with Prometheus' message.

    Example:
    `{uses: prometheus.query, with: {query: 'sum by (code) (rate(http_requests_total[5m]))'}}`
    """
    client = await _client(ctx)
    result: QueryResult = await retrying(lambda: client.query(inputs.query,
                                                              inputs.timeout_seconds), ctx)
    series = [_series(s) for s in result.samples]
    value = series[0].value if len(series) == 1 else None
    ctx.emit("prometheus.query", f"{inputs.query}: {_show(result.samples)}",
             {"query": inputs.query, "result_type": result.result_type,
              "values": _details(result.samples)})
    return QueryOutputs(result_type=result.result_type,
                        series=series, value=value, text=result.text)


class CheckInputs(_In):
    """`prometheus.check` inputs."""

    query: str = Field(min_length=1, description="PromQL giving a scalar or a vector")
    op: Op = Field(description="Comparison applied to every series: value OP threshold")
    threshold: float = Field(description="The number each value is compared with")
    for_seconds: float = Field(default=60, ge=0, le=3600, description=(
        "How long the condition must hold without a break"))
    within_seconds: float = Field(default=300, gt=0, le=7200, description=(
        "Deadline: fail when the condition has not held for for_seconds by then"))
    interval_seconds: float = Field(default=5, gt=0, le=300,
                                    description="Time between evaluations")
    empty_holds: bool = Field(default=False, description=(
        "Whether a result with no series counts as holding; by default it does not (no "
        "data is not evidence of health)"))

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.for_seconds > self.within_seconds:
            raise ValueError(f"for_seconds ({self.for_seconds:g}) cannot exceed "
                             f"within_seconds ({self.within_seconds:g})")
        return self


class CheckOutputs(BaseModel):
    """The verdict (only returned when the condition held) and the last values."""

    held: bool = Field(description="Always true: a check that did not hold fails")
    held_seconds: float = Field(description="How long the condition had held at the end")
    evaluations: int = Field(description="Queries made, the failed ones included")
    result_type: ResultType = Field(description="The type of the last result")
    series: list[Series] = Field(default_factory=list, description="The last values")


def _holds(inputs: CheckInputs, result: QueryResult) -> bool:
    if result.result_type == "string":
        raise ActionError(f"{inputs.query} returns a string; prometheus.check compares numbers")
    if not result.samples:
        return inputs.empty_holds
    compare = _OPS[inputs.op]
    return all(compare(s.value, inputs.threshold) for s in result.samples)


def _show(samples: list[Sample]) -> str:
    if not samples:
        return "no series"
    shown = "; ".join(s.show() for s in samples[:5])
    return shown + (f"; and {len(samples) - 5} more" if len(samples) > 5 else "")


def _details(samples: list[Sample]) -> list[dict[str, Any]]:
    return [{"labels": s.labels, "value": format_value(s.value)}
            for s in samples[:SHOWN_SERIES]]


@action("prometheus.check", read_only=True, waits=True)
async def check(inputs: CheckInputs, ctx: ActionContext) -> CheckOutputs:
    """Evaluate a PromQL condition every `interval_seconds` until it has held for
    `for_seconds` without a break (every series of the result: `value op threshold`), or
    fail when `within_seconds` pass, naming the last values. Each evaluation goes on the
    timeline. An unreachable or slow Prometheus counts as "not held" (every call is bounded
    by the time left); a PromQL error fails at once.

    Example (5xx ratio below 1% for 60 s):
    `{uses: prometheus.check, with: {query: 'sum(rate(http_requests_total{code=~"5.."}[1m]))
    / sum(rate(http_requests_total[1m]))', op: "<", threshold: 0.01, for_seconds: 60,
    within_seconds: 300}}`
    """
    client = await _client(ctx)
    condition = f"{inputs.query} {inputs.op} {inputs.threshold:g}"
    deadline = time.monotonic() + inputs.within_seconds
    evaluations = 0
    held_since: float | None = None
    last: QueryResult | None = None
    last_error: IntegrationError | None = None
    while (left := deadline - time.monotonic()) > 0:
        evaluations += 1
        started = time.monotonic()
        try:
            last, last_error = await client.query(inputs.query, left), None
            holds = _holds(inputs, last)
        except (VendorUnavailable, RateLimited) as exc:
            last_error, holds = exc, False
        held_since = (started if held_since is None else held_since) if holds else None
        held = 0.0 if held_since is None else time.monotonic() - held_since
        _emit_evaluation(ctx, evaluations, inputs, last if last_error is None else None,
                         last_error, holds, held)
        if held_since is not None and held >= inputs.for_seconds:
            assert last is not None
            return CheckOutputs(held=True, held_seconds=round(held, 3),
                                evaluations=evaluations,
                                result_type=last.result_type,
                                series=[_series(s) for s in last.samples])
        pause = min(started + inputs.interval_seconds, deadline) - time.monotonic()
        if held_since is not None:
            pause = min(pause, held_since + inputs.for_seconds - time.monotonic())
        await asyncio.sleep(max(pause, 0))
    raise _never_held(condition, inputs, evaluations, last, last_error)


def _emit_evaluation(ctx: ActionContext, n: int, inputs: CheckInputs, result: QueryResult | None,
                     error: IntegrationError | None, holds: bool, held: float) -> None:
    shown = f"error: {error}" if error is not None else _show(result.samples if result else [])
    verdict = f"holds ({held:.1f} s of {inputs.for_seconds:g} s)" if holds else "does not hold"
    ctx.emit("prometheus.evaluation",
             f"evaluation {n}: {inputs.op} {inputs.threshold:g} {verdict}: {shown}",
             {"query": inputs.query, "op": inputs.op, "threshold": inputs.threshold,
              "holds": holds, "held_seconds": round(held, 3),
              "values": _details(result.samples) if result is not None else [],
              "error": str(error) if error is not None else None})


def _never_held(condition: str, inputs: CheckInputs, evaluations: int,
                last: QueryResult | None, last_error: IntegrationError | None) -> ActionError:
    what = (f"{condition} did not hold for {inputs.for_seconds:g} s within "
            f"{inputs.within_seconds:g} s ({evaluations} evaluations)")
    if last_error is not None:
        before = f"; last values read: {_show(last.samples)}" if last is not None else ""
        return VendorUnavailable(last_error.vendor, f"{what}; last evaluation failed: "
                                 f"{last_error}{before}")
    error = ActionError(f"{what}; last values: {_show(last.samples if last else [])}")
    error.retryable = False
    return error

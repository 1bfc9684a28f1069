"""`PrometheusClient`: instant and range queries against Prometheus' HTTP API v1, every call
bounded by a timeout, every failure one of Firelane's errors.

Prometheus answers `{"status": "error", "errorType": ..., "error": ...}` with 400 for a bad
query (`bad_data`), 422 when it cannot execute it and 503 when the query timed out or was
cancelled (https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview); the
error text is Prometheus' own and is kept in the message.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

from firelane.errors import IntegrationError, VendorRejected, VendorUnavailable
from integrations.common import vendor_error

__all__ = ["PrometheusClient", "QueryResult", "RangeSeries", "ResultType", "Sample",
           "format_value"]

VENDOR = "prometheus"
ResultType = Literal["scalar", "vector", "string"]
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """One value of a query's result: a vector's series (with its labels) or the scalar."""

    labels: dict[str, str]
    value: float
    timestamp: float

    def show(self) -> str:
        """`{service="web"} 0.031`, or the bare value of a scalar."""
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        number = format_value(self.value)
        return f"{{{inner}}} {number}" if self.labels else number


@dataclass(frozen=True)
class QueryResult:
    """An instant query's typed result: `scalar` (one unlabelled sample), `vector` (one
    sample per series) or `string` (`text`)."""

    result_type: ResultType
    samples: list[Sample]
    text: str | None = None


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query's result: its labels and its (timestamp, value) points,
    oldest first (Prometheus leaves out the steps where the series had no sample)."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def format_value(value: float) -> str:
    """A value as Prometheus writes it (`NaN`, `+Inf`, `0.031`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:g}"


class PrometheusClient:
    """Instant queries against one Prometheus server. Each call opens its own connection
    (actions run in whichever event loop the engine gives them) and is bounded by a timeout."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None,
                 verify: ssl.SSLContext | bool = True, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = dict(headers or {})
        self._auth = auth
        self._verify = verify
        self.timeout_seconds = timeout_seconds

    async def query(self, promql: str, timeout_seconds: float | None = None) -> QueryResult:
        """Evaluate `promql` now. `timeout_seconds` (default the client's) bounds the whole
        call and is sent to Prometheus too, so the server stops evaluating when we stop
        waiting. Raises `VendorUnavailable` (refused, reset, timed out, 5xx), `RateLimited`
        or `VendorRejected` (a PromQL error, 4xx) with Prometheus' own message."""
        endpoint, response = await self._post("query", {"query": promql}, timeout_seconds)
        return _result(endpoint, response, _parse)

    async def query_range(self, promql: str, start: float, end: float, step: float,
                          timeout_seconds: float | None = None) -> list[RangeSeries]:
        """Evaluate `promql` at `start`, `start + step`, ... up to `end` (epoch seconds):
        one `RangeSeries` per series. Bounded and failing like `query`."""
        endpoint, response = await self._post("query_range", {
            "query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{step:.3f}"}, timeout_seconds)
        return _result(endpoint, response, _parse_matrix)

    async def _post(self, path: str, form: dict[str, str], timeout_seconds: float | None,
                    ) -> tuple[str, httpx.Response]:
        timeout = min(timeout_seconds or self.timeout_seconds, self.timeout_seconds)
        endpoint = f"{self.url}/api/v1/{path}"
        try:
            async with httpx.AsyncClient(timeout=timeout, verify=self._verify,
                                         headers=self._headers, auth=self._auth) as client:
                response = await client.post(endpoint, data={
                    **form, "timeout": f"{max(int(timeout * 1000), 1)}ms"})
        except httpx.TimeoutException as exc:
            raise VendorUnavailable(VENDOR, f"no answer from {endpoint} within {timeout:g} s "
                                    f"({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise VendorUnavailable(VENDOR, f"cannot reach {endpoint}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        return endpoint, response


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        kind = body.get("errorType")
        return f"{kind}: {body['error']}" if kind else str(body["error"])
    return response.text.strip()[:300]


def _result(endpoint: str, response: httpx.Response, parse: Callable[[dict[str, Any]], T],
            ) -> T:
    if response.status_code != 200:
        text = _error_text(response)
        if response.status_code in (401, 403):
            text += "; check the PrometheusConnection block's bearer token or basic auth"
        error: IntegrationError = vendor_error(
            VENDOR, response.status_code, text, response.headers.get("Retry-After"))
        raise error
    try:
        body: Any = response.json()
        if body.get("status") != "success":
            raise VendorRejected(VENDOR, _error_text(response), response.status_code)
        return parse(body["data"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VendorUnavailable(VENDOR, f"{endpoint} did not answer like Prometheus' API: "
                                f"{response.text[:200]!r}") from exc


def _sample(labels: dict[str, str], pair: list[Any]) -> Sample:
    return Sample(labels={str(k): str(v) for k, v in labels.items()},
                  value=float(pair[1]), timestamp=float(pair[0]))


def _parse(data: dict[str, Any]) -> QueryResult:
    kind = data["resultType"]
    result = data["result"]
    if kind == "scalar":
        return QueryResult("scalar", [_sample({}, result)])
    if kind == "vector":
        return QueryResult("vector", [_sample(s.get("metric", {}), s["value"]) for s in result])
    if kind == "string":
        return QueryResult("string", [], text=str(result[1]))
    raise VendorRejected(VENDOR, f"the query returned a {kind} (a range vector): an instant "
                         "query's result must be a scalar or a vector; wrap the selector in "
                         "a function such as rate() or last_over_time()")


def _parse_matrix(data: dict[str, Any]) -> list[RangeSeries]:
    if data["resultType"] != "matrix":
        raise VendorRejected(VENDOR, f"a range query returned a {data['resultType']}")
    return [RangeSeries(labels={str(k): str(v) for k, v in s.get("metric", {}).items()},
                        points=[(float(t), float(v)) for t, v in s["values"]])
            for s in data["result"]]

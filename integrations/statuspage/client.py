"""`StatuspageClient`: the calls Firelane makes to Statuspage's Manage API v1, paced to the
documented rate (1 request/s per API token) and every failure one of Firelane's errors.

The pacing is process-wide and per token (`pace`), so concurrent actions of one worker share
the token's budget; another process using the same token can still exhaust it, which is why a
420/429 is still mapped to `RateLimited` and left to the one retry layer (`retrying`). The
client knows nothing of Prefect: the block builds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Self

import httpx

from firelane.errors import IntegrationError, RateLimited, VendorRejected, VendorUnavailable
from integrations.statuspage.limits import RATE_LIMIT_STATUSES, REQUEST_INTERVAL_SECONDS

__all__ = ["StatuspageClient", "StatuspageRateLimited", "pace", "vendor_message"]

VENDOR = "statuspage"

_NEXT_SLOT: dict[str, float] = {}
_SLOT_LOCK = threading.Lock()


def pace(token_id: str, interval: float) -> float:
    """Reserve the token's next request slot; the seconds to wait before sending. Slots are
    `interval` apart across every thread and event loop of the process."""
    with _SLOT_LOCK:
        now = time.monotonic()
        slot = max(now, _NEXT_SLOT.get(token_id, 0.0))
        _NEXT_SLOT[token_id] = slot + interval
        return slot - now


class StatuspageRateLimited(RateLimited):
    """`RateLimited` that keeps the status Statuspage answered (it documents both 420 and
    429)."""

    def __init__(self, message: str, retry_after: float | None, status: int) -> None:
        IntegrationError.__init__(self, VENDOR, message, status)
        self.retry_after = retry_after


def vendor_message(response: httpx.Response) -> str:
    """The error text Statuspage sent: the documented `ErrorEntity.message`, or an `error`
    (string or list) or `errors` list, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error", "errors"):
            value = body.get(key)
            if isinstance(value, list):
                return "; ".join(str(v) for v in value)[:300]
            if value:
                return str(value)[:300]
    return str(body)[:300]


def _error(response: httpx.Response) -> IntegrationError:
    status, message = response.status_code, vendor_message(response)
    if status in RATE_LIMIT_STATUSES:
        after = response.headers.get("Retry-After", "").strip()
        wait = float(after) if after.isdigit() else REQUEST_INTERVAL_SECONDS
        return StatuspageRateLimited(message, wait, status)
    if status >= 500:
        return VendorUnavailable(VENDOR, message, status)
    return VendorRejected(VENDOR, message, status)


class StatuspageClient:
    """One page of Statuspage's Manage API; use it as `async with client: ...`.

    Example:
        async with block.get_client() as statuspage:
            incident = await statuspage.get_incident("p31zjtct2jer")
    """

    def __init__(self, api_url: str, page_id: str, api_key: str, *,
                 verify: ssl.SSLContext | bool = True, timeout_seconds: float = 10.0,
                 interval_seconds: float = REQUEST_INTERVAL_SECONDS) -> None:
        self.api_url, self.page_id = api_url.rstrip("/"), page_id
        self.interval_seconds = interval_seconds
        self._token_id = hashlib.sha256(f"{self.api_url}|{api_key}".encode()).hexdigest()
        self._headers = {"Authorization": f"OAuth {api_key}", "Accept": "application/json"}
        self._verify, self._timeout = verify, timeout_seconds
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(headers=self._headers, verify=self._verify,
                                       timeout=self._timeout)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: dict[str, Any] | None = None) -> Any:
        """Send one paced request to `{api_url}/pages/{page_id}{path}`; its JSON answer."""
        if self._http is None:
            raise RuntimeError("use the StatuspageClient as `async with client:`")
        wait = pace(self._token_id, self.interval_seconds)
        if wait > 0:
            await asyncio.sleep(wait)
        url = f"{self.api_url}/pages/{self.page_id}{path}"
        try:
            response = await self._http.request(method, url, json=json, params=params)
            if response.status_code >= 400:
                raise _error(response)
            return response.json()
        except httpx.TransportError as exc:
            raise VendorUnavailable(VENDOR, f"{method} {path}: {type(exc).__name__}: "
                                    f"{exc}") from exc
        except ValueError as exc:
            raise VendorUnavailable(VENDOR, f"{method} {path}: the answer is not JSON "
                                    f"({exc})") from exc

    async def get_page(self) -> dict[str, Any]:
        """The page profile (`GET /pages/{page_id}`)."""
        page: dict[str, Any] = await self.request("GET", "")
        return page

    async def list_incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        """The page's most recent incidents, newest first (at most 100, the API's maximum)."""
        rows: list[dict[str, Any]] = await self.request("GET", "/incidents",
                                                        params={"limit": limit})
        return rows

    async def get_incident(self, incident_id: str) -> dict[str, Any]:
        """One incident with its updates."""
        incident: dict[str, Any] = await self.request("GET", f"/incidents/{incident_id}")
        return incident

    async def create_incident(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a realtime incident (`{"incident": fields}`)."""
        incident: dict[str, Any] = await self.request("POST", "/incidents",
                                                      json={"incident": fields})
        return incident

    async def update_incident(self, incident_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change an incident in one request; a `body` becomes a new incident update."""
        incident: dict[str, Any] = await self.request(
            "PATCH", f"/incidents/{incident_id}", json={"incident": fields})
        return incident

    async def get_component(self, component_id: str) -> dict[str, Any]:
        """One component."""
        component: dict[str, Any] = await self.request("GET", f"/components/{component_id}")
        return component

    async def set_component_status(self, component_id: str, status: str) -> dict[str, Any]:
        """Set a component's status."""
        component: dict[str, Any] = await self.request(
            "PATCH", f"/components/{component_id}", json={"component": {"status": status}})
        return component

"""`AlertmanagerClient`: silences through Alertmanager's API v2, every call bounded by a
timeout, every failure one of Firelane's errors.

Alertmanager 0.25 answers a bad silence with 400 and a JSON string (`"silence invalid:
invalid label matcher 0: invalid regular expression ..."`), a body that fails its schema with
422 and `{"code": ..., "message": ...}`, and expiring an unknown silence with 500 and
`"silence not found"` (https://github.com/prometheus/alertmanager/blob/v0.25.0/api/v2/
openapi.yaml); the text is Alertmanager's own and is kept in the message.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import httpx

from firelane.errors import VendorRejected, VendorUnavailable
from integrations.common import vendor_error

__all__ = ["AlertmanagerClient", "Silence"]

VENDOR = "alertmanager"


@dataclass(frozen=True)
class Silence:
    """A silence as Alertmanager returns it; `state` is active, pending or expired."""

    id: str
    state: str
    matchers: list[dict[str, Any]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Silence:
        """From a `gettableSilence`."""
        return cls(id=str(body["id"]), state=str(body["status"]["state"]),
                   matchers=list(body["matchers"]),
                   starts_at=datetime.fromisoformat(body["startsAt"]),
                   ends_at=datetime.fromisoformat(body["endsAt"]),
                   created_by=str(body.get("createdBy", "")),
                   comment=str(body.get("comment", "")))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text.strip()[:300]


class AlertmanagerClient:
    """Silences on one Alertmanager. Each call opens its own connection (actions run in
    whichever event loop the engine gives them) and is bounded by a timeout."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None,
                 verify: ssl.SSLContext | bool = True, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = dict(headers or {})
        self._auth = auth
        self._verify = verify
        self.timeout_seconds = timeout_seconds

    def silence_url(self, silence_id: str) -> str:
        """The silence in Alertmanager's web UI."""
        return f"{self.url}/#/silences/{silence_id}"

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        endpoint = f"{self.url}/api/v2/{path}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds, verify=self._verify,
                                         headers=self._headers, auth=self._auth) as client:
                return await client.request(method, endpoint, json=body)
        except httpx.TimeoutException as exc:
            raise VendorUnavailable(VENDOR, f"no answer from {method} {endpoint} within "
                                    f"{self.timeout_seconds:g} s ({type(exc).__name__})"
                                    ) from exc
        except httpx.HTTPError as exc:
            raise VendorUnavailable(VENDOR, f"cannot reach {endpoint}: "
                                    f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _fail(response: httpx.Response, what: str) -> NoReturn:
        text = f"{what}: {_error_text(response)}"
        if response.status_code in (401, 403):
            text += "; check the AlertmanagerConnection block's bearer token or basic auth"
        raise vendor_error(VENDOR, response.status_code, text,
                           response.headers.get("Retry-After"))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise VendorUnavailable(VENDOR, f"{response.request.url} did not answer like "
                                    f"Alertmanager's API: {response.text[:200]!r}") from exc

    async def list_silences(self) -> list[Silence]:
        """Every silence Alertmanager holds (expired ones until its retention drops them)."""
        response = await self._call("GET", "silences")
        if response.status_code != 200:
            self._fail(response, "cannot list silences")
        try:
            return [Silence.from_api(s) for s in self._json(response)]
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorUnavailable(VENDOR, f"unexpected silence list: {exc}") from exc

    async def get_silence(self, silence_id: str) -> Silence | None:
        """The silence `silence_id`, or None when Alertmanager does not know it."""
        response = await self._call("GET", f"silence/{silence_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._fail(response, f"cannot read silence {silence_id}")
        try:
            return Silence.from_api(self._json(response))
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorUnavailable(VENDOR, f"unexpected silence: {exc}") from exc

    async def create_silence(self, matchers: list[dict[str, Any]], starts_at: datetime,
                             ends_at: datetime, created_by: str, comment: str) -> str:
        """Create a silence; its id. A bad matcher is a `VendorRejected` with Alertmanager's
        reason."""
        response = await self._call("POST", "silences", {
            "matchers": matchers, "startsAt": starts_at.isoformat(),
            "endsAt": ends_at.isoformat(), "createdBy": created_by, "comment": comment})
        if response.status_code != 200:
            self._fail(response, "refused the silence")
        body = self._json(response)
        if not isinstance(body, dict) or not body.get("silenceID"):
            raise VendorUnavailable(VENDOR, f"no silenceID in {response.text[:200]!r}")
        return str(body["silenceID"])

    async def expire_silence(self, silence_id: str) -> None:
        """Expire the silence now (Alertmanager accepts expiring an expired one). An unknown
        id is a `VendorRejected` (Alertmanager says 500 "silence not found")."""
        response = await self._call("DELETE", f"silence/{silence_id}")
        if response.status_code == 200:
            return
        if "silence not found" in _error_text(response):
            raise VendorRejected(VENDOR, f"no silence {silence_id}", 404)
        self._fail(response, f"cannot expire silence {silence_id}")

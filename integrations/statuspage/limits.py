"""Statuspage's documented limits on what Firelane sends, and its rate limit.

Statuspage Manage API v1 (https://developer.statuspage.io/, "Rate Limiting"): each API token is
limited to 1 request per second, measured on a 60-second rolling window; past it the API answers
420 or 429. Incidents (`POST`/`PATCH /v1/pages/{page_id}/incidents[/{incident_id}]`,
https://developer.statuspage.io/#operation/postPagesPageIdIncidents): the incident `name` holds
at most 255 characters and `body` (the text of the incident update) at most 25,000; `metadata`
is a JSON object whose top-level values must be objects. Statuses are `investigating`,
`identified`, `monitoring`, `resolved` for a realtime incident; a component is `operational`,
`under_maintenance`, `degraded_performance`, `partial_outage` or `major_outage`
(https://developer.statuspage.io/#operation/patchPagesPageIdComponentsComponentId). Errors
are an `ErrorEntity` (`{"message": ...}`) with 401, 404 or 422.
"""

from __future__ import annotations

from typing import Literal, get_args

from integrations.limits import Limit

__all__ = ["BODY", "COMPONENT_STATUSES", "INCIDENT_STATUSES", "NAME", "RATE_LIMIT_STATUSES",
           "RATE_WINDOW_REQUESTS", "RATE_WINDOW_SECONDS", "REQUEST_INTERVAL_SECONDS",
           "ComponentStatus", "IncidentStatus"]

_API = "https://developer.statuspage.io/"
_INCIDENTS = "https://developer.statuspage.io/#operation/postPagesPageIdIncidents"

NAME = Limit("statuspage", "incident.name", 255, _INCIDENTS)
BODY = Limit("statuspage", "incident.body", 25000, _INCIDENTS)

REQUEST_INTERVAL_SECONDS = 1.0
"""1 request/s per API token (https://developer.statuspage.io/, "Rate Limiting")."""
RATE_WINDOW_SECONDS = 60.0
"""The rolling window the rate is measured on (same section)."""
RATE_WINDOW_REQUESTS = 60
"""Requests a token may make within one window: 1/s over 60 s."""
RATE_LIMIT_STATUSES = (420, 429)
"""Both codes mean "rate limit exceeded, request rejected" (same section)."""

IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved"]
ComponentStatus = Literal["operational", "under_maintenance", "degraded_performance",
                          "partial_outage", "major_outage"]
INCIDENT_STATUSES: tuple[str, ...] = get_args(IncidentStatus)
COMPONENT_STATUSES: tuple[str, ...] = get_args(ComponentStatus)

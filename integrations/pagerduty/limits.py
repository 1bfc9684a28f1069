"""PagerDuty's documented limits on what Firelane sends, and the errors it answers past them.

Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/): the
`payload.summary` is at most 1,024 characters and `dedup_key` at most 255; a refused event is
HTTP 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`.
REST API v2 incident notes (`POST /incidents/{id}/notes`, `specs/pagerduty/rest_openapiv3.json`,
https://developer.pagerduty.com/api-reference/3df2b685a0dbc-create-a-note-on-an-incident)
answer 200; a note's `content` is at most 25,000 characters.
"""

from __future__ import annotations

from integrations.limits import Limit

__all__ = ["DEDUP_KEY", "NOTE", "SUMMARY"]

_EVENTS = "https://developer.pagerduty.com/docs/events-api-v2/trigger-events/"
_NOTES = ("https://developer.pagerduty.com/api-reference/3df2b685a0dbc-create-a-note-on-an-"
          "incident")

SUMMARY = Limit("pagerduty", "payload.summary", 1024, _EVENTS)
DEDUP_KEY = Limit("pagerduty", "dedup_key", 255, _EVENTS)
NOTE = Limit("pagerduty", "note.content", 25000, _NOTES)

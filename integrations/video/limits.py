"""The video bridge's documented limits on what Firelane sends.

Zoom `POST /users/{userId}/meetings`
(https://developers.zoom.us/docs/api/meetings/#tag/meetings/POST/users/{userId}/meetings): a
meeting `topic` is at most 200 characters; past it Zoom answers HTTP 400
`{"code": 300, "message": "Validation Failed.", "errors": [{"field": "topic", ...}]}`.
"""

from __future__ import annotations

from integrations.limits import Limit

__all__ = ["TOPIC"]

TOPIC = Limit("zoom", "topic", 200,
              "https://developers.zoom.us/docs/api/meetings/#tag/meetings/POST/users/{userId}/"
              "meetings", one_line=True)

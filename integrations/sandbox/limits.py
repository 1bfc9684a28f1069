"""The vendors' limits as the sandbox enforces them: each check answers the refusal the real
vendor sends (status and body), or None when the value is accepted.

The limits come from `integrations/<vendor>/limits.py`, the same values the actions fit to, so
a value the actions would send and the vendor would refuse fails here too.
"""

from __future__ import annotations

from typing import Any

from integrations.jira import limits as jira
from integrations.pagerduty import limits as pagerduty
from integrations.slack import limits as slack
from integrations.video import limits as zoom

__all__ = ["jira_summary", "pagerduty_event", "slack_channel_name", "slack_text", "slack_topic",
           "zoom_topic"]


def jira_summary(summary: Any) -> dict[str, Any] | None:
    """Jira's 400 body for a summary it refuses: multi-line, or over 255 UTF-16 units."""
    text = str(summary)
    if "\n" in text or "\r" in text:
        message = jira.SUMMARY_NEWLINE_ERROR
    elif jira.SUMMARY.unit(text) > jira.SUMMARY.maximum:
        message = jira.SUMMARY_TOO_LONG_ERROR
    else:
        return None
    return {"errorMessages": [], "errors": {"summary": message}}


def pagerduty_event(body: dict[str, Any]) -> dict[str, Any] | None:
    """Events v2's 400 body for an event over its limits (dedup_key, payload.summary)."""
    errors: list[str] = []
    key = body.get("dedup_key")
    if isinstance(key, str) and len(key) > pagerduty.DEDUP_KEY.maximum:
        errors.append(f"Length of 'dedup_key' is greater than {pagerduty.DEDUP_KEY.maximum}")
    summary = (body.get("payload") or {}).get("summary")
    if isinstance(summary, str) and len(summary) > pagerduty.SUMMARY.maximum:
        errors.append(f"Length of 'payload.summary' is greater than "
                      f"{pagerduty.SUMMARY.maximum}")
    if not errors:
        return None
    return {"status": "invalid event", "message": "Event object is invalid", "errors": errors}


def slack_channel_name(name: str) -> str | None:
    """The `conversations.create` error code for a name Slack refuses."""
    if not name:
        return "invalid_name_required"
    if len(name) > slack.CHANNEL_NAME.maximum:
        return "invalid_name_maxlength"
    if not slack.CHANNEL_NAME_ALLOWED.match(name):
        return "invalid_name_specials"
    return None


def slack_topic(topic: str) -> str | None:
    """The `conversations.setTopic` error code for a topic over 250 characters."""
    return "too_long" if len(topic) > slack.TOPIC.maximum else None


def slack_text(text: str) -> str | None:
    """The `chat.postMessage` / `chat.update` error code for text past 40,000 characters."""
    return "msg_too_long" if len(text) > slack.MESSAGE_HARD.maximum else None


def zoom_topic(topic: str) -> dict[str, Any] | None:
    """Zoom's 400 body for a meeting topic over 200 characters."""
    if len(topic) <= zoom.TOPIC.maximum:
        return None
    return {"code": 300, "message": "Validation Failed.", "errors": [
        {"field": "topic", "message": f"Topic must be at most {zoom.TOPIC.maximum} characters"}]}

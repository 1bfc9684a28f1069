"""Slack's documented limits on what Firelane sends, and the errors Slack answers past them.

Slack answers HTTP 200 with `{"ok": false, "error": "<code>"}` for every refusal below.
- `conversations.create` (https://api.slack.com/methods/conversations.create): a name is at
  most 80 characters of lowercase letters, digits, `-` and `_` (`invalid_name_maxlength`,
  `invalid_name_specials`, `invalid_name_required`).
- `conversations.setTopic` (https://api.slack.com/methods/conversations.setTopic): a topic is
  at most 250 characters (`too_long`).
- `chat.postMessage` (https://api.slack.com/methods/chat.postMessage#truncating): `text` is
  best kept within 4,000 characters; past 40,000 Slack refuses it (`msg_too_long`).
- `bookmarks.add` (https://api.slack.com/methods/bookmarks.add): Firelane keeps titles short
  (a bookmark title longer than the channel header shows is of no use), at 250 like topics.
"""

from __future__ import annotations

import re

from integrations.limits import Limit, transliterate

__all__ = ["BOOKMARK_TITLE", "CHANNEL_NAME", "CHANNEL_NAME_ALLOWED", "MESSAGE", "MESSAGE_HARD",
           "TOPIC", "channel_name"]

CHANNEL_NAME = Limit("slack", "channel name", 80,
                     "https://api.slack.com/methods/conversations.create")
CHANNEL_NAME_ALLOWED = re.compile(r"^[a-z0-9_-]+$")
TOPIC = Limit("slack", "topic", 250, "https://api.slack.com/methods/conversations.setTopic",
              one_line=True)
MESSAGE = Limit("slack", "message text", 4000,
                "https://api.slack.com/methods/chat.postMessage#truncating")
MESSAGE_HARD = Limit("slack", "message text (refused past)", 40000,
                     "https://api.slack.com/methods/chat.postMessage#truncating")
BOOKMARK_TITLE = Limit("slack", "bookmark title", 250,
                       "https://api.slack.com/methods/bookmarks.add", one_line=True)


def channel_name(text: str) -> str:
    """A valid Slack channel name made from `text`: transliterated to ASCII (`Überweisungen`
    → `uberweisungen`, other scripts → a short hash), lower case, digits, `-` and `_`, at most
    80 characters."""
    name = re.sub(r"[^a-z0-9_-]+", "-", transliterate(text).lower()).strip("-_")
    return re.sub(r"-{2,}", "-", name)[: CHANNEL_NAME.maximum].rstrip("-_") or "incident"

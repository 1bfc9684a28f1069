"""The full text of a Slack message that was fitted, posted in the message's thread.

Slack advises keeping `chat.postMessage` text within 4,000 characters
(https://api.slack.com/methods/chat.postMessage#truncating): a longer text is posted cut to that
with a marker, and the full text follows in the thread in pieces of at most 4,000 characters,
each carrying the step's key and its index in metadata, so a re-run posts only the pieces
`conversations.replies` does not show yet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from integrations.slack.limits import MESSAGE

__all__ = ["MAX_PIECES", "pieces", "post_in_thread"]

MAX_PIECES = 10


def pieces(text: str) -> list[str]:
    """`text` in pieces of at most `MESSAGE.maximum` characters, at most `MAX_PIECES` of them
    (the last fitted with a marker when the text is longer still)."""
    size = MESSAGE.maximum
    parts = [text[i:i + size] for i in range(0, len(text), size)]
    if len(parts) > MAX_PIECES:
        parts = [*parts[: MAX_PIECES - 1], MESSAGE.fit("".join(parts[MAX_PIECES - 1:]))]
    return parts


async def post_in_thread(call: Callable[..., Awaitable[Any]], client: Any, channel: str,
                         ts: str, text: str, key: str) -> None:
    """Post `text` in full under the message `ts`, once per piece."""
    got = await call(client.conversations_replies, channel=channel, ts=ts, limit=200,
                     include_all_metadata=True)
    seen = {((m.get("metadata") or {}).get("event_payload") or {}).get("firelane_piece")
            for m in got["messages"]}
    for n, piece in enumerate(pieces(text)):
        if f"{key}:{n}" in seen:
            continue
        await call(client.chat_postMessage, channel=channel, thread_ts=ts, text=piece,
                   metadata={"event_type": "firelane_step",
                             "event_payload": {"firelane_piece": f"{key}:{n}"}})

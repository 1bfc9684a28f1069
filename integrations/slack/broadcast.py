"""`slack.broadcast`: one message to each of several channels, by name or id, once each.

Stakeholder updates go to the affected services' stakeholder channels (the catalog's
`stakeholder_channel`, such as `#web-status`), never to the war room. Each channel's message
carries the step's key and the channel in its metadata, so a retried or resumed step finds the
messages it already posted and posts only the missing ones.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import VendorRejected
from firelane.registry import ActionContext, action
from integrations.common import retrying
from integrations.limits import fit_for
from integrations.slack.actions import _find_channel, _find_message
from integrations.slack.api import call, client_for
from integrations.slack.limits import MESSAGE
from integrations.slack.overflow import post_in_thread

__all__ = ["BroadcastInputs", "BroadcastOutputs"]

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class BroadcastInputs(BaseModel):
    """`slack.broadcast` inputs."""

    model_config = ConfigDict(extra="forbid")
    channels: list[str] = Field(description="Channel names (#web-status) or ids; may be empty")
    text: str = Field(min_length=1, description="The message")


class BroadcastOutputs(BaseModel):
    """Where it was posted: channel id → message ts; `created` lists the new posts."""

    posted: dict[str, str]
    created: list[str]


async def _channel_id(client: object, channel: str) -> str:
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.removeprefix("#")
    found = await _find_channel(client, name)
    if found is None:
        raise VendorRejected("slack", f"channel_not_found: no channel named #{name}: create it "
                             "and invite the Firelane app, or fix stakeholder_channel in "
                             "services.yaml")
    return str(found["id"])


@action("slack.broadcast")
async def broadcast(inputs: BroadcastInputs, ctx: ActionContext) -> BroadcastOutputs:
    """Post `text` once to each channel (an empty list posts nothing).

    Example: `{uses: slack.broadcast, with: {channels: ["#web-status"], text: "..."}}`
    """
    text = fit_for(ctx, MESSAGE, inputs.text)

    async def attempt() -> BroadcastOutputs:
        client = await client_for(ctx)
        posted: dict[str, str] = {}
        created: list[str] = []
        for channel in dict.fromkeys(inputs.channels):
            cid = await _channel_id(client, channel)
            key = f"{ctx.idempotency_key}:{cid}"
            ts = await _find_message(client, cid, key)
            if ts is None:
                sent = await call(client.chat_postMessage, channel=cid, text=text, metadata={
                    "event_type": "firelane_step", "event_payload": {"firelane_key": key}})
                ts = str(sent["ts"])
                created.append(cid)
                if text != inputs.text:
                    await post_in_thread(call, client, cid, ts, inputs.text, key)
            posted[cid] = ts
        return BroadcastOutputs(posted=posted, created=created)

    return await retrying(attempt, ctx)

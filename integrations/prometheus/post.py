"""Posting a chart to the war room: the upload of `slack.upload_file`
(`integrations.slack.upload`, the sandbox's stand-in in sandbox runs), with bytes so a PNG can
go as a picture.

Within a try, the upload shares the chart once even when Slack's answer is lost. Across tries,
the post is claimed as one effect of the step (`ctx.claim_effect`) before it is made: a retried
or resumed step does not post the chart a second time. A refusal (the post surely did not
happen) gives the claim back.
"""

from __future__ import annotations

from dataclasses import dataclass

from firelane.errors import VendorRejected
from firelane.registry import ActionContext
from integrations.slack.api import client_for
from integrations.slack.upload import upload_once

__all__ = ["Posted", "post_chart"]

EFFECT = "slack-chart"


@dataclass(frozen=True)
class Posted:
    """What became of the post: the Slack file id, or None when an earlier attempt of the
    step already claimed it."""

    file_id: str | None


async def post_chart(ctx: ActionContext, channel: str, filename: str, data: bytes,
                     title: str, comment: str) -> Posted:
    """Upload `data` as `filename` to `channel` with `comment`, at most once per step."""
    if ctx.claim_effect is not None and not await ctx.claim_effect(EFFECT):
        ctx.emit("prometheus.graph_posted", f"chart not posted again to {channel}: an "
                 "earlier attempt of this step posted it (or may have)",
                 {"channel": channel, "repeat": True})
        return Posted(file_id=None)
    try:
        done = await upload_once(ctx, await client_for(ctx), channel, filename, data, title,
                                 comment, look_back=ctx.claim_effect is None)
    except VendorRejected:
        if ctx.release_effect is not None:
            await ctx.release_effect(EFFECT)
        raise
    ctx.emit("prometheus.graph_posted", f"chart {filename} posted to {channel}",
             {"channel": channel, "file_id": done.file_id, "filename": filename})
    return Posted(file_id=done.file_id)

"""Posting a chart to the war room: the Slack upload of `slack.upload_file` (Slack's external
upload flow through `files_upload_v2`, the sandbox's stand-in in sandbox runs), with bytes so a
PNG can go as a picture.

Slack's upload has no idempotency key, so the post is claimed as one effect of the step
(`ctx.claim_effect`) before it is made: a retried or resumed step does not post the chart a
second time. A refusal (the post surely did not happen) gives the claim back.
"""

from __future__ import annotations

import http.client
import urllib.error
from dataclasses import dataclass
from typing import Any

from firelane.errors import VendorRejected, VendorUnavailable
from firelane.registry import ActionContext
from integrations.common import in_thread, load_block, retrying, vendor_error

__all__ = ["Posted", "post_chart"]

EFFECT = "slack-chart"


@dataclass(frozen=True)
class Posted:
    """What became of the post: the Slack file id, or None when an earlier attempt of the
    step already claimed it."""

    file_id: str | None


async def _upload(ctx: ActionContext, channel: str, filename: str, data: bytes, title: str,
                  comment: str) -> str:
    from slack_sdk.errors import SlackApiError

    from integrations.slack.block import SlackCredentials

    creds: Any = await load_block(SlackCredentials, ctx, "slack")
    client = creds.get_client()
    try:
        done = await in_thread(client.files_upload_v2, channel=channel, file=data,
                               filename=filename, title=title, initial_comment=comment)
    except SlackApiError as exc:
        response = exc.response
        error = str(response.get("error", "")) if response.data else str(exc)
        after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        raise vendor_error("slack", response.status_code, error or
                           f"HTTP {response.status_code}", str(after) if after else None
                           ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise VendorUnavailable("slack", f"{type(exc).__name__}: {exc}") from exc
    return str(done["file"]["id"])


async def post_chart(ctx: ActionContext, channel: str, filename: str, data: bytes,
                     title: str, comment: str) -> Posted:
    """Upload `data` as `filename` to `channel` with `comment`, at most once per step."""
    if ctx.claim_effect is not None and not await ctx.claim_effect(EFFECT):
        ctx.emit("prometheus.graph_posted", f"chart not posted again to {channel}: an "
                 "earlier attempt of this step posted it (or may have)",
                 {"channel": channel, "repeat": True})
        return Posted(file_id=None)
    try:
        file_id = await retrying(lambda: _upload(ctx, channel, filename, data, title,
                                                 comment), ctx)
    except VendorRejected:
        if ctx.release_effect is not None:
            await ctx.release_effect(EFFECT)
        raise
    ctx.emit("prometheus.graph_posted", f"chart {filename} posted to {channel}",
             {"channel": channel, "file_id": file_id, "filename": filename})
    return Posted(file_id=file_id)

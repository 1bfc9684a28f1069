"""The run's Slack client, and one Slack Web API call in a worker thread, its failure told as a
Firelane error: the error code Slack answered (`channel_not_found`), 429 as `RateLimited` with
its Retry-After, 5xx and network failures as `VendorUnavailable` (the outcome is unknown)."""

from __future__ import annotations

import http.client
import urllib.error
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from firelane.errors import VendorUnavailable
from firelane.registry import ActionContext
from integrations.common import in_thread, load_block, vendor_error

__all__ = ["call", "client_for"]

T = TypeVar("T")


async def client_for(ctx: ActionContext) -> Any:
    """The run's Slack `WebClient`, from its credentials block (the sandbox's in sandbox
    runs)."""
    from integrations.slack.block import SlackCredentials

    creds: SlackCredentials = await load_block(SlackCredentials, ctx, "slack")
    return creds.get_client()


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` (a `WebClient` method) off the event loop."""
    try:
        return await in_thread(fn, *args, **kwargs)
    except SlackApiError as exc:
        response = exc.response
        error = str(response.get("error", "")) if response.data else str(exc)
        after = response.headers.get("Retry-After") or response.headers.get("retry-after")
        status = response.status_code
        raise vendor_error("slack", status, error or f"HTTP {status}",
                           str(after) if after else None) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise VendorUnavailable("slack", f"{type(exc).__name__}: {exc}") from exc

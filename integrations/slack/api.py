"""One Slack Web API call in a worker thread, its failure told as a Firelane error: the
error code Slack answered (`channel_not_found`), 429 as `RateLimited` with its Retry-After,
5xx and network failures as `VendorUnavailable` (the outcome is unknown)."""

from __future__ import annotations

import http.client
import urllib.error
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

from firelane.errors import VendorUnavailable
from integrations.common import in_thread, vendor_error

__all__ = ["call"]

T = TypeVar("T")


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

"""Map `jira` client failures into Firelane's exception tree."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests
from jira import JIRAError

from firelane.errors import IntegrationError, VendorUnavailable
from integrations.common import in_thread, vendor_error

__all__ = ["call"]

T = TypeVar("T")


def _message(exc: JIRAError) -> str:
    text = (exc.text or "").strip()
    return text.splitlines()[0][:300] if text else str(exc.status_code)


async def call(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a `jira` client call in a thread; raise Firelane errors instead of the client's."""
    try:
        return await in_thread(fn, *args, **kwargs)
    except JIRAError as exc:
        after = exc.response.headers.get("Retry-After") if exc.response is not None else None
        raise vendor_error("jira", exc.status_code, _message(exc), after) from exc
    except (requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError) as exc:
        raise VendorUnavailable("jira", f"{type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:
        raise IntegrationError("jira", f"{type(exc).__name__}: {exc}") from exc

"""`KeepAliveWebClient`: slack_sdk's `WebClient` whose calls reuse their HTTPS connections.

The sync `WebClient` sends each call through `urllib.request.urlopen`, which opens a new TCP
connection and TLS session and closes it after the answer: a handshake's CPU on every call
(`bench/slack_calls.py` measures both clients) and, against slack.com, two more network round
trips. A war room is a dozen calls. This client keeps everything slack_sdk does with a
call (the request it builds, the answer it parses, `SlackApiError` and its 429 handling) and
changes only how the bytes travel: a `urllib3` pool per client, with urllib3's own retries off
(Firelane decides what is retried, and a POST is never repeated behind its back). A client
with a proxy (slack_sdk takes `HTTPS_PROXY` from the environment when given none) sends
through urllib as before, one connection per call, honouring `NO_PROXY`. A non-2xx
answer is raised as the `urllib.error.HTTPError` slack_sdk expects from urllib; a failure to
connect or a lost answer as `urllib.error.URLError` or `TimeoutError`, as urllib raises them.
"""

from __future__ import annotations

import http.client
import io
import ssl
import urllib.error
import urllib.request
from typing import Any

import urllib3
from slack_sdk import WebClient

__all__ = ["KeepAliveWebClient"]

_KEPT_CONNECTIONS = 10
"""Idle connections kept per host; more concurrent calls than this open extra ones, closed
after use."""


class KeepAliveWebClient(WebClient):
    """A `WebClient` whose calls share a pool of kept-alive HTTPS connections (thread-safe,
    like the `WebClient` itself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = self.ssl if self.ssl is not None else ssl.create_default_context()
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=_KEPT_CONNECTIONS, block=False, retries=False,
            ssl_context=context, timeout=urllib3.Timeout(connect=self.timeout,
                                                         read=self.timeout))

    def close(self) -> None:
        """Close the kept connections (the client still works: the next call opens one)."""
        self.pool.clear()

    def _perform_urllib_http_request_internal(self, url: str,
                                              req: urllib.request.Request) -> dict[str, Any]:
        body = req.data
        if self.proxy is not None or not isinstance(body, bytes | None) or \
                not url.lower().startswith(("https://", "http://")):
            return super()._perform_urllib_http_request_internal(url, req)
        try:
            answer = self.pool.request(req.get_method(), url, body=body,
                                       headers={k: str(v) for k, v in req.header_items()},
                                       redirect=False,
                                       preload_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise TimeoutError(f"The read operation timed out ({url})") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise urllib.error.URLError(exc) from exc
        headers = _message(answer.headers.items())
        if answer.status >= 300:
            raise urllib.error.HTTPError(url, answer.status, answer.reason or "", headers,
                                         io.BytesIO(answer.data))
        if headers.get_content_type() == "application/gzip":
            return {"status": answer.status, "headers": headers, "body": answer.data}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": answer.status, "headers": headers,
                "body": answer.data.decode(charset)}


def _message(items: Any) -> http.client.HTTPMessage:
    """Headers as the `HTTPMessage` urllib gives slack_sdk (content type and charset helpers,
    case-insensitive `get`)."""
    message = http.client.HTTPMessage()
    for name, value in items:
        message[name] = value
    return message

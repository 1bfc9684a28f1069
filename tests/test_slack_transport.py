"""The Slack client keeps its HTTPS connections between calls, and what it raises is what
slack_sdk over urllib raised: Slack's error codes, 429 with its Retry-After, a lost answer or a
refused connection as `VendorUnavailable`; a connection the server closed is not used again."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from firelane.errors import RateLimited, VendorRejected, VendorUnavailable
from integrations.common import forget_pooled
from integrations.sandbox import Sandbox
from integrations.slack.api import call
from integrations.slack.block import SlackCredentials
from integrations.slack.transport import KeepAliveWebClient


@pytest.fixture(autouse=True)
def _no_client_left_behind() -> Iterator[None]:
    """Each test builds its own clients; none stays pooled for the tests after it (one here
    is built with a refusing proxy in its environment)."""
    forget_pooled()
    yield
    forget_pooled()


def _client(sb: Sandbox, timeout: float = 1.0) -> KeepAliveWebClient:
    forget_pooled()
    creds = SlackCredentials.for_sandbox(sb.url, sb.ca_file)
    creds.timeout_seconds = timeout
    client = creds.get_client()
    assert isinstance(client, KeepAliveWebClient)
    return client


def _connections(sb: Sandbox) -> int:
    """TCP connections the sandbox saw Slack calls arrive on (one client port each)."""
    return len({port for request, port in zip(sb.state.requests, sb.state.client_ports,
                                               strict=True) if "/slack/api/" in request})


def _post(client: KeepAliveWebClient, text: str, channel: str = "C0GENERAL") -> Any:
    return asyncio.run(call(client.chat_postMessage, channel=channel, text=text))


def test_calls_share_one_connection(sandbox: Sandbox) -> None:
    client = _client(sandbox)
    channel = str(asyncio.run(call(client.conversations_create, name="ops"))["channel"]["id"])
    for n in range(5):
        _post(client, f"update {n}", channel)
    assert (_connections(sandbox), len(sandbox.state.requests)) == (1, 6)
    assert [m["text"] for m in sandbox.state.slack_messages] == [f"update {n}" for n in range(5)]


def test_slack_errors_and_rate_limits_are_told_as_before(sandbox: Sandbox) -> None:
    client = _client(sandbox)
    with pytest.raises(VendorRejected, match="channel_not_found"):
        _post(client, "x", "C404")
    sandbox.faults.add(path="/slack/api/chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        _post(client, "x", "C404")
    assert limited.value.retry_after == 7
    sandbox.faults.add(path="/slack/api/chat.postMessage", status=503)
    with pytest.raises(VendorUnavailable, match="503"):
        _post(client, "x", "C404")
    assert _connections(sandbox) == 1


@pytest.mark.parametrize("kind", ["reset", "drop", "apply_then_reset"])
def test_a_broken_connection_is_unavailable_and_the_next_call_opens_another(
        sandbox: Sandbox, kind: str) -> None:
    client = _client(sandbox)
    channel = str(asyncio.run(call(client.conversations_create, name="ops"))["channel"]["id"])
    sandbox.faults.add(path="/slack/api/chat.postMessage", kind=kind)
    with pytest.raises(VendorUnavailable):
        _post(client, "lost", channel)
    assert _post(client, "after", channel)["ok"]
    assert _connections(sandbox) == 2
    texts = [m["text"] for m in sandbox.state.slack_messages]
    assert texts == (["lost", "after"] if kind == "apply_then_reset" else ["after"])


def test_a_lost_answer_times_out_as_unavailable(sandbox: Sandbox) -> None:
    client = _client(sandbox, timeout=1)
    sandbox.faults.add(path="/slack/api/chat.postMessage", kind="latency", latency=1.5)
    with pytest.raises(VendorUnavailable, match="timed out"):
        _post(client, "slow", "C404")
    with pytest.raises(VendorRejected, match="channel_not_found"):
        _post(client, "next", "C404")


def test_a_connection_the_server_closed_while_idle_is_not_reused(sandbox: Sandbox) -> None:
    """The sandbox (uvicorn) closes a connection idle for 5 s, as Slack's edge does; the call
    after a quiet spell opens a new one instead of failing on the closed one."""
    client = _client(sandbox)
    channel = str(asyncio.run(call(client.conversations_create, name="ops"))["channel"]["id"])
    time.sleep(5.5)
    assert _post(client, "after a quiet spell", channel)["ok"]
    assert _connections(sandbox) == 2
    assert [m["text"] for m in sandbox.state.slack_messages] == ["after a quiet spell"]


def test_nothing_listening_is_unavailable() -> None:
    with Sandbox() as sb:
        client = _client(sb)
    with pytest.raises(VendorUnavailable, match="URLError"):
        _post(client, "x", "C404")


def test_a_proxy_in_the_environment_is_still_used(sandbox: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk sent Slack calls through `HTTPS_PROXY`; so does this client (here a proxy
    that refuses, so the call fails instead of going straight to the sandbox), unless
    `NO_PROXY` names the host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(VendorUnavailable, match="refused"):
        _post(_client(sandbox), "x", "C404")
    assert sandbox.state.requests == []
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(VendorRejected, match="channel_not_found"):
        _post(_client(sandbox), "x", "C404")
    assert _connections(sandbox) == 1

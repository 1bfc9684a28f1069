"""Fixtures for tests that talk to the sandbox through the vendors' real clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firelane.models import Incident, Severity
from firelane.registry import ActionContext, call_action
from integrations.sandbox import Sandbox
from integrations.video.zoom import forget_spent


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    """One sandbox for the session (reset before each test that uses `sandbox`)."""
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A clean sandbox, with the environment pointing sandbox runs at it and short retries."""
    sandbox_server.state.reset()
    sandbox_server.faults.clear()
    sandbox_server.state.jira_search_lag = 0.0
    sandbox_server.state.zoom_daily_limit = 100
    forget_spent()
    monkeypatch.setenv("FIRELANE_SANDBOX_URL", sandbox_server.url)
    monkeypatch.setenv("FIRELANE_SANDBOX_CA", sandbox_server.ca_file)
    monkeypatch.setenv("FIRELANE_SANDBOX_CLIENT_TIMEOUT", "1")
    monkeypatch.setenv("FIRELANE_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("FIRELANE_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("FIRELANE_JIRA_INDEX_WAIT_SECONDS", "3")
    return sandbox_server


def make_ctx(step: str = "step", key_suffix: str = "", number: int = 7) -> ActionContext:
    """An action context for a sandbox run of incident INC-<number>."""
    incident = Incident(id="a" * 32, number=number, title="Checkout 5xx above 5%",
                        severity=Severity.SEV1,
                        service="checkout")
    return ActionContext(incident=incident, execution_id="e" * 32, step_id=step,
                         idempotency_key=f"firelane-{incident.id[:12]}-eeeeeeeeeeee-{step}"
                         + key_suffix, sandbox=True)


async def run_action(name: str, inputs: dict[str, Any], ctx: ActionContext) -> Any:
    """Validate `inputs` and run the action `name`."""
    return await call_action(name, inputs, ctx)

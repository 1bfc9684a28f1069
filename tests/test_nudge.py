"""A UDP nudge takes an idle paging responder straight to a claim: no read of the store in
between, one round trip fewer on the way to a page. Real SQLite store, the sandbox's vendors,
a real responder; its fallback poll and stale check pushed a minute away, so only the nudge
can have started the response."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from firelane.models import ExecutionStatus
from firelane.settings import Settings
from firelane.store import Store
from flows.respond import responder
from flows.respond.responder import respond_forever
from integrations.sandbox import Sandbox
from tests.helpers import leave_pending, wait_until

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.usefixtures("prefect_api")
def test_a_nudge_goes_straight_to_a_claim(sq: Store, sandbox: Sandbox, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_udp_port()
    monkeypatch.setenv("FIRELANE_WAKE_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setenv("FIRELANE_FLOWS_WAKE_ADDRESS", "off")
    monkeypatch.setenv("FIRELANE_POLL_SECONDS", "60")
    monkeypatch.setenv("FIRELANE_RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.setenv("FIRELANE_CATALOG", str(tmp_path / "none.yaml"))
    monkeypatch.setattr(responder, "TICK_SECONDS", 60.0)
    reads: list[str] = []
    reads_at_claim: list[int] = []
    set_ups: list[str] = []
    has_pending, claim, run_state = sq.has_pending_executions, sq.claim_runs, sq.run_state

    def counted_read(*args: Any) -> bool:
        reads.append("has_pending")
        return has_pending(*args)

    def noted_claim(*args: Any) -> Any:
        claimed = claim(*args)
        if claimed:
            reads_at_claim.append(len(reads))
        return claimed

    def counted_set_up(execution_id: str) -> Any:
        set_ups.append(execution_id)
        return run_state(execution_id)

    monkeypatch.setattr(sq, "has_pending_executions", counted_read)
    monkeypatch.setattr(sq, "claim_runs", noted_claim)
    monkeypatch.setattr(sq, "run_state", counted_set_up)
    settings = Settings.from_env()

    async def scenario() -> tuple[int, int, bool]:
        stop = asyncio.Event()
        urgent = asyncio.create_task(respond_forever(sq, settings, stop, role="urgent"))
        assert await wait_until(lambda: bool(reads), 10), "the responder never went idle"
        execution_id = await asyncio.to_thread(leave_pending, sq)
        idle_reads = len(reads)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"w", ("127.0.0.1", port))
        paged = await wait_until(lambda: bool(sandbox.state.dump()["pd_incidents"]), 20)
        ready = await wait_until(lambda: sq.get_execution(execution_id).status
                             is ExecutionStatus.READY, 20)
        stop.set()
        await urgent
        return idle_reads, reads_at_claim[0] if reads_at_claim else -1, paged and ready

    idle_reads, reads_before_claim, paged = asyncio.run(scenario())
    assert paged, "the nudged responder did not page"
    assert reads_before_claim == idle_reads
    assert set_ups == [], "the claim read the response's state; nothing should read it again"

"""The fast path's war-room slots: a step whose action waits (a health check, asleep between
probes) takes no slot, so it neither waits behind a full set of slots nor keeps the next
incidents' war-room steps waiting while it sleeps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firelane.settings import Settings
from firelane.store import Store
from flows.respond.fast_path import WAR_ROOM_CONCURRENCY, start_urgent_steps
from tests import plugin_actions  # noqa: F401  (registers test.effect)
from tests.helpers import prepare

HOLD = 1.5


def test_a_waiting_step_starts_at_once_beside_full_war_room_slots(
        sq: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELANE_TEST_EFFECTS", str(tmp_path / "vendor.db"))
    busy = [f"  - {{id: e{i}, uses: test.effect, with: {{name: e{i}, before_seconds: {HOLD}}}}}"
            for i in range(WAR_ROOM_CONCURRENCY + 1)]
    rc = prepare(sq, "\n".join(["version: 1", "name: slots", "steps:", *busy,
                                "  - {id: probe, uses: core.wait, with: {seconds: 0.1}}"]))

    async def go() -> None:
        await asyncio.gather(*await start_urgent_steps(sq, rc.execution.id,
                                                       Settings.from_env()))

    asyncio.run(go())
    records = sq.step_records(rc.execution.id)
    first = min(r.started_at for r in records.values() if r.started_at is not None)
    started = {k: (r.started_at - first).total_seconds()
               for k, r in records.items() if r.started_at is not None}
    assert len(started) == WAR_ROOM_CONCURRENCY + 2
    assert started["probe"] < HOLD / 2, started
    assert max(started.values()) >= HOLD * 0.9, "one effect waited for a slot"

"""Actions for tests: a side effect with a vendor-side idempotency check, like a real API.

`test.effect` writes one row per idempotency key into a SQLite "vendor" database
(`FIRELANE_TEST_EFFECTS`) and logs every call, so tests can tell "called twice" from "happened
twice". `FIRELANE_TEST_SLEEP_SCALE` scales the sleeps (0 on a resume).
`FIRELANE_TEST_KILL_AT=<point>:<step>` makes the process SIGKILL itself at that point of that step:
`claim` (before the step is claimed), `before` (claimed, before the vendor call), `after` (the
effect is applied, its outcome not recorded), `finish` (the outcome is recorded).
Loaded into a subprocess with `FIRELANE_PLUGINS=tests.plugin_actions`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from typing import Any

from pydantic import BaseModel

from firelane.errors import ActionError
from firelane.registry import ActionContext, action


class EffectInputs(BaseModel):
    """Inputs of `test.effect`."""

    name: str
    before_seconds: float = 0.0
    after_seconds: float = 0.0


class EffectOutputs(BaseModel):
    """Outputs of `test.effect`."""

    name: str
    created: bool
    dry_run: bool


def _vendor() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["FIRELANE_TEST_EFFECTS"], timeout=10, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT, name TEXT, pid INTEGER)")
    return conn


def effects() -> list[tuple[str, str]]:
    """Every side effect that happened: (idempotency key, name)."""
    with _vendor() as conn:
        return list(conn.execute("SELECT key, name FROM effects ORDER BY rowid"))


def calls() -> list[tuple[str, str, int]]:
    """Every call the vendor received, duplicates included."""
    with _vendor() as conn:
        return list(conn.execute("SELECT key, name, pid FROM calls ORDER BY rowid"))


def _scale() -> float:
    return float(os.environ.get("FIRELANE_TEST_SLEEP_SCALE", "1"))


def _kill_at(point: str, step: str) -> None:
    if os.environ.get("FIRELANE_TEST_KILL_AT") == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def _hook_ledger() -> None:
    from firelane.store import Store

    claim, finish = Store.claim_step, Store.finish_step

    def claim_step(self: Store, incident_id: str, execution_id: str, step_id: str,
                   *args: Any) -> Any:
        _kill_at("claim", step_id)
        return claim(self, incident_id, execution_id, step_id, *args)

    def finish_step(self: Store, execution_id: str, step_id: str, *args: Any) -> Any:
        record = finish(self, execution_id, step_id, *args)
        _kill_at("finish", step_id)
        return record

    Store.claim_step = claim_step  # type: ignore[method-assign, assignment]
    Store.finish_step = finish_step  # type: ignore[method-assign, assignment]


if os.environ.get("FIRELANE_TEST_KILL_AT"):
    _hook_ledger()


async def _apply(inputs: EffectInputs, ctx: ActionContext) -> EffectOutputs:
    await asyncio.sleep(inputs.before_seconds * _scale())
    _kill_at("before", ctx.step_id)
    created = False
    if not ctx.dry_run:
        conn = _vendor()
        try:
            conn.execute("INSERT INTO calls VALUES (?, ?, ?)",
                         (ctx.idempotency_key, inputs.name, os.getpid()))
            created = conn.execute("INSERT OR IGNORE INTO effects VALUES (?, ?)",
                                   (ctx.idempotency_key, inputs.name)).rowcount == 1
        finally:
            conn.close()
    _kill_at("after", ctx.step_id)
    await asyncio.sleep(inputs.after_seconds * _scale())
    return EffectOutputs(name=inputs.name, created=created, dry_run=ctx.dry_run)


@action("test.effect")
async def effect(inputs: EffectInputs, ctx: ActionContext) -> EffectOutputs:
    """Make a side effect once per idempotency key (the vendor dedups on the key)."""
    return await _apply(inputs, ctx)


@action("test.change", destructive=True)
async def change(inputs: EffectInputs, ctx: ActionContext) -> EffectOutputs:
    """A destructive side effect (approvals and dry runs apply)."""
    return await _apply(inputs, ctx)


class LeakyInputs(BaseModel):
    """Inputs of `test.leaky` (none)."""


class LeakyOutputs(BaseModel):
    """Outputs of `test.leaky` (never returned)."""


@action("test.leaky")
async def leaky(inputs: LeakyInputs, ctx: ActionContext) -> LeakyOutputs:
    """A careless vendor client: logs the Slack token it used and fails with it in the error
    message (what the redaction filter and the store's redaction must catch). It logs to the
    flow run's logger, or to a plain module logger outside a run (the fast path)."""
    import logging

    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    from integrations.common import load_block
    from integrations.slack.block import SlackCredentials

    token = (await load_block(SlackCredentials, ctx, "slack")).token.get_secret_value()
    logger: Any
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = logging.getLogger("vendor.client")
    logger.error("calling Slack with token %s", token)
    try:
        raise RuntimeError(f"auth failed for {token}")
    except RuntimeError:
        logger.exception("vendor call failed")
    raise ActionError(f"Slack refused token {token} (Authorization: Bearer {token})")


class RepeatInputs(BaseModel):
    """Inputs of `test.repeat` (none)."""


class RepeatOutputs(BaseModel):
    """What the engine told `test.repeat` about this call."""

    repeat: bool
    attempt: int
    first_use: bool


@action("test.repeat")
async def repeat(inputs: RepeatInputs, ctx: ActionContext) -> RepeatOutputs:
    """Report whether the engine marked this call as a repeat (`repeat_since`), which makes a
    real action look for what an earlier try may have done before acting, or as the first use
    of its key (`first_use`), which lets it skip the look."""
    return RepeatOutputs(repeat=ctx.repeat_since is not None, attempt=ctx.attempt,
                         first_use=ctx.first_use)

"""Core actions that need no integration: notes on the timeline, waits, deliberate failures."""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError
from firelane.registry import ActionContext, action

__all__ = ["FailInputs", "NoteInputs", "NoteOutputs", "StatusInputs", "StatusOutputs",
           "WaitInputs", "WaitOutputs"]


class NoteInputs(BaseModel):
    """`core.note` inputs."""

    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=10_000, description="Text for the timeline")


class NoteOutputs(BaseModel):
    """`core.note` outputs."""

    message: str
    event_id: str


@action("core.note", read_only=True)
async def note(inputs: NoteInputs, ctx: ActionContext) -> NoteOutputs:
    """Add a note to the incident timeline.

    Example: `{uses: core.note, with: {message: "Paged {{ incident.commander }}"}}`
    """
    event = ctx.emit("runbook.note", inputs.message)
    return NoteOutputs(message=inputs.message, event_id=event.id)


class WaitInputs(BaseModel):
    """`core.wait` inputs."""

    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=86_400, description="How long to wait")


class WaitOutputs(BaseModel):
    """`core.wait` outputs."""

    waited_seconds: float


@action("core.wait", read_only=True, waits=True)
async def wait(inputs: WaitInputs, ctx: ActionContext) -> WaitOutputs:
    """Wait a number of seconds (let a deploy settle before verifying it).

    Example: `{uses: core.wait, with: {seconds: 30}}`
    """
    await asyncio.sleep(inputs.seconds)
    return WaitOutputs(waited_seconds=inputs.seconds)


class FailInputs(BaseModel):
    """`core.fail` inputs."""

    model_config = ConfigDict(extra="forbid")
    message: str = Field(default="failed on purpose", max_length=10_000)
    attempts: int = Field(default=0, ge=0, description=(
        "Fail only the first N attempts, then succeed (0: always fail); rehearses `retries`"))


class FailOutputs(BaseModel):
    """`core.fail` outputs (only when `attempts` let it succeed)."""

    attempt: int


@action("core.fail", read_only=True)
async def fail(inputs: FailInputs, ctx: ActionContext) -> FailOutputs:
    """Fail the step with a message: stop a runbook on a condition, or rehearse failure paths.

    Example: `{id: guard, uses: core.fail, if: "inputs.service == 'db'", with: {message:
    "manual only"}}`. When the condition is false the guard is skipped, and so is every step
    that needs it: give the step after it `if: always() and steps.guard.status != 'failed'`
    (`firelane lint` warns when a guard would skip the rest).
    """
    if inputs.attempts == 0 or ctx.attempt <= inputs.attempts:
        raise ActionError(inputs.message)
    return FailOutputs(attempt=ctx.attempt)


class StatusInputs(BaseModel):
    """`incident.set_status` inputs."""

    model_config = ConfigDict(extra="forbid")
    to: Literal["acknowledged", "mitigated", "resolved"] = Field(
        description="The status the incident moves to")
    reason: str = Field(default="", max_length=1000, description="Why (on the timeline)")


class StatusOutputs(BaseModel):
    """`incident.set_status` outputs."""

    status: str
    dry_run: bool = False


@action("incident.set_status")
async def set_status(inputs: StatusInputs, ctx: ActionContext) -> StatusOutputs:
    """Move the incident along its lifecycle (its page and ticket follow, as from any side);
    an incident already in that status is left as it is, so a re-run changes nothing.

    Example: `{uses: incident.set_status, needs: [verify], with: {to: resolved}}`
    """
    if ctx.move_incident is None:
        return StatusOutputs(status=inputs.to, dry_run=True)
    return StatusOutputs(status=await ctx.move_incident(inputs.to, inputs.reason))

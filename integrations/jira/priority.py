"""`jira.set_priority`: keep a ticket's priority in step with the incident's severity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from firelane.registry import ActionContext, action
from integrations.common import retrying
from integrations.jira.actions import _client
from integrations.jira.errors import call

__all__ = ["PriorityInputs", "PriorityOutputs"]


class PriorityInputs(BaseModel):
    """`jira.set_priority` inputs."""

    model_config = ConfigDict(extra="forbid")
    issue: str = Field(description="Issue key")
    priority: str = Field(min_length=1, description="Priority name, e.g. Highest or High")


class PriorityOutputs(BaseModel):
    """The priority before and after."""

    from_priority: str
    to_priority: str
    changed: bool


@action("jira.set_priority")
async def set_priority(inputs: PriorityInputs, ctx: ActionContext) -> PriorityOutputs:
    """Set an issue's priority by name (Jira refuses a name the site does not have); an issue
    already at that priority is left.
    Example: `{uses: jira.set_priority, with: {issue: "{{ steps.ticket.outputs.key }}",
    priority: Highest}}`"""

    async def attempt() -> PriorityOutputs:
        client = await _client(ctx)
        issue = await call(client.issue, inputs.issue)
        current = str(getattr(issue.fields.priority, "name", "") or "")
        if current.lower() == inputs.priority.lower():
            return PriorityOutputs(from_priority=current, to_priority=current, changed=False)
        await call(issue.update, fields={"priority": {"name": inputs.priority}})
        return PriorityOutputs(from_priority=current, to_priority=inputs.priority, changed=True)

    return await retrying(attempt, ctx)

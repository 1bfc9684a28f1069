"""`pagerduty.set_urgency`: keep a page's urgency in step with the incident's severity."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import VendorRejected
from firelane.registry import ActionContext, action
from integrations.common import retrying
from integrations.pagerduty.actions import _call, _creds

__all__ = ["UrgencyInputs", "UrgencyOutputs"]


class UrgencyInputs(BaseModel):
    """`pagerduty.set_urgency` inputs."""

    model_config = ConfigDict(extra="forbid")
    dedup_key: str = Field(min_length=1, description="The page's dedup key")
    urgency: Literal["high", "low"] = Field(description="high pages now; low may wait")


class UrgencyOutputs(BaseModel):
    """The PagerDuty incident and its urgency before and after."""

    incident_id: str
    from_urgency: str
    to_urgency: str
    changed: bool


@action("pagerduty.set_urgency")
async def set_urgency(inputs: UrgencyInputs, ctx: ActionContext) -> UrgencyOutputs:
    """Set the urgency of the PagerDuty incident a page opened (REST API token needed); one
    already at that urgency is left.
    Example: `{uses: pagerduty.set_urgency, with: {dedup_key: "{{ steps.page.outputs.dedup_key
    }}", urgency: high}}`"""

    async def attempt() -> UrgencyOutputs:
        client = (await _creds(ctx)).rest_client()
        rows = await _call(client.rget, "incidents", params={"incident_key": inputs.dedup_key})
        found = [r for r in rows if r.get("incident_key") == inputs.dedup_key]
        if not found:
            raise VendorRejected("pagerduty", f"no PagerDuty incident for the page "
                                 f"{inputs.dedup_key!r}")
        incident, current = found[0], str(found[0].get("urgency") or "")
        if current == inputs.urgency:
            return UrgencyOutputs(incident_id=str(incident["id"]), from_urgency=current,
                                  to_urgency=current, changed=False)
        await _call(client.rput, f"incidents/{incident['id']}", json={"incident": {
            "type": "incident_reference", "urgency": inputs.urgency}})
        return UrgencyOutputs(incident_id=str(incident["id"]), from_urgency=current,
                              to_urgency=inputs.urgency, changed=True)

    return await retrying(attempt, ctx)

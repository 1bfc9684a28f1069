"""What an approval asks, rendered once and shown the same everywhere.

An operator judges a request by what it will touch: the step, its action, the exact argv,
target, release directory or page (the step's `with:` inputs rendered with the template context
and completed from the service catalog, as the action will receive them), what happens on
Reject and on timeout, and where the incident's run and war room are. `ApprovalRequest` holds
that once; `markdown()` is the Prefect UI's resume form (and the stored message the CLI and the
timeline show), `slack()` the Slack request. A template in `approval.message` is rendered with
the same context; one that does not render is shown as written, with the reason, rather than
failing the step.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from firelane.errors import FirelaneError
from firelane.models import StepStatus
from firelane.registry import get_action
from firelane.runbook import Step
from firelane.templating import render_value
from flows.engine import RunContext
from flows.engine.context import template_context

__all__ = ["ApprovalRequest", "build_request", "dependents", "flow_run_url"]


def flow_run_url(flow_run_id: str) -> str:
    """The Prefect UI page of a flow run (`PREFECT_UI_URL`, derived from the API URL)."""
    from prefect.settings import PREFECT_UI_URL

    base = (PREFECT_UI_URL.value() or "").rstrip("/")
    return f"{base}/runs/flow-run/{flow_run_id}"


def dependents(rc: RunContext, step_id: str) -> list[str]:
    """Main steps that need `step_id`, directly or through others (they are skipped with it)."""
    found: list[str] = []
    reached = {step_id}
    for step in rc.loaded.runbook.steps:
        if reached & set(step.needs):
            reached.add(step.id)
            found.append(step.id)
    return found


def _shown(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return shlex.join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class ApprovalRequest:
    """One approval request, rendered: everything an approver needs to judge it."""

    incident: str
    step_id: str
    uses: str
    question: str
    inputs: dict[str, str]
    approvers: list[str]
    deadline: datetime
    on_reject: str
    description: str = ""
    war_room: str = ""
    links: dict[str, str] = field(default_factory=dict)
    effect: dict[str, str] = field(default_factory=dict)

    def _lines(self, code: str) -> list[str]:
        rows = [f"- {k}: {code}{v}{code}" for k, v in self.inputs.items()] or ["- (no inputs)"]
        return rows

    def _effect(self, code: str) -> list[str]:
        if not self.effect:
            return []
        return ["It will change:", *(f"- {k}: {code}{v}{code}" for k, v in self.effect.items())]

    def markdown(self) -> str:
        """The request as Markdown (Prefect UI resume form, CLI, timeline)."""
        links = " · ".join(f"[{k}]({v})" for k, v in self.links.items())
        out = [f"**{self.incident}: approve `{self.step_id}` ({self.uses})?** {self.question}"]
        if self.description:
            out.append(self.description)
        out += ["", *self._effect("`"), "It will run with:", *self._lines("`"), "",
                f"- Approve: `{self.step_id}` runs with exactly these inputs.",
                f"- Reject: {self.on_reject}",
                f"- No decision by {self.deadline:%Y-%m-%d %H:%M:%S} UTC: rejected "
                "automatically, as Reject.",
                f"- Approvers: {', '.join(self.approvers) or 'anyone'}."]
        if self.approvers:
            out.append("- Only a decision that proves who made it counts: the Slack buttons, "
                       "or an approver's own API token (`firelane approve "
                       f"{self.incident} {self.step_id} --token ...`). A decision in this "
                       "form is refused.")
        if self.war_room or links:
            out += ["", " · ".join(x for x in (
                f"War room: {self.war_room}" if self.war_room else "", links) if x)]
        return "\n".join(out)

    def slack(self) -> str:
        """The request as Slack mrkdwn (links as `<url|text>`)."""
        who = ", ".join(f"<@{a}>" if a.startswith("U") else a for a in self.approvers)
        links = " · ".join(f"<{v}|{k}>" for k, v in self.links.items())
        out = [f":raised_hand: *{self.incident}: approve `{self.step_id}` ({self.uses})?* "
               f"{self.question}", *self._effect("`"), "It will run with:", *self._lines("`"),
               f"*Reject:* {self.on_reject}",
               f"*No decision by {self.deadline:%H:%M} UTC:* rejected automatically.",
               f"Approvers: {who or 'anyone in this channel'}"]
        if links:
            out.append(links)
        return "\n".join(out)


def _war_room(rc: RunContext) -> str:
    for step in rc.loaded.runbook.all_steps():
        record = rc.records.get(step.id)
        if step.uses == "slack.create_channel" and record is not None \
                and record.status is StepStatus.SUCCEEDED and record.outputs:
            return f"#{record.outputs.get('name')} ({record.outputs.get('id')})"
    return ""


def _bridge(rc: RunContext) -> str | None:
    for step in rc.loaded.runbook.all_steps():
        record = rc.records.get(step.id)
        if step.uses.startswith("video.") and record is not None and record.outputs \
                and record.outputs.get("url"):
            return str(record.outputs["url"])
    return None


def _question(rc: RunContext, step: Step) -> str:
    spec = step.approval
    message = spec.message if spec is not None else ""
    if not message:
        return "Run it?"
    try:
        return str(render_value(message, template_context(rc), f"steps.{step.id}.approval"))
    except FirelaneError as exc:
        return f"{message} (message not rendered: {exc})"


def _inputs(step: Step, rendered: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The inputs as the action receives them (its model's defaults filled in), and what a
    run with them will change (the action's preview, e.g. a rollback's from/to release)."""
    effect: dict[str, str] = {}
    try:
        spec = get_action(step.uses)
        model = spec.inputs.model_validate(rendered)
        full = model.model_dump(mode="json")
        effect = spec.describe_effect(model)
    except (FirelaneError, ValueError):
        full = dict(rendered)
    return {k: _shown(v) for k, v in full.items() if v is not None}, effect


def build_request(rc: RunContext, step: Step, rendered: dict[str, Any], deadline: datetime,
                  runs: dict[str, str] | None = None) -> ApprovalRequest:
    """The request for `step`, whose inputs rendered to `rendered`; `runs` are the Prefect
    runs to link (label → flow run id), e.g. the incident's run."""
    spec = step.approval
    assert spec is not None
    after = dependents(rc, step.id)
    on_reject = f"`{step.id}` is skipped" + (
        f", and so are the steps that need it ({', '.join(after)})." if after else ".")
    links = {label: flow_run_url(run) for label, run in (runs or {}).items()}
    bridge = _bridge(rc)
    if bridge:
        links["bridge"] = bridge
    inputs, effect = _inputs(step, rendered)
    return ApprovalRequest(
        incident=f"INC-{rc.incident.number}", step_id=step.id, uses=step.uses,
        question=_question(rc, step), inputs=inputs, effect=effect,
        approvers=list(spec.approvers), deadline=deadline, on_reject=on_reject,
        description=step.description, war_room=_war_room(rc), links=links)

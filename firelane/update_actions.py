"""Update actions: `incident.update` (a runbook posts an update for stakeholders, such as the
first "investigating" that goes out with the page), and the two steps of the
`stakeholder-update` runbook that deliver one: `updates.prepare` (render it, list its
destinations) and `updates.publish` (a public update goes out: behind an approval that shows
its text unless it may publish alone)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ConfigError
from firelane.registry import ActionContext, action
from firelane.updates import MESSAGE_MAX, Audience, Impact, UpdateDraft, UpdateStatus

__all__ = ["PostInputs", "PostOutputs", "PrepareInputs", "PrepareOutputs", "PublishInputs",
           "PublishOutputs"]


def _desk(ctx: ActionContext) -> Any:
    if ctx.desk is None:
        raise ConfigError("this run has no update desk (a plan or dry run posts nothing)")
    return ctx.desk


class PostInputs(BaseModel):
    """`incident.update` inputs."""

    model_config = ConfigDict(extra="forbid")
    status: UpdateStatus = Field(description="investigating, identified, monitoring, resolved")
    message: str = Field(min_length=1, max_length=MESSAGE_MAX)
    affected: dict[str, Impact] = Field(default_factory=dict,
                                        description="Service → degraded, partial_outage, "
                                        "major_outage (default: the incident's service)")
    audience: Audience = Audience.INTERNAL
    publish_alone: bool = Field(default=False,
                                description="A public update goes out without approval")


class PostOutputs(BaseModel):
    """The update posted."""

    update_id: str
    seq: int
    state: str
    dry_run: bool = False


@action("incident.update")
async def post_update(inputs: PostInputs, ctx: ActionContext) -> PostOutputs:
    """Post an update for stakeholders; the `stakeholder-update` runbook delivers it. A re-run
    of the step posts nothing new.

    Example: `{uses: incident.update, with: {status: investigating, message: "We are looking
    into errors on checkout."}}`
    """
    if ctx.dry_run or ctx.desk is None:
        return PostOutputs(update_id="", seq=0, state="not posted (dry run)", dry_run=True)
    draft = UpdateDraft(**inputs.model_dump())
    posted = await _desk(ctx).post(draft)
    return PostOutputs(update_id=posted.id, seq=posted.seq, state=posted.state.value)


class PrepareInputs(BaseModel):
    """`updates.prepare` inputs."""

    model_config = ConfigDict(extra="forbid")
    update: str = Field(min_length=1, description="The update's id")


class PrepareOutputs(BaseModel):
    """The update's text and destinations."""

    update_id: str
    seq: int
    status: str
    audience: str
    public: bool
    subject: str
    body: str
    channels: list[str]
    emails: list[str]
    statuspage: bool
    components: dict[str, str]
    needs_approval: bool
    title: str = Field(default="", description="The public title (worst impact and services)")
    status_page_url: str | None = None


@action("updates.prepare", read_only=True)
async def prepare(inputs: PrepareInputs, ctx: ActionContext) -> PrepareOutputs:
    """Render an update from its templates and list where it goes (read-only)."""
    ready = await _desk(ctx).prepare(inputs.update)
    update = ready.update
    return PrepareOutputs(
        update_id=update.id, seq=update.seq, status=update.status.value,
        audience=update.audience.value, public=update.public, subject=ready.subject,
        body=ready.body, channels=ready.channels, emails=ready.emails,
        statuspage=ready.statuspage, components=ready.components,
        needs_approval=ready.needs_approval, title=ready.title,
        status_page_url=ready.status_page_url)


class PublishInputs(BaseModel):
    """`updates.publish` inputs."""

    model_config = ConfigDict(extra="forbid")
    update: str = Field(min_length=1, description="The update's id")
    text: str = Field(default="", description="The text that will be published (shown in "
                      "the approval request)")
    approved: bool = Field(default=True, description="False records the update as rejected")


class PublishOutputs(BaseModel):
    """Where the update stands now."""

    update_id: str
    state: str


def _preview(inputs: Any) -> dict[str, str]:
    return {"publishes": inputs.text or f"update {inputs.update}"}


@action("updates.publish", preview=_preview)
async def publish(inputs: PublishInputs, ctx: ActionContext) -> PublishOutputs:
    """Publish a public update (the status page follows), or record it as rejected."""
    update = await _desk(ctx).publish(inputs.update, inputs.approved)
    return PublishOutputs(update_id=update.id, state=update.state.value)

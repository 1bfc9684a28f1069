"""Jira actions. Every create is found again by a label made from the idempotency key."""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import VendorRejected, VendorUnavailable
from firelane.registry import ActionContext, action
from firelane.settings import Settings
from integrations.common import load_block, retrying
from integrations.jira.errors import call
from integrations.jira.limits import fit_summary

__all__ = ["CreateIssueInputs", "IssueOutputs"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _label(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)[:255]


def _marker(key: str) -> str:
    return f"[firelane:{key}]"


async def _client(ctx: ActionContext) -> Any:
    from integrations.jira.block import JiraCredentials

    creds: JiraCredentials = await load_block(JiraCredentials, ctx, "jira")
    return await call(creds.get_client)


async def _find_labelled(client: Any, label: str) -> list[Any]:
    return list(await call(client.search_issues, f'labels = "{label}"', maxResults=50))


class CreateIssueInputs(_In):
    """`jira.create_issue` inputs."""

    project: str = Field(description="Project key", json_schema_extra={"catalog": "jira_project"})
    summary: str = Field(min_length=1, description=(
        "Title; fitted to one line of 255 UTF-16 units, the full text into the description"))
    description: str = Field(default="", description="Body (wiki text)")
    issue_type: str = Field(default="Incident", description="Issue type name")
    labels: list[str] = Field(default_factory=list, description="Extra labels")
    due: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                            description="Due date YYYY-MM-DD")


class IssueOutputs(BaseModel):
    """A Jira issue that exists (created now or found again)."""

    key: str
    id: str
    url: str
    created: bool


def _browse(creds_url: str, key: str) -> str:
    return f"{creds_url.rstrip('/')}/browse/{key}"


def _index_wait() -> float:
    return Settings.from_env().jira_index_wait_seconds


class _Creator:
    """Check-then-create with memory across retries: after a create whose outcome is unknown
    (5xx, timeout, dropped connection), the next attempt waits for Jira's search index to show
    the label (Jira documents that new issues may not be searchable at once) before creating.
    A step tried before (`repeat_since`: a worker that died or stalled mid-call, or a step
    retry) starts out unknown: its earlier create may have landed and not be indexed yet.
    The first pass of a step's first use of its key (`first_use`) creates without searching:
    no issue can carry the label yet; every later pass searches."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ambiguous: set[str] = set()
        self.repeat = ctx.repeat_since is not None
        self.fresh, self._unused = False, ctx.first_use and not self.repeat

    def begin(self) -> None:
        """A pass starts (each retry is one): only the first may skip the search."""
        self.fresh, self._unused = self._unused, False

    async def find(self, client: Any, label: str) -> list[Any]:
        if self.fresh:
            return []
        found = await _find_labelled(client, label)
        if found or not (self.repeat or label in self.ambiguous):
            return found
        deadline = time.monotonic() + _index_wait()
        while not found and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            found = await _find_labelled(client, label)
        return found

    async def create(self, client: Any, fields: dict[str, Any], label: str,
                     dry: bool) -> IssueOutputs:
        base = client.server_url
        for issue in await self.find(client, label):
            return IssueOutputs(key=issue.key, id=str(issue.id), url=_browse(base, issue.key),
                                created=False)
        if dry:
            return IssueOutputs(key="DRY-RUN", id="0", url="", created=False)
        try:
            issue = await call(client.create_issue, fields=fields)
        except VendorUnavailable:
            self.ambiguous.add(label)
            raise
        return IssueOutputs(key=issue.key, id=str(issue.id), url=_browse(base, issue.key),
                            created=True)


@action("jira.create_issue", link="ticket")
async def create_issue(inputs: CreateIssueInputs, ctx: ActionContext) -> IssueOutputs:
    """Open a Jira issue for the incident, or find the one this step already opened.

    The issue carries a label made from the step's idempotency key; the label is searched
    before creating, so a crash or a lost response never yields a second ticket.
    Example: `{uses: jira.create_issue, with: {summary: "{{ incident.title }}"}}`
    """
    label = _label(ctx.idempotency_key)
    summary, description = fit_summary(ctx, inputs.summary, inputs.description)
    fields: dict[str, Any] = {"project": {"key": inputs.project}, "summary": summary,
                              "description": description,
                              "issuetype": {"name": inputs.issue_type},
                              "labels": [*inputs.labels, "firelane", label]}
    if inputs.due:
        fields["duedate"] = inputs.due

    creator = _Creator(ctx)

    async def attempt() -> IssueOutputs:
        creator.begin()
        return await creator.create(await _client(ctx), fields, label, ctx.dry_run)

    return await retrying(attempt, ctx)


class CommentInputs(_In):
    """`jira.add_comment` inputs."""

    issue: str = Field(description="Issue key, e.g. OPS-12")
    body: str = Field(min_length=1, description="Comment text")


class CommentOutputs(BaseModel):
    """The comment that exists."""

    id: str
    created: bool


@action("jira.add_comment")
async def add_comment(inputs: CommentInputs, ctx: ActionContext) -> CommentOutputs:
    """Comment on an issue once: the comment ends with a marker of the step's key, and an
    existing comment with that marker is reused."""
    marker = _marker(ctx.idempotency_key)

    async def attempt() -> CommentOutputs:
        client = await _client(ctx)
        for comment in await call(client.comments, inputs.issue):
            if marker in comment.body:
                return CommentOutputs(id=str(comment.id), created=False)
        made = await call(client.add_comment, inputs.issue, f"{inputs.body}\n\n{marker}")
        return CommentOutputs(id=str(made.id), created=True)

    return await retrying(attempt, ctx)


class TransitionInputs(_In):
    """`jira.transition` inputs."""

    issue: str = Field(description="Issue key")
    to: str = Field(description="Target status or transition name, e.g. Done")


class TransitionOutputs(BaseModel):
    """Where the issue was and is."""

    from_status: str
    to_status: str
    changed: bool


@action("jira.transition")
async def transition(inputs: TransitionInputs, ctx: ActionContext) -> TransitionOutputs:
    """Move an issue through its workflow; an issue already in the target status is left."""

    async def attempt() -> TransitionOutputs:
        client = await _client(ctx)
        issue = await call(client.issue, inputs.issue)
        current = str(issue.fields.status.name)
        if current.lower() == inputs.to.lower():
            return TransitionOutputs(from_status=current, to_status=current, changed=False)
        options = await call(client.transitions, inputs.issue)
        chosen = next((t for t in options if inputs.to.lower() in (
            t["name"].lower(), t.get("to", {}).get("name", "").lower())), None)
        if chosen is None:
            names = ", ".join(t["name"] for t in options) or "none"
            raise VendorRejected("jira", f"{inputs.issue} cannot go from {current} to "
                                 f"{inputs.to} (available: {names})")
        await call(client.transition_issue, inputs.issue, chosen["id"])
        return TransitionOutputs(from_status=current, to_status=inputs.to, changed=True)

    return await retrying(attempt, ctx)


class AttachInputs(_In):
    """`jira.attach_file` inputs."""

    issue: str = Field(description="Issue key")
    filename: str = Field(min_length=1, description="File name shown in Jira")
    content: str = Field(description="File content (text, e.g. the timeline report)")


class AttachOutputs(BaseModel):
    """The attachment."""

    id: str
    size: int
    created: bool


@action("jira.attach_file")
async def attach_file(inputs: AttachInputs, ctx: ActionContext) -> AttachOutputs:
    """Attach a text file to an issue; an identical attachment (name and size) is reused."""
    data = inputs.content.encode("utf-8")

    async def attempt() -> AttachOutputs:
        client = await _client(ctx)
        issue = await call(client.issue, inputs.issue)
        for existing in issue.fields.attachment or []:
            if existing.filename == inputs.filename and int(existing.size) == len(data):
                return AttachOutputs(id=str(existing.id), size=len(data), created=False)
        made = await call(client.add_attachment, inputs.issue, io.BytesIO(data),
                          inputs.filename)
        return AttachOutputs(id=str(made.id), size=int(made.size), created=True)

    return await retrying(attempt, ctx)


class LinkInputs(_In):
    """`jira.link_issues` inputs."""

    inward: str = Field(description="Issue key on the inward side")
    outward: str = Field(description="Issue key on the outward side")
    type: str = Field(default="Relates", description="Link type name")


class LinkOutputs(BaseModel):
    """The link."""

    linked: bool


@action("jira.link_issues")
async def link_issues(inputs: LinkInputs, ctx: ActionContext) -> LinkOutputs:
    """Link two issues (for example an action item to its incident ticket)."""

    async def attempt() -> LinkOutputs:
        client = await _client(ctx)
        await call(client.create_issue_link, inputs.type, inputs.inward, inputs.outward)
        return LinkOutputs(linked=True)

    return await retrying(attempt, ctx)


class ActionItemSpec(BaseModel):
    """One postmortem action item."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, description="Fitted to a Jira summary, in full below it")
    owner: str | None = None
    due: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class ActionItemsInputs(_In):
    """`jira.create_action_items` inputs."""

    project: str = Field(description="Project key", json_schema_extra={"catalog": "jira_project"})
    parent: str | None = Field(default=None, description="Incident ticket to link them to")
    items: list[ActionItemSpec] = Field(min_length=1, description="The action items")


class ActionItemsOutputs(BaseModel):
    """The issues that exist for the items, in order."""

    keys: list[str]
    created: int


@action("jira.create_action_items")
async def create_action_items(inputs: ActionItemsInputs,
                              ctx: ActionContext) -> ActionItemsOutputs:
    """Open one Task per action item (labelled `firelane-action-item`, linked to the parent),
    each found again by its own label on a re-run; Firelane tracks each one for reminders."""

    creator = _Creator(ctx)
    sent = [fit_summary(ctx, i.title, f"Owner: {i.owner or 'unassigned'}") for i in inputs.items]

    async def attempt() -> ActionItemsOutputs:
        creator.begin()
        client = await _client(ctx)
        ctx.action_items.clear()
        keys, created = [], 0
        for n, item in enumerate(inputs.items):
            label = _label(f"{ctx.idempotency_key}-{n}")
            fields: dict[str, Any] = {
                "project": {"key": inputs.project}, "summary": sent[n][0],
                "issuetype": {"name": "Task"},
                "labels": ["firelane", "firelane-action-item", label], "description": sent[n][1]}
            if item.due:
                fields["duedate"] = item.due
            out = await creator.create(client, fields, label, ctx.dry_run)
            keys.append(out.key)
            ctx.track_action_item(item.title, item.owner, datetime.fromisoformat(
                item.due).replace(tzinfo=UTC) if item.due else None, out.key)
            created += int(out.created)
            if out.created and inputs.parent:
                await call(client.create_issue_link, "Relates", out.key, inputs.parent)
        return ActionItemsOutputs(keys=keys, created=created)

    return await retrying(attempt, ctx)


class SearchInputs(_In):
    """`jira.search` inputs."""

    jql: str = Field(min_length=1, description="JQL, e.g. labels = firelane AND status != Done")
    max_results: int = Field(default=50, ge=1, le=500, description="At most this many")


class SearchOutputs(BaseModel):
    """Matching issues."""

    issues: list[dict[str, Any]]


@action("jira.search", read_only=True)
async def search(inputs: SearchInputs, ctx: ActionContext) -> SearchOutputs:
    """Search issues with JQL (key, summary, status, due date, labels of each)."""

    async def attempt() -> SearchOutputs:
        client = await _client(ctx)
        found = await call(client.search_issues, inputs.jql, maxResults=inputs.max_results)
        return SearchOutputs(issues=[{
            "key": i.key, "summary": i.fields.summary, "status": str(i.fields.status.name),
            "due": getattr(i.fields, "duedate", None), "labels": list(i.fields.labels or [])}
            for i in found])

    return await retrying(attempt, ctx)


class HistoryInputs(_In):
    """`jira.history` inputs."""

    issue: str = Field(description="Issue key")


class HistoryOutputs(BaseModel):
    """Status changes and comments, oldest first."""

    entries: list[dict[str, Any]]


@action("jira.history", read_only=True)
async def history(inputs: HistoryInputs, ctx: ActionContext) -> HistoryOutputs:
    """Read an issue's status transitions (changelog) and comments, for the timeline."""

    async def attempt() -> HistoryOutputs:
        client = await _client(ctx)
        issue = await call(client.issue, inputs.issue, expand="changelog")
        out: list[dict[str, Any]] = []
        for h in getattr(getattr(issue, "changelog", None), "histories", []) or []:
            for item in h.items:
                if item.field == "status":
                    out.append({"at": h.created, "kind": "jira.transition",
                                "actor": getattr(h.author, "displayName", None),
                                "summary": f"{inputs.issue}: {item.fromString} → "
                                           f"{item.toString}"})
        comments = getattr(getattr(issue.fields, "comment", None), "comments", []) or []
        for c in comments:
            out.append({"at": c.created, "kind": "jira.comment",
                        "actor": getattr(c.author, "displayName", None),
                        "summary": f"{inputs.issue} comment: {str(c.body)[:300]}"})
        return HistoryOutputs(entries=sorted(out, key=lambda e: str(e["at"])))

    return await retrying(attempt, ctx)

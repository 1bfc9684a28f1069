"""Slack actions. The channel name is the idempotency check for channels; a message carries
the step's key in its metadata, so a re-run finds it instead of posting twice."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import VendorRejected
from firelane.registry import ActionContext, action
from integrations.common import retrying
from integrations.limits import fit_for
from integrations.slack.api import call, client_for
from integrations.slack.limits import BOOKMARK_TITLE, MESSAGE, TOPIC, channel_name
from integrations.slack.overflow import post_in_thread
from integrations.slack.upload import upload_once

__all__ = ["channel_name"]

_OK_ERRORS = frozenset({"already_in_channel", "already_archived", "already_pinned"})


async def user_email(user_id: str, ctx: ActionContext) -> str | None:
    """The email of a Slack user (needs users:read.email), or None when Slack has none."""
    client = await client_for(ctx)
    got = await call(client.users_info, user=user_id)
    email = ((got.get("user") or {}).get("profile") or {}).get("email")
    return str(email) if email else None


async def update_message(channel: str, ts: str, text: str, blocks: list[dict[str, Any]],
                         ctx: ActionContext) -> None:
    """Replace a message Firelane posted (`chat.update`): `blocks` replace the old blocks
    wholesale, so a list without an `actions` block removes the buttons. Slack refuses other
    people's messages (`cant_update_message`) and unknown ones (`message_not_found`)."""
    client = await client_for(ctx)
    await call(client.chat_update, channel=channel, ts=ts, text=text, blocks=blocks)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelInputs(_In):
    """`slack.create_channel` inputs."""

    name: str | None = Field(default=None, description="Default: inc-<number>-<service>")
    is_private: bool = False


class ChannelOutputs(BaseModel):
    """The incident channel."""

    id: str
    name: str
    created: bool
    url: str = Field(default="", description=(
        "The channel in the workspace: https://<workspace>.slack.com/archives/<id>"))


_WORKSPACES: dict[tuple[str, int], str] = {}


async def _channel_url(client: Any, channel_id: str) -> str:
    """The channel's web address. `auth.test` names the workspace's URL (no scope needed);
    it is asked once per token, and the sandbox answers with its own `sandbox.slack.local`."""
    key = (str(client.base_url), hash(client.token))
    workspace = _WORKSPACES.get(key)
    if workspace is None:
        got = await call(client.auth_test)
        workspace = _WORKSPACES[key] = str(got.get("url") or "")
    return f"{workspace.rstrip('/')}/archives/{channel_id}" if workspace else ""


async def _find_channel(client: Any, name: str) -> dict[str, Any] | None:
    cursor = None
    while True:
        page = await call(client.conversations_list, limit=1000, cursor=cursor,
                          types="public_channel,private_channel")
        for found in page["channels"]:
            if found["name"] == name:
                return dict(found)
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None


@action("slack.create_channel", link="channel")
async def create_channel(inputs: ChannelInputs, ctx: ActionContext) -> ChannelOutputs:
    """Open the incident's war-room channel, or reuse it when the name already exists. A
    private incident's channel is always private.

    Example: `{uses: slack.create_channel}` → `#inc-42-checkout`
    """
    name = channel_name(inputs.name or f"inc-{ctx.incident.number}-{ctx.incident.service}")

    async def attempt() -> ChannelOutputs:
        client = await client_for(ctx)
        try:
            made = await call(client.conversations_create, name=name,
                              is_private=inputs.is_private or ctx.incident.private)
            cid = made["channel"]["id"]
            return ChannelOutputs(id=cid, name=name, created=True,
                                  url=await _channel_url(client, cid))
        except VendorRejected as exc:
            if "name_taken" not in str(exc):
                raise
        found = await _find_channel(client, name)
        if found is None:
            raise VendorRejected("slack", f"#{name} is taken but not visible to the bot")
        return ChannelOutputs(id=found["id"], name=name, created=False,
                              url=await _channel_url(client, found["id"]))

    return await retrying(attempt, ctx)


class InviteInputs(_In):
    """`slack.invite` inputs."""

    channel: str = Field(description="Channel id")
    users: list[str] = Field(min_length=1, description="Slack user ids or email addresses")


class InviteOutputs(BaseModel):
    """Who is in now."""

    user_ids: list[str]
    not_found: list[str]


@action("slack.invite")
async def invite(inputs: InviteInputs, ctx: ActionContext) -> InviteOutputs:
    """Invite people (ids or emails, e.g. `steps.oncall.outputs.emails`); people already in
    the channel are fine, unknown emails are reported, not fatal."""

    async def attempt() -> InviteOutputs:
        client = await client_for(ctx)
        ids, missing = [], []
        for who in inputs.users:
            if "@" not in who:
                ids.append(who)
                continue
            try:
                ids.append((await call(client.users_lookupByEmail, email=who))["user"]["id"])
            except VendorRejected as exc:
                if "users_not_found" not in str(exc):
                    raise
                missing.append(who)
        if ids:
            try:
                await call(client.conversations_invite, channel=inputs.channel, users=ids)
            except VendorRejected as exc:
                if not any(e in str(exc) for e in _OK_ERRORS):
                    raise
        return InviteOutputs(user_ids=ids, not_found=missing)

    return await retrying(attempt, ctx)


class TopicInputs(_In):
    """`slack.set_topic` inputs."""

    channel: str = Field(description="Channel id")
    topic: str = Field(description="The topic (fitted to Slack's 250 characters)")


class TopicOutputs(BaseModel):
    """The topic set."""

    topic: str


@action("slack.set_topic")
async def set_topic(inputs: TopicInputs, ctx: ActionContext) -> TopicOutputs:
    """Set the channel topic (setting the same topic again is harmless)."""

    topic = fit_for(ctx, TOPIC, inputs.topic)

    async def attempt() -> TopicOutputs:
        client = await client_for(ctx)
        await call(client.conversations_setTopic, channel=inputs.channel, topic=topic)
        return TopicOutputs(topic=topic)

    return await retrying(attempt, ctx)


class MessageInputs(_In):
    """`slack.post_message` inputs."""

    channel: str = Field(description="Channel id, or a user id for their DM with the app")
    text: str = Field(min_length=1, description="Text (also the notification fallback)")
    blocks: list[dict[str, Any]] = Field(default_factory=list, description="Block Kit blocks")
    pin: bool = Field(default=False, description="Pin the message")


class MessageOutputs(BaseModel):
    """The message."""

    channel: str
    ts: str
    created: bool


async def _find_message(client: Any, channel: str, key: str) -> str | None:
    history = await call(client.conversations_history, channel=channel, limit=200,
                         include_all_metadata=True)
    for message in history["messages"]:
        payload = ((message.get("metadata") or {}).get("event_payload") or {})
        if payload.get("firelane_key") == key:
            return str(message["ts"])
    return None


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


async def _dm_channel(client: Any, channel: str) -> str:
    """The channel to use for `channel`: a user id becomes the id of their DM with the app
    (`conversations.open`), since reading a conversation's history needs its own id."""
    if not _USER_ID.match(channel):
        return channel
    opened = await call(client.conversations_open, users=channel)
    return str(opened["channel"]["id"])


@action("slack.post_message")
async def post_message(inputs: MessageInputs, ctx: ActionContext) -> MessageOutputs:
    """Post to a channel once (the step's key rides in the message metadata)."""
    metadata = {"event_type": "firelane_step",
                "event_payload": {"firelane_key": ctx.idempotency_key}}

    text = fit_for(ctx, MESSAGE, inputs.text)

    async def attempt() -> MessageOutputs:
        client = await client_for(ctx)
        channel = await _dm_channel(client, inputs.channel)
        ts = await _find_message(client, channel, ctx.idempotency_key)
        created = ts is None
        if ts is None:
            sent = await call(client.chat_postMessage, channel=channel,
                              text=text, blocks=inputs.blocks or None,
                              metadata=metadata)
            ts = str(sent["ts"])
        if text != inputs.text:
            await post_in_thread(call, client, channel, ts, inputs.text,
                                 ctx.idempotency_key)
        if inputs.pin:
            try:
                await call(client.pins_add, channel=channel, timestamp=ts)
            except VendorRejected as exc:
                if "already_pinned" not in str(exc):
                    raise
        return MessageOutputs(channel=channel, ts=ts, created=created)

    return await retrying(attempt, ctx)


class BookmarkInputs(_In):
    """`slack.add_bookmark` inputs."""

    channel: str = Field(description="Channel id")
    title: str = Field(min_length=1, description="Bookmark title")
    link: str = Field(pattern=r"^https?://", description="URL")


class BookmarkOutputs(BaseModel):
    """The bookmark."""

    id: str


@action("slack.add_bookmark")
async def add_bookmark(inputs: BookmarkInputs, ctx: ActionContext) -> BookmarkOutputs:
    """Bookmark a link in the channel header (ticket, page, bridge)."""
    title = fit_for(ctx, BOOKMARK_TITLE, inputs.title)

    async def attempt() -> BookmarkOutputs:
        client = await client_for(ctx)
        made = await call(client.bookmarks_add, channel_id=inputs.channel, title=title,
                          type="link", link=inputs.link)
        return BookmarkOutputs(id=made["bookmark"]["id"])

    return await retrying(attempt, ctx)


class UploadInputs(_In):
    """`slack.upload_file` inputs."""

    channel: str = Field(description="Channel id")
    filename: str = Field(min_length=1, description="File name")
    content: str = Field(description="File content (text)")
    title: str | None = Field(default=None, description="Title shown in Slack")
    comment: str | None = Field(default=None, description="Message posted with the file")


class UploadOutputs(BaseModel):
    """The uploaded file."""

    file_id: str


@action("slack.upload_file")
async def upload_file(inputs: UploadInputs, ctx: ActionContext) -> UploadOutputs:
    """Upload a text file to the channel once (Slack's three-call external upload flow).

    A lost answer is checked with `files.info`; a re-run finds its file with `files.list`."""
    client = await client_for(ctx)
    done = await upload_once(ctx, client, inputs.channel, inputs.filename,
                             inputs.content.encode(), inputs.title or inputs.filename,
                             inputs.comment)
    return UploadOutputs(file_id=done.file_id)


class HistoryInputs(_In):
    """`slack.history` inputs."""

    channel: str = Field(description="Channel id")
    limit: int = Field(default=200, ge=1, le=1000, description="At most this many")


class HistoryOutputs(BaseModel):
    """Messages, oldest first."""

    messages: list[dict[str, Any]]


@action("slack.history", read_only=True)
async def history(inputs: HistoryInputs, ctx: ActionContext) -> HistoryOutputs:
    """Read the channel's messages, oldest first (text, user, ts, pinned, reactions, files).

    `files` names the files shared with each message."""

    async def attempt() -> HistoryOutputs:
        client = await client_for(ctx)
        got = await call(client.conversations_history, channel=inputs.channel,
                         limit=inputs.limit)
        return HistoryOutputs(messages=[{
            "ts": m["ts"], "user": m.get("user"), "text": m.get("text", ""),
            "pinned": bool(m.get("pinned") or m.get("pinned_to")),
            "reactions": [r.get("name") for r in m.get("reactions") or []],
            "files": [f.get("name") for f in m.get("files") or []]}
            for m in reversed(got["messages"])])

    return await retrying(attempt, ctx)


class ArchiveInputs(_In):
    """`slack.archive` inputs."""

    channel: str = Field(description="Channel id")


class ArchiveOutputs(BaseModel):
    """Archived (now or before)."""

    archived: bool


@action("slack.archive", destructive=True)
async def archive(inputs: ArchiveInputs, ctx: ActionContext) -> ArchiveOutputs:
    """Archive the channel after the incident; an archived channel stays archived."""
    if ctx.dry_run:
        return ArchiveOutputs(archived=False)

    async def attempt() -> ArchiveOutputs:
        client = await client_for(ctx)
        try:
            await call(client.conversations_archive, channel=inputs.channel)
        except VendorRejected as exc:
            if "already_archived" not in str(exc):
                raise
        return ArchiveOutputs(archived=True)

    return await retrying(attempt, ctx)

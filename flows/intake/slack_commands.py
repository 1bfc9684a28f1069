"""`POST /slack/commands`: the `/incident` slash command, verified with the Slack signing secret.

`/incident declare SEV2 web checkout 5xx above 20%` opens an incident and starts its runbook
(the one whose `match:` fits, else the intake's default); `ack`, `sev`, `role`, `note`,
`status`, `resolve` and `show` act on the incident whose war room the command is typed in, or
on the `INC-n` named in it; `list` shows the open incidents; `help` says all this. The verbs are
`firelane.commands`, the same as the CLI, the API and the Prefect UI. A signed request proves
who typed it: changes are made by the Slack user, verified.

Slack wants an answer within 3 seconds. A command that finishes within `INLINE_SECONDS` is
answered directly; otherwise the answer is an acknowledgement and the result is posted to the
request's `response_url` when it is ready (a slow store cannot make Slack show an error).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import Clock

from firelane.catalog import serving_catalog
from firelane.commands import Actor, IncidentCommands
from firelane.errors import ConfigError
from firelane.loader import load_valid_runbooks
from firelane.models import (
    Alert,
    Execution,
    Incident,
    IncidentDraft,
    IncidentStatus,
    Role,
    Severity,
)
from firelane.settings import Settings
from firelane.store import Store
from firelane.updates import parse_update_words
from flows.intake.slack_interactions import SecretSource, verified_body

__all__ = ["HELP", "INLINE_SECONDS", "add_slack_command_route", "parse_command"]

log = logging.getLogger("firelane.intake")
INLINE_SECONDS = 2.0
HELP = """*`/incident` commands*
• `declare [private] SEV1-4 <service> <title>`: open an incident and start its runbook
• `ack`: acknowledge (the first to acknowledge becomes commander)
• `sev SEV1-4 [reason]`: change the severity
• `role commander|communicator|investigator @person`
• `note <text>`: add a note to the timeline
• `update [public] investigating|identified|monitoring|resolved [web=partial_outage] <message>`:
  tell stakeholders (a public update waits for approval unless it may publish alone)
• `status acknowledged|mitigated|resolved|closed [reason]`, `resolve [reason]`
• `show`, `list` (open incidents, most severe first), `help`
In a war room these act on its incident; elsewhere add `INC-7`."""
_REF = re.compile(r"^INC-\d+$", re.IGNORECASE)
_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|([^>]+))?>$")
Planner = Callable[[Alert, Incident], Execution | None]


@dataclass(frozen=True)
class Command:
    """One `/incident` request: who, where, the verb and its words."""

    user_id: str
    user_name: str
    channel_id: str
    verb: str
    words: list[str]
    ref: str | None
    response_url: str


def parse_command(body: bytes) -> Command:
    """The slash command in a signed form body (ValueError when it is not one)."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    if "user_id" not in form or "command" not in form:
        raise ValueError("not a slash command (no user_id or command field)")
    words = form.get("text", "").split()
    refs = [w for w in words if _REF.match(w)]
    rest = [w for w in words if not _REF.match(w)]
    return Command(user_id=form["user_id"], user_name=form.get("user_name", ""),
                   channel_id=form.get("channel_id", ""),
                   verb=rest[0].lower() if rest else "help", words=rest[1:],
                   ref=refs[0].upper() if refs else None,
                   response_url=form.get("response_url", ""))


def _slack_id(word: str) -> str | None:
    found = _MENTION.match(word)
    return found.group(1) if found else None


def _person(word: str) -> str:
    found = _MENTION.match(word)
    if found:
        return found.group(2) or found.group(1)
    return word.removeprefix("@")


class _Runner:
    """Runs one command against the store (in a worker thread)."""

    def __init__(self, store: Store, plan: Planner | None, start: Callable[[str], None] | None,
                 commands: IncidentCommands | None = None) -> None:
        self.store, self.plan, self.start = store, plan, start
        self.cmds = commands or IncidentCommands(store)

    def _ref(self, cmd: Command) -> str:
        room = self.store.incident_for_channel(cmd.channel_id) if cmd.channel_id else None
        if cmd.ref is not None:
            named = self.store.get_incident(cmd.ref)
            if named.private and named.id != room:
                raise ConfigError(f"no incident {cmd.ref!r} here: a private incident is run "
                                  "from its own war room")
            return named.id
        found = room
        if found is None:
            raise ConfigError("this channel is no incident's war room: name the incident, "
                                f"e.g. `/incident {cmd.verb} INC-7`")
        return found

    def run(self, cmd: Command, loop: asyncio.AbstractEventLoop) -> tuple[bool, str]:
        """(shown to the whole channel, text)."""
        by = Actor(name=f"@{cmd.user_name}" if cmd.user_name else f"slack:{cmd.user_id}",
                   via="slack", verified=True, ref=cmd.user_id)
        verb, words = cmd.verb, cmd.words
        invite: list[str] = []
        if verb == "help":
            return False, HELP
        if verb == "list":
            found = [i for i in self.cmds.open_incidents(50) if not i.private][:20]
            return False, "\n".join(f"INC-{i.number} [{i.severity}] {i.status} · {i.service} · "
                                    f"{i.title}" for i in found) or "No open incidents."
        if verb == "declare":
            return True, self._declare(words, by, loop)
        ref = self._ref(cmd)
        if verb == "show":
            return False, self._show(ref)
        if verb == "ack":
            done = self.cmds.acknowledge(ref, by)
        elif verb in ("sev", "severity") and words:
            done = self.cmds.set_severity(ref, Severity(words[0].upper()), by, " ".join(words[1:]))
        elif verb == "role" and len(words) >= 2:
            done = self.cmds.assign(ref, Role(words[0].lower()), _person(words[1]), by)
            invite = [_slack_id(words[1]) or _person(words[1])]
        elif verb == "note" and words:
            done = self.cmds.note(ref, " ".join(words), by)
        elif verb == "update":
            return self._update(ref, words, by, loop)
        elif verb == "status" and words:
            done = self.cmds.set_status(ref, IncidentStatus(words[0].lower()), by,
                                        " ".join(words[1:]))
        elif verb == "resolve":
            done = self.cmds.set_status(ref, IncidentStatus.RESOLVED, by, " ".join(words))
        else:
            return False, f"I did not understand `{verb} {' '.join(words)}`.\n{HELP}"
        for execution_id in done.executions:
            if self.start is not None:
                loop.call_soon_threadsafe(self.start, execution_id)
        if done.changed and verb in ("ack", "status", "resolve"):
            from flows.engine.lifecycle import drain

            asyncio.run_coroutine_threadsafe(drain(self.store, done.incident.id), loop)
        if done.changed and verb in ("sev", "severity"):
            from flows.engine.severity import follow_severity

            asyncio.run_coroutine_threadsafe(follow_severity(self.store, done.incident.id), loop)
        if done.changed and verb != "note":
            from flows.engine.war_room import mirror_war_room

            asyncio.run_coroutine_threadsafe(
                mirror_war_room(self.store, done.incident.id, invite), loop)
        number = done.incident.number
        return done.changed, (f"INC-{number}: {done.said}" if done.changed
                              else f"INC-{number}: nothing to change ({done.said})")

    def _declare(self, words: list[str], by: Actor, loop: asyncio.AbstractEventLoop) -> str:
        private = bool(words) and words[0].lower() == "private"
        words = words[1:] if private else words
        if len(words) < 3:
            raise ConfigError("declare needs a severity, a service and a title: "
                              "`/incident declare [private] SEV2 web checkout 5xx above 20%`")
        draft = IncidentDraft(title=" ".join(words[2:]), severity=Severity(words[0].upper()),
                              service=words[1], private=private)
        incident = self.cmds.declare(draft, by)
        said = f"INC-{incident.number} declared by {by.name}: [{incident.severity}] " \
               f"{incident.title}"
        if incident.private:
            said = f"Private INC-{incident.number} declared by {by.name}; its war room is a " \
                   "private channel"
        if self.plan is None or self.start is None:
            return said + " (this intake runs no runbooks: start one with `firelane run`)"
        alert = Alert(source="slack", fingerprint=f"slack-{incident.id}", title=draft.title,
                      severity=draft.severity, service=draft.service,
                      labels={"service": draft.service})
        execution = self.plan(alert, incident)
        if execution is None:
            return said + " (no runbook matches it)"
        self.store.create_execution(execution)
        loop.call_soon_threadsafe(self.start, execution.id)
        return said + f"; runbook {execution.runbook_name} is opening the war room"

    def _update(self, ref: str, words: list[str], by: Actor,
                loop: asyncio.AbstractEventLoop) -> tuple[bool, str]:
        draft = parse_update_words(words)
        settings = Settings.from_env()
        cmds = self.cmds if self.cmds.runbooks else IncidentCommands(
            self.store, load_valid_runbooks(settings.runbooks_dir)[0],
            sandbox=self.cmds.sandbox, for_responder=self.cmds.for_responder)
        posted = cmds.post_update(ref, draft, by, serving_catalog(settings.catalog_path))
        if posted.execution_id is not None and self.start is not None:
            loop.call_soon_threadsafe(self.start, posted.execution_id)
        incident = self.store.get_incident(ref)
        return True, f"INC-{incident.number}: {posted.said}"

    def _show(self, ref: str) -> str:
        i = self.store.get_incident(ref)
        roles = ", ".join(x for x in (
            f"commander {i.commander}" if i.commander else "",
            f"communicator {i.communicator}" if i.communicator else "",
            f"investigators {', '.join(i.investigators)}" if i.investigators else "") if x)
        links = " · ".join(f"<{url}|{kind}>" for kind, url in i.links.items())
        return (f"*INC-{i.number} [{i.severity}] {i.title}*\n{i.status} · {i.service}"
                + (f" · {roles}" if roles else "") + (f"\n{links}" if links else ""))


async def _post_later(url: str, work: asyncio.Future[tuple[bool, str]]) -> None:
    try:
        public, text = await work
    except Exception as exc:
        public, text = False, f"Not done: {exc}"
    if not url:
        return
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.post(url, json={"response_type": "in_channel" if public
                                         else "ephemeral", "text": text})
    except httpx.HTTPError as exc:
        log.warning("could not post a slash command's result to Slack: %s", exc)


def add_slack_command_route(app: FastAPI, store: Store, signing_secret: SecretSource,
                            clock: Clock | None = None, max_body_bytes: int = 1 << 20,
                            plan: Planner | None = None,
                            start: Callable[[str], None] | None = None,
                            commands: IncidentCommands | None = None) -> None:
    """Mount `POST /slack/commands` (404 when no signing secret is configured); `commands`
    says which runbooks a severity change may start."""
    runner = _Runner(store, plan, start, commands)
    later: set[asyncio.Task[None]] = set()

    @app.post("/slack/commands")
    async def command(request: Request) -> Any:
        """Slack's slash-command callback (`/incident ...`)."""
        body = await verified_body(request, signing_secret, clock, max_body_bytes)
        if isinstance(body, JSONResponse):
            return body
        try:
            cmd = parse_command(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"unreadable slash command: {exc}"}, 400)
        loop = asyncio.get_running_loop()
        work = asyncio.ensure_future(asyncio.to_thread(runner.run, cmd, loop))
        done, _ = await asyncio.wait({work}, timeout=INLINE_SECONDS)
        if not done:
            task = asyncio.create_task(_post_later(cmd.response_url, work))
            later.add(task)
            task.add_done_callback(later.discard)
            return {"response_type": "ephemeral", "text": f"Working on `{cmd.verb}`…"}
        try:
            public, text = work.result()
        except Exception as exc:
            log.warning("/incident %s by %s not done: %s", cmd.verb, cmd.user_id, exc)
            return {"response_type": "ephemeral", "text": f"Not done: {exc}"}
        return {"response_type": "in_channel" if public else "ephemeral", "text": text}

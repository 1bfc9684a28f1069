"""Incident updates: what people outside the war room are told, to whom, and when next.

An update has a status (investigating → identified → monitoring → resolved), a message, the
affected services with an impact and an audience: `internal` (the affected services' stakeholder
Slack channels and e-mail lists) or `public` (the status page, Atlassian Statuspage and the
public subscribers). An internal update is published when it is posted; a public one waits for
approval unless the runbook or the catalog lets it publish alone. The text people read is
rendered from Jinja templates (`update.txt.j2`, `update_subject.txt.j2`, overridable from the
templates folder like the report's), so it always says what is affected, what is being done and
when the next update is due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from firelane.catalog import Catalog
from firelane.errors import ConfigError
from firelane.models import Incident, Severity, new_id, utcnow

__all__ = [
    "DEFAULT_CADENCE",
    "MESSAGE_MAX",
    "UPDATE_USAGE",
    "Audience",
    "Impact",
    "IncidentUpdate",
    "Prepared",
    "UpdateDesk",
    "UpdateDraft",
    "UpdateState",
    "UpdateStatus",
    "affected_of",
    "cadence_for",
    "parse_affected",
    "parse_update_words",
    "render_update",
]

MESSAGE_MAX = 5_000
DEFAULT_CADENCE: dict[Severity, timedelta] = {
    Severity.SEV1: timedelta(minutes=30), Severity.SEV2: timedelta(minutes=60)}
"""How often stakeholders hear from an open incident unless the catalog says otherwise."""


class UpdateStatus(StrEnum):
    """Where the response stands, in the words status pages use."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Impact(StrEnum):
    """How badly a service is affected (Statuspage's component statuses, minus operational)."""

    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"


class Audience(StrEnum):
    """Who reads an update."""

    INTERNAL = "internal"
    PUBLIC = "public"


class UpdateState(StrEnum):
    """`awaiting_approval` (a public update nobody approved yet), `published`, `rejected`."""

    AWAITING_APPROVAL = "awaiting_approval"
    PUBLISHED = "published"
    REJECTED = "rejected"


class UpdateDraft(BaseModel):
    """An update as its author writes it (CLI, API, Slack, a runbook step)."""

    model_config = ConfigDict(extra="forbid")

    status: UpdateStatus
    message: str = Field(min_length=1, max_length=MESSAGE_MAX)
    affected: dict[str, Impact] = Field(
        default_factory=dict, description="Service → impact; empty means the incident's service, "
        "degraded")
    audience: Audience = Audience.INTERNAL
    publish_alone: bool = Field(
        default=False, description="A public update goes out without approval (the runbook "
        "says so; the catalog's `communications.publish_without_approval` does too)")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an empty update: say what is known, even 'we are still "
                             "investigating'")
        return value.strip()


class IncidentUpdate(UpdateDraft):
    """A recorded update: its number within the incident, who posted it, where it stands."""

    id: str = Field(default_factory=new_id)
    incident_id: str
    seq: int = 0
    author: str
    via: str
    verified: bool = False
    state: UpdateState = UpdateState.PUBLISHED
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    next_due_at: datetime | None = None
    execution_id: str | None = None

    @property
    def public(self) -> bool:
        """Whether the status page and public subscribers get it."""
        return self.audience is Audience.PUBLIC


@dataclass(frozen=True)
class Prepared:
    """An update ready to deliver: its rendered text and every destination it goes to."""

    update: IncidentUpdate
    subject: str
    body: str
    channels: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    statuspage: bool = False
    components: dict[str, str] = field(default_factory=dict)
    needs_approval: bool = False
    title: str = ""
    status_page_url: str | None = None


class UpdateDesk(Protocol):
    """What the engine lends update actions (`ActionContext.desk`): the store and catalog
    behind posting, preparing and publishing an update."""

    async def post(self, draft: UpdateDraft) -> IncidentUpdate:
        """Record an update the runbook posts, and queue its delivery (once per step)."""
        ...

    async def prepare(self, update_id: str) -> Prepared:
        """The update's text and destinations."""
        ...

    async def publish(self, update_id: str, approved: bool) -> IncidentUpdate:
        """Mark a public update published (or rejected) and refresh the status page."""
        ...


def parse_affected(pairs: list[str]) -> dict[str, Impact]:
    """`web=major_outage` pairs (a bare `web` is degraded) → service → impact, with a clear
    error naming the bad pair and the impacts there are."""
    found: dict[str, Impact] = {}
    for pair in pairs:
        service, _, impact = pair.partition("=")
        try:
            found[service.strip()] = Impact((impact.strip() or "degraded").replace(" ", "_")
                                            .replace("-", "_"))
        except ValueError:
            raise ConfigError(f"{pair!r}: an impact is one of "
                              f"{', '.join(i.value for i in Impact)}") from None
        if not service.strip():
            raise ConfigError(f"{pair!r}: name the service, as in web=partial_outage")
    return found


_AFFECTED_WORD = re.compile(r"^[a-z0-9][a-z0-9_.-]*=[a-z_-]+$")
UPDATE_USAGE = ("[public] investigating|identified|monitoring|resolved [web=partial_outage] "
                "We are looking into checkout errors")


def parse_update_words(words: list[str]) -> UpdateDraft:
    """An update written as words (`/incident update ...`, the Prefect UI's form): an optional
    `public`, the status, any `service=impact` pairs, then the message."""
    public = bool(words) and words[0].lower() == "public"
    words = words[1:] if public else words
    affected = [w for w in words[1:] if _AFFECTED_WORD.match(w)]
    message = " ".join(w for w in words[1:] if not _AFFECTED_WORD.match(w))
    if not words or words[0].lower() not in {s.value for s in UpdateStatus} or not message:
        raise ConfigError(f"an update needs a status and a message: {UPDATE_USAGE}")
    return UpdateDraft(status=UpdateStatus(words[0].lower()), message=message,
                       affected=parse_affected(affected),
                       audience=Audience.PUBLIC if public else Audience.INTERNAL)


def cadence_for(catalog: Catalog, severity: Severity) -> timedelta | None:
    """How long after an update the next one is due at `severity` (None: no cadence)."""
    minutes = catalog.communications.cadence_minutes.get(severity.value)
    if minutes is not None:
        return timedelta(minutes=minutes) if minutes > 0 else None
    return DEFAULT_CADENCE.get(severity)


def affected_of(update: UpdateDraft, incident: Incident) -> dict[str, Impact]:
    """The services an update names, or the incident's own service, degraded."""
    return dict(update.affected) or {incident.service: Impact.DEGRADED}


def refuse_update(incident: Incident, draft: UpdateDraft, catalog: Catalog) -> None:
    """Raise ConfigError, saying what to do, for an update that must not be posted: public on
    a private incident, anything but `resolved` on a resolved or closed incident (it would
    contradict the status page), a service the catalog does not know, or an internal update
    that would reach nobody (no stakeholder channel or list for its services)."""
    ref = f"INC-{incident.number}"
    if incident.private and draft.audience is Audience.PUBLIC:
        raise ConfigError(f"{ref} is private: its updates stay internal (post it without "
                          "--public, or with audience internal)")
    if incident.status.value in ("resolved", "closed") and draft.status is not \
            UpdateStatus.RESOLVED:
        raise ConfigError(f"{ref} is {incident.status.value}: an update saying "
                          f"'{draft.status}' would contradict it; reopen it first (`firelane "
                          f"incidents status {ref} acknowledged`) or post a resolved update")
    unknown = sorted(s for s in draft.affected if catalog.get(s) is None
                     and s != incident.service)
    if unknown:
        known = ", ".join(sorted(catalog.services)) or "none"
        raise ConfigError(f"unknown service(s) {', '.join(unknown)}: the catalog "
                          f"(services.yaml) names {known}")
    if draft.audience is Audience.INTERNAL and not catalog.communications.internal_emails:
        services = affected_of(draft, incident)
        entries = [catalog.get(name) for name in services]
        if not any(e is not None and (e.stakeholder_channel or e.stakeholder_emails)
                   for e in entries):
            raise ConfigError(
                f"this update would reach nobody: the catalog names no stakeholder_channel or "
                f"stakeholder_emails for {', '.join(services)} and no "
                "communications.internal_emails; add them to services.yaml (see "
                "docs/how-to/keep-stakeholders-informed.md)")


_IMPACT_WORDS = {Impact.DEGRADED: "Degraded performance", Impact.PARTIAL_OUTAGE: "Partial outage",
                 Impact.MAJOR_OUTAGE: "Major outage"}


def public_title(update: UpdateDraft, incident: Incident, catalog: Catalog) -> str:
    """What the public reads as the incident's title: the worst impact and the services'
    public names ("Partial outage of Web shop"), never the internal alert title."""
    affected = affected_of(update, incident)
    worst = max(affected.values(), key=list(Impact).index)
    names = [getattr(catalog.get(s), "display_name", None) or s for s in affected]
    return f"{_IMPACT_WORDS[worst]} of {' and '.join(names)}"


def render_update(update: IncidentUpdate, incident: Incident, catalog: Catalog,
                  templates: Path | None = None) -> tuple[str, str]:
    """The subject and body people read: from `update_subject.txt.j2` and `update.txt.j2`
    (a file of that name in `templates` replaces the built-in one)."""
    names = {name: getattr(catalog.get(name), "display_name", None) or name
             for name in affected_of(update, incident)}
    context = {
        "update": update, "incident": incident, "status": update.status.value,
        "affected": [{"service": s, "name": names[s], "impact": i.value.replace("_", " ")}
                     for s, i in affected_of(update, incident).items()],
        "next_due_at": update.next_due_at, "public": update.public,
    }
    env = _environment(templates)
    try:
        subject = env.get_template("update_subject.txt.j2").render(context)
        body = env.get_template("update.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"update template failed: {exc} (check update.txt.j2 and "
                          "update_subject.txt.j2 in the templates folder)") from exc
    return " ".join(subject.split()), body.strip() + "\n"


_BUILTIN = Path(__file__).resolve().parent / "templates"


def _environment(templates: Path | None) -> jinja2.Environment:
    paths = [str(_BUILTIN)] if templates is None else [str(templates), str(_BUILTIN)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["hhmm"] = lambda at: at.strftime("%H:%M UTC") if at else ""
    return env

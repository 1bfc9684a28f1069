"""The service catalog (`services.yaml`): where each service's people, tools and health live.

Actions take their defaults from the incident's service entry, so runbooks stay short:
`jira.create_issue` knows the project, `pagerduty.trigger` the routing-key block, `release.rollback`
the release directory. Block names only, never secrets.

    services:
      web:
        pagerduty: {service_id: PWEB123, routing_key_block: pagerduty-web}
        jira_project: OPS
        slack_channel: "#web-oncall"
        owners: [alice@example.com]
        health_url: http://web.internal/healthz
        release_dir: /srv/web
        supervisor: {program: web, url: "unix:///var/run/supervisor.sock"}
        jira_statuses: {acknowledged: "In Progress", resolved: "Done", reopened: "To Do"}
        display_name: Web shop            # what stakeholders and the status page call it
        group: Storefront                 # the status page's component group
        stakeholder_channel: "#web-status"  # updates go here, never to the war room
        stakeholder_emails: [web-stakeholders@example.com]
        statuspage_component: 8kbf7d35c070
        manager: carol
    communications:
      cadence_minutes: {SEV1: 30, SEV2: 60}
      grace_minutes: 10
      publish_without_approval: false
      public_emails: [status-subscribers@example.com]
      managers: {alice: carol}
      statuspage: true
      status_page: {title: Example status, folder: /var/www/status,
                    public_url: https://status.example.com}
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firelane.errors import ConfigError
from firelane.yamlsrc import YamlSourceError, load_yaml, schema_problems

__all__ = ["Catalog", "Communications", "PagerDutyRef", "ServiceEntry", "StatusPageConfig",
           "SupervisorRef", "load_catalog", "serve_catalog", "serving_catalog"]


class PagerDutyRef(BaseModel):
    """A service's PagerDuty side: its REST service id and/or an Events v2 routing-key block."""

    model_config = ConfigDict(extra="forbid")

    service_id: str | None = None
    routing_key_block: str | None = Field(
        default=None, description="Name of the Prefect Secret block holding the routing key")


class SupervisorRef(BaseModel):
    """Where a service's process runs under supervisord."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(description="Program name as supervisord knows it")
    url: str = Field(default="unix:///var/run/supervisor.sock",
                     description="XML-RPC endpoint: http://host:port/RPC2 or unix:///path")
    credentials_block: str | None = Field(
        default=None, description="SupervisorCredentials block for an inet_http_server")


class ServiceEntry(BaseModel):
    """One service's defaults for actions."""

    model_config = ConfigDict(extra="forbid")

    pagerduty: PagerDutyRef | None = None
    jira_project: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]+$")
    slack_channel: str | None = None
    owners: list[str] = Field(default_factory=list)
    health_url: str | None = Field(default=None, pattern=r"^https?://")
    release_dir: str | None = None
    supervisor: SupervisorRef | None = None
    jira_statuses: dict[str, str] = Field(
        default_factory=dict, description="Incident status (acknowledged, mitigated, resolved, "
        "closed, reopened) → the Jira status its ticket moves to; overrides the defaults")
    display_name: str | None = Field(default=None, max_length=100,
                                     description="The name stakeholders and the status page use")
    group: str | None = Field(default=None, max_length=100,
                              description="The status page's component group")
    stakeholder_channel: str | None = Field(
        default=None, description="Slack channel for stakeholder updates, not the war room")
    stakeholder_emails: list[str] = Field(
        default_factory=list, description="E-mail lists that get this service's internal updates")
    statuspage_component: str | None = Field(
        default=None, description="The Atlassian Statuspage component id of this service")
    manager: str | None = Field(default=None, description="Escalation for overdue updates")


class StatusPageConfig(BaseModel):
    """Firelane's own status page: its title, where its static files are written, its URL."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="Service status", max_length=100)
    folder: str | None = Field(default=None, description="Folder the static page is written to")
    public_url: str | None = Field(default=None, pattern=r"^https?://",
                                   description="Where people read it (printed, linked)")
    history_days: int = Field(default=90, ge=1, le=366)


class Communications(BaseModel):
    """Stakeholder communication: update cadence, approval, lists, escalation."""

    model_config = ConfigDict(extra="forbid")

    cadence_minutes: dict[str, int] = Field(
        default_factory=dict, description="Severity → minutes between updates (0: none); "
        "defaults SEV1 30, SEV2 60")
    grace_minutes: int = Field(default=10, ge=0, le=24 * 60,
                               description="How late an update may be before escalation")
    publish_without_approval: bool = Field(
        default=False, description="Public updates go out without an approval")
    internal_emails: list[str] = Field(default_factory=list,
                                       description="Lists that get every internal update")
    public_emails: list[str] = Field(default_factory=list,
                                     description="Subscriber lists that get public updates")
    managers: dict[str, str] = Field(default_factory=dict,
                                     description="Person → their manager (escalation)")
    statuspage: bool = Field(default=False,
                             description="Also post public updates to Atlassian Statuspage")
    status_page: StatusPageConfig = Field(default_factory=StatusPageConfig)

    @model_validator(mode="after")
    def _severities(self) -> Self:
        bad = sorted(set(self.cadence_minutes) - {"SEV1", "SEV2", "SEV3", "SEV4"})
        if bad:
            raise ValueError(f"cadence_minutes keys are SEV1..SEV4, not {', '.join(bad)}")
        return self


_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Catalog(BaseModel):
    """All services by name."""

    model_config = ConfigDict(extra="forbid")

    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    communications: Communications = Field(default_factory=Communications)

    def get(self, name: str) -> ServiceEntry | None:
        """The entry for `name`, or None when the catalog does not know it."""
        return self.services.get(name)


def load_catalog(path: Path | None) -> Catalog:
    """Load and validate the catalog; a missing file is an empty catalog, a bad one an error.

    Parsed once per version of the file (path, size, modification time): every run context
    reads it, and a burst of incidents would otherwise parse the same YAML hundreds of times.
    Treat the result as read-only; it is shared.
    """
    if path is None:
        return Catalog()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Catalog()
    return _parse_catalog(str(path), stat.st_mtime_ns, stat.st_size)


_SERVING: dict[str, Catalog] = {}


def serve_catalog(path: Path | None, catalog: Catalog) -> None:
    """Make `catalog` what `serving_catalog(path)` answers while the file at `path` fails
    validation (a long-running process's last good version, chosen by `firelane.library`)."""
    _SERVING[str(path)] = catalog


def serving_catalog(path: Path | None) -> Catalog:
    """The catalog runs use: the file as it is when valid, else the last valid version this
    process read or chose to keep serving (`serve_catalog`); with none, the file's ConfigError.

    One bad merge of `services.yaml` must not fail every response of a running intake,
    while `load_catalog` (what `validate` and `doctor` read) still reports it."""
    try:
        catalog = load_catalog(path)
    except ConfigError:
        kept = _SERVING.get(str(path))
        if kept is None:
            raise
        return kept
    _SERVING[str(path)] = catalog
    return catalog


@lru_cache(maxsize=8)
def _parse_catalog(name: str, _mtime_ns: int, _size: int) -> Catalog:
    path = Path(name)
    try:
        located = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except YamlSourceError as exc:
        raise ConfigError(str(exc)) from exc
    if located.data is None:
        return Catalog()
    try:
        catalog = Catalog.model_validate(located.data)
    except ValidationError as exc:
        problems = schema_problems(located, Catalog, exc.errors())
        raise ConfigError("service catalog is invalid:\n" + "\n".join(map(str, problems))) from exc
    bad = [name for name in catalog.services if not _SERVICE_NAME.match(name)]
    if bad:
        lines = [str(located.problem(("services", n), "service names are lower-case, digits, "
                                     "'-', '_' or '.'")) for n in bad]
        raise ConfigError("service catalog is invalid:\n" + "\n".join(lines))
    return catalog

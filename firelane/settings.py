"""Every `FIRELANE_*` environment variable, in one pydantic-settings model.

Settings are read when asked for (`Settings.from_env()`), never at import time, so a process that
changes its environment (the sandbox command, tests) is seen on the next read. Reads are cached
per distinct set of `FIRELANE_*` values, so asking on a hot path costs a dictionary scan. A bad
value is a `ConfigError` naming the variable, the value and what it must look like.
`docs/reference/settings.md` is generated from this model (`settings_reference()`).
"""

from __future__ import annotations

import os
import socket
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from firelane.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "settings_reference", "worker_identity"]

ENV_PREFIX = "FIRELANE_"
Address = tuple[str, int] | None


class Settings(BaseSettings):
    """Where Firelane keeps things, how it times leases and retries, and where the sandbox is.

    Each field is read from `FIRELANE_<FIELD NAME>` unless its description names another
    variable.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore",
                                      populate_by_name=True)

    database_url: str = Field(
        "", description="SQLAlchemy URL of the incident store: `postgresql+psycopg://...` for "
        "PostgreSQL; empty means a SQLite file `firelane.db` under the user's data directory.")
    runbooks_dir: Path = Field(Path("runbooks"),
                               description="Where runbooks are looked up by name.")
    catalog_path: Path = Field(Path("services.yaml"), validation_alias="FIRELANE_CATALOG",
                               description="The service catalog (`FIRELANE_CATALOG`).")
    lease_seconds: float = Field(30.0, gt=0, description="How long a step claim lives without "
                                 "renewal; another worker may take the step over after it.")
    page_lease_seconds: float = Field(
        5.0, gt=0, description="How long a paging step's claim lives without renewal (renewed "
        "every third of it). When it runs out, any paging responder takes the page over: a "
        "page whose responder died goes out about this long after its last renewal.")
    liveness_seconds: float = Field(
        30.0, gt=0, description="Liveness window: every long-running process (intake, "
        "responders, worker) records a heartbeat in the store every third of it, and counts as "
        "live in `firelane_processes_live` while its last one is younger than this.")
    plugins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Comma-separated modules to import so that they register actions.")
    api_token: SecretStr | None = Field(
        None, description="Your own Firelane API token (`firelane tokens create`): "
        "`firelane approve` decides as its owner, the proof a step with `approvers` needs. A "
        "personal credential: set it in your own shell, never in a shared service's "
        "environment.")
    page_failure_channel: str = Field(
        "", description="Slack channel id told when a page fails after its retries (besides "
        "the incident's war room when it exists), and where approvals go without a war room.")
    wake_address: Annotated[Address, NoDecode] = Field(
        ("127.0.0.1", 8799), description="`host:port` where responders listen for the intake's "
        "UDP wake-up after it commits a pending execution; `off` leaves them to their poll.")
    flows_wake_address: Annotated[Address, NoDecode] = Field(
        ("127.0.0.1", 8800), description="`host:port` where flow responders (`--role flows`) "
        "listen for a paging responder's UDP wake-up after it leaves an execution `ready`; "
        "`off` leaves them to their poll.")
    listen: bool = Field(
        True, description="On PostgreSQL, responders `LISTEN` for the `NOTIFY` sent when an "
        "execution becomes pending or ready, and wake at once; `false` (e.g. behind a "
        "transaction-pooling PgBouncer, where `LISTEN` hears nothing) leaves them to their "
        "poll.")
    poll_seconds: float = Field(
        1.0, gt=0, description="How often an idle responder reads the store when it has a "
        "wake-up source (`LISTEN` on PostgreSQL, the UDP wake-up): only a fallback for a lost "
        "wake-up. Stale executions are checked for once a second whatever this is.")
    deaf_poll_seconds: float = Field(
        0.005, gt=0, description="How often an idle responder reads the store when it has no "
        "wake-up source at all (SQLite with its wake address `off` or taken): every read costs "
        "CPU, about 20 % of a core at 5 ms.")
    reports_dir: Path = Field(Path("reports"), description="Where timeline reports and "
                              "postmortem drafts are written.")
    templates_dir: Path | None = Field(
        None, description="A folder whose `report.md.j2`, `report.html.j2`, "
        "`postmortem.md.j2`, `status.html.j2`, `update.txt.j2` or `update_subject.txt.j2` "
        "override the bundled templates.")
    prefect_outage_seconds: float = Field(
        900.0, gt=0, description="How long a run rides out an unreachable Prefect API before "
        "it gives up.")
    retry_attempts: int = Field(4, ge=1, description="Attempts per vendor call (the first "
                                "included).")
    retry_base_seconds: float = Field(0.5, gt=0, description="First back-off between attempts "
                                      "(doubles each time, with jitter).")
    retry_max_seconds: float = Field(30.0, gt=0, description="Longest back-off; also caps a "
                                     "vendor's Retry-After.")
    retry_settle_seconds: float = Field(
        2.0, ge=0, description="Wait after a failure whose outcome is unknown (timeout, dropped "
        "connection) before checking whether the effect happened.")
    jira_index_wait_seconds: float = Field(
        10.0, ge=0, description="How long a Jira check-before-create waits for the search index "
        "to show an issue just created.")
    sandbox_url: str = Field("", description="URL of a running sandbox (set by `firelane "
                             "sandbox`); runs with `--sandbox` send every vendor call there.")
    sandbox_ca: str = Field("", description="CA file the sandbox's TLS certificate is signed "
                            "with (set by `firelane sandbox`).")
    sandbox_client_timeout: float = Field(10.0, gt=0, description="Vendor-client timeout, in "
                                          "seconds, against the sandbox.")
    log_format: Literal["text", "json"] = Field(
        "text", description="How long-running commands (`serve`, `respond`, `serve-flows`, "
        "`worker`) log: `text` lines (ISO-8601 UTC time, level, role, logger, message, "
        "incident/execution/step when known) or `json`, one object per line with `time`, "
        "`level`, `logger`, `message`, `role`, `pid` and, when known, `incident`, `execution`, "
        "`step`. Secrets are masked in both.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest level of Firelane's log lines (`firelane.*` loggers; "
        "audit lines are INFO).")

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _case(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        return raw.strip().lower() if raw.strip().lower() in ("text", "json") \
            else raw.strip().upper()

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return raw

    @field_validator("wake_address", "flows_wake_address", mode="before")
    @classmethod
    def _parse_address(cls, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        if raw.lower() == "off":
            return None
        host, _, port = raw.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must look like host:port (or off)")
        return host, int(port)

    @field_validator("database_url")
    @classmethod
    def _default_database(cls, url: str) -> str:
        return url or f"sqlite:///{Path(user_data_dir('firelane')) / 'firelane.db'}"

    @field_validator("templates_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, raw: Any) -> Any:
        return None if raw == "" else raw

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings now (cached while the `FIRELANE_*` variables stay the same)."""
        return _read(tuple(sorted((k, v) for k, v in os.environ.items()
                                  if k.startswith(ENV_PREFIX))))


def _variable(name: str) -> str:
    field = Settings.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{name.upper()}"


@lru_cache(maxsize=16)
def _read(snapshot: tuple[tuple[str, str], ...]) -> Settings:
    values = dict(snapshot)
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = _variable(str(error["loc"][0])) if error["loc"] else ENV_PREFIX + "*"
            problems.append(f"{name}={values.get(name, '')!r}: {error['msg']}")
        raise ConfigError("bad setting: " + "; ".join(problems)
                          + " (see docs/reference/settings.md)") from exc


def settings_reference() -> str:
    """A Markdown table of every variable: name, default and meaning, from the model."""
    lines = ["| variable | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if name.endswith("wake_address") and isinstance(default, tuple):
            default = ":".join(map(str, default))
        elif isinstance(default, tuple):
            default = ",".join(default)
        shown = "(empty)" if default in ("", None) else f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{_variable(name)}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def worker_identity() -> str:
    """Who holds a lease: host, process and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

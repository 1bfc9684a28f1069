"""The intake's configuration file: per-source authentication, severities, limits.

    max_body_bytes: 1048576
    auto_resolve: true
    default_runbook: declare-incident
    reopen_window_seconds: 600     # re-firing this soon after resolving reopens (and pages)
    flap_after_reopens: 3          # from the 3rd reopen on: marked flapping, no new page
    group_by: [service, cluster]   # alerts sharing these join one incident ...
    group_window_seconds: 300      # ... for 5 minutes after the first of them
                                   # (unset: one sender notification group, Alertmanager's
                                   # groupKey, is one incident; []: one incident per alert)
    slack_signing_secret: {env: SLACK_SIGNING_SECRET}   # approval buttons
    sources:
      alertmanager: {bearer_token: {env: FIRELANE_ALERTMANAGER_TOKEN}}
      pagerduty: {hmac_secret: {block: pagerduty-webhook-secret}}
      generic: {basic_user: monitor, basic_password: {env: GENERIC_PASSWORD},
                mapping: {title: summary, severity: level}}

Secrets are references, `{env: NAME}`, `{block: NAME}` (a Prefect Secret block) or
`{file: /path}` (the file's content, trailing newline removed, as Docker and Kubernetes mount
secrets), resolved at start and again on each reload; a literal secret in the file is refused.
`bearer_token` and `hmac_secret` also take a list of references, any of which is accepted, so a
credential can be rotated without refusing a request:

    alertmanager: {bearer_token: [{env: AM_TOKEN_NEW}, {env: AM_TOKEN_OLD}]}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firelane.errors import ConfigError
from firelane.redaction import register_secret
from firelane.store.alerts import AlertPolicy
from firelane.yamlsrc import YamlSourceError, load_yaml, schema_problems
from integrations.alerts import SOURCES, SourceConfig

__all__ = ["Credential", "IntakeConfig", "SecretRef", "SourceSettings", "load_intake_config"]


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable, a Prefect Secret block or a file."""

    model_config = ConfigDict(extra="forbid")
    env: str | None = None
    block: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SecretRef:
        if sum(1 for kind in (self.env, self.block, self.file) if kind) != 1:
            raise ValueError("give exactly one of env:, block: or file:")
        return self

    def resolve(self, where: str) -> str:
        """The secret's value (read now, never logged)."""
        if self.file:
            try:
                content = self.file.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{where}: cannot read secret file {self.file}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from exc
            if not content:
                raise ConfigError(f"{where}: secret file {self.file} is empty")
            register_secret(content)
            return content
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"{where}: environment variable {self.env} is not set")
            register_secret(value)
            return value
        if self.block:
            from prefect.blocks.system import Secret

            try:
                value = str(Secret.load(self.block).get())  # type: ignore[union-attr]
            except ValueError as exc:
                raise ConfigError(f"{where}: no Secret block named {self.block!r}") from exc
            register_secret(value)
            return value
        raise ConfigError(f"{where}: give env:, block: or file:")


Credential = SecretRef | Annotated[list[SecretRef], Field(min_length=1)]


def _resolve_all(credential: Credential | None, where: str) -> tuple[str, ...]:
    if credential is None:
        return ()
    if isinstance(credential, SecretRef):
        return (credential.resolve(where),)
    return tuple(ref.resolve(f"{where}[{i}]") for i, ref in enumerate(credential))


class SourceSettings(BaseModel):
    """One source's section (`bearer_token` and `hmac_secret`: one reference or a list)."""

    model_config = ConfigDict(extra="forbid")
    bearer_token: Credential | None = None
    basic_user: str | None = None
    basic_password: SecretRef | None = None
    hmac_secret: Credential | None = None
    require_timestamp: bool = False
    severities: dict[str, str] = Field(default_factory=dict)
    mapping: dict[str, str] = Field(default_factory=dict)


class IntakeConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(default=1 << 20, gt=0, le=64 << 20)
    auto_resolve: bool = False
    default_runbook: str = "declare-incident"
    reopen_window_seconds: float = Field(default=600, ge=0)
    flap_after_reopens: int = Field(default=3, ge=1)
    group_by: list[str] | None = None
    group_window_seconds: float = Field(default=300, ge=0)
    slack_signing_secret: SecretRef | None = None
    sources: dict[str, SourceSettings] = Field(default_factory=dict)

    def policy(self) -> AlertPolicy:
        """How alerts fold into incidents (dedup, reopen, flapping, grouping)."""
        return AlertPolicy(self.reopen_window_seconds, self.flap_after_reopens,
                           tuple(self.group_by or ()), self.group_window_seconds,
                           sender_groups=self.group_by is None)

    def source_configs(self) -> dict[str, SourceConfig]:
        """Resolved per-source settings (secrets read now)."""
        out = {}
        for name in SOURCES:
            s = self.sources.get(name, SourceSettings())
            where = f"sources.{name}"
            out[name] = SourceConfig(
                severities={k.lower(): v for k, v in s.severities.items()},
                bearer_token=_resolve_all(s.bearer_token, f"{where}.bearer_token") or None,
                basic_user=s.basic_user,
                basic_password=s.basic_password.resolve(f"{where}.basic_password")
                if s.basic_password else None,
                hmac_secret=_resolve_all(s.hmac_secret, f"{where}.hmac_secret") or None,
                require_timestamp=s.require_timestamp, generic_mapping=dict(s.mapping))
        return out


def load_intake_config(path: Path | None) -> IntakeConfig:
    """Read and check the file (a missing path means defaults)."""
    if path is None:
        return IntakeConfig()
    try:
        located = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except YamlSourceError as exc:
        raise ConfigError(str(exc)) from exc
    data: Any = located.data or {}
    try:
        config = IntakeConfig.model_validate(data)
    except ValidationError as exc:
        problems = schema_problems(located, IntakeConfig, exc.errors())
        raise ConfigError("intake configuration is invalid:\n" + "\n".join(map(str, problems))
                          ) from exc
    unknown = sorted(set(config.sources) - set(SOURCES))
    if unknown:
        raise ConfigError(f"{path}: unknown sources {unknown}; known: {', '.join(SOURCES)}")
    return config

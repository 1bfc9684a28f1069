"""The intake configuration in force, replaced whole by a reload (`firelane serve` on SIGHUP).

A reload reads the file again, validates it and resolves every secret reference (env, block,
file) before anything changes; only then is the new snapshot swapped in, in one assignment, so a
request sees either the old configuration or the new one, never a mix. A reload that fails
leaves the old snapshot in force and logs why at ERROR. What changed is logged at INFO by name
and count, never by value.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firelane.errors import ConfigError
from flows.intake.config import IntakeConfig, load_intake_config
from integrations.alerts import SourceConfig

__all__ = ["LiveConfig", "Snapshot", "describe_changes"]

log = logging.getLogger("firelane.intake")


@dataclass(frozen=True)
class Snapshot:
    """One checked configuration with its secrets resolved."""

    config: IntakeConfig
    sources: dict[str, SourceConfig]
    slack_signing_secret: str | None

    @classmethod
    def resolve(cls, config: IntakeConfig) -> Snapshot:
        """Resolve every secret reference of `config` now (ConfigError if one cannot be)."""
        slack = config.slack_signing_secret
        return cls(config, config.source_configs(),
                   slack.resolve("slack_signing_secret") if slack else None)


def _counts(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    return {name: {k: v for k, v in source.credential_counts().items() if v}
            for name, source in snapshot.sources.items() if source.has_credentials}


def describe_changes(old: Snapshot, new: Snapshot) -> str:
    """What differs between two snapshots, by source name, credential count and setting name
    (never a secret's value); "no change" when nothing does."""
    was, now = _counts(old), _counts(new)
    parts = []
    added, removed = sorted(set(now) - set(was)), sorted(set(was) - set(now))
    if added:
        parts.append("sources added: " + ", ".join(added))
    if removed:
        parts.append("sources removed: " + ", ".join(removed))
    for name in sorted(set(was) & set(now)):
        for kind in sorted(set(was[name]) | set(now[name])):
            before, after = was[name].get(kind, 0), now[name].get(kind, 0)
            if before != after:
                parts.append(f"{name}.{kind}: {before} -> {after} credential(s)")
    rotated = sorted(name for name in set(was) & set(now)
                     if old.sources[name] != new.sources[name] and was[name] == now[name])
    if rotated:
        parts.append("sources with other changes (credentials or settings): "
                     + ", ".join(rotated))
    if (old.slack_signing_secret is None) != (new.slack_signing_secret is None):
        parts.append("slack_signing_secret " + ("added" if new.slack_signing_secret
                                                else "removed"))
    settings = sorted(k for k in IntakeConfig.model_fields
                      if k not in ("sources", "slack_signing_secret")
                      and getattr(old.config, k) != getattr(new.config, k))
    if settings:
        parts.append("settings changed: " + ", ".join(settings))
    return "; ".join(parts) or "no change"


def _signature(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class LiveConfig:
    """The snapshot requests read (`current`), and `reload()` from the file it came from."""

    def __init__(self, config: IntakeConfig, path: Path | None = None) -> None:
        self.path = path
        self._current = Snapshot.resolve(config)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._refusal_listeners: list[Callable[[str], None]] = []
        self.refusal: str | None = None
        self._seen = _signature(path)

    @classmethod
    def load(cls, path: Path | None) -> LiveConfig:
        """Read, check and resolve the file (ConfigError if any of that fails)."""
        return cls(load_intake_config(path), path)

    @property
    def current(self) -> Snapshot:
        """The configuration in force now."""
        return self._current

    def on_swap(self, listener: Callable[[Snapshot], None]) -> None:
        """Call `listener` with each new snapshot right after it is swapped in."""
        self._listeners.append(listener)

    def on_refused(self, listener: Callable[[str], None]) -> None:
        """Call `listener` with the reason each time a reload is refused."""
        self._refusal_listeners.append(listener)

    def changed(self) -> bool:
        """Whether the file's modification time or size differs from the last (re)load."""
        return _signature(self.path) != self._seen

    def reload(self) -> bool:
        """Read the file again and swap it in if it is valid and every secret resolves;
        False (old configuration kept, ERROR logged) otherwise."""
        with self._lock:
            self._seen = _signature(self.path)
            try:
                new = Snapshot.resolve(load_intake_config(self.path))
            except ConfigError as exc:
                log.error("reload of %s refused; the previous configuration stays in force: "
                          "%s", self.path or "(defaults)", exc)
                self.refusal = str(exc)
                for refused in self._refusal_listeners:
                    refused(self.refusal)
                return False
            self.refusal = None
            old, self._current = self._current, new
            for listener in self._listeners:
                listener(new)
        log.info("reloaded %s: %s", self.path or "(defaults)", describe_changes(old, new))
        return True

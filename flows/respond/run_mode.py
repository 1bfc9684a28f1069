"""`RunMode`: where an execution's `run-runbook` flow runs once its urgent steps have started."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from firelane.errors import ConfigError

__all__ = ["ROLES", "RunMode", "Where"]

ROLES = ("all", "urgent", "flows")


class Where(Enum):
    """The three places a flow run can go."""

    HERE = "here"
    READY = "ready"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class RunMode:
    """Where the flow runs: `here` (this process, on its own event loop in a flow thread),
    `ready` (left for a `firelane respond --role flows` process), or `deployment:<flow>/<name>`
    (handed to that Prefect deployment).

    Example:
        >>> RunMode.parse("deployment:run-runbook/respond-to-incident").deployment
        'run-runbook/respond-to-incident'
    """

    where: Where = Where.HERE
    deployment: str = ""

    def __post_init__(self) -> None:
        if (self.where is Where.DEPLOYMENT) != bool(self.deployment):
            raise ConfigError(f"run mode {self.where.value}: a deployment name goes with "
                              "`deployment` and only with it")

    @classmethod
    def here(cls) -> RunMode:
        """Run the flow in this process."""
        return cls(Where.HERE)

    @classmethod
    def ready(cls) -> RunMode:
        """Leave the execution `ready` for a flow runner."""
        return cls(Where.READY)

    @classmethod
    def hand_off(cls, deployment: str) -> RunMode:
        """Hand the flow run to the Prefect deployment `<flow>/<name>`."""
        return cls(Where.DEPLOYMENT, deployment)

    @classmethod
    def parse(cls, text: str) -> RunMode:
        """`here`, `ready` or `deployment:<flow>/<name>`; `ConfigError` for anything else."""
        kind, sep, name = text.strip().partition(":")
        if kind == Where.DEPLOYMENT.value and sep:
            if name.count("/") != 1 or not all(name.split("/")):
                raise ConfigError(f"run mode {text!r}: the deployment must be <flow>/<name>, "
                                  "e.g. deployment:run-runbook/respond-to-incident")
            return cls.hand_off(name)
        if not sep and kind in (Where.HERE.value, Where.READY.value):
            return cls(Where(kind))
        raise ConfigError(f"run mode {text!r}: expected here, ready or "
                          "deployment:<flow>/<name>")

    def __str__(self) -> str:
        if self.where is Where.DEPLOYMENT:
            return f"deployment:{self.deployment}"
        return str(self.where.value)

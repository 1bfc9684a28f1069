"""Firelane's one exception tree.

    FirelaneError
    ├── ConfigError                 bad settings or service catalog
    ├── AlertRejected               an inbound alert that cannot be accepted (HTTP 4xx)
    │   └── AuthenticationFailed    missing or wrong credentials or signature (HTTP 401)
    ├── RunbookError                a runbook that cannot be loaded or run
    │   └── RunbookValidationError  carries every problem found, each with file, line and path
    ├── TemplateError               a template or `if:` expression that fails to compile or render
    ├── ActionError                 an action failed; the engine decides what happens next
    │   ├── ActionTimeout           the step ran past its `timeout_seconds`
    │   ├── ActionInputError        rendered inputs do not fit the action's `Inputs` model
    │   ├── ApprovalRejected        an approver said no, or the approval timed out
    │   ├── GuardrailBlocked        kill switch, maintenance window, rate limit or lock said no
    │   ├── CommandFailed           a command exited with an unexpected status
    │   └── IntegrationError        a vendor API failed (carries the vendor's message)
    │       ├── RateLimited         429; `retry_after` seconds when the vendor said
    │       ├── VendorUnavailable   5xx, timeout, connection refused or reset
    │       └── VendorRejected      4xx: the request itself is wrong; retrying cannot help
    │           └── QuotaExhausted  a daily quota is spent (Zoom: 100 meetings a host a day)
    ├── ApprovalRefused             a decision from someone who may not (or cannot prove it)
    ├── TokenRefused                an API token that is missing, unknown, revoked, expired
    │                               (HTTP 401) or lacks the scope (HTTP 403)
    ├── ExecutionFailed             an execution ended in anything but success (carries its result)
    ├── StoreError                  the incident store refused an operation
    │   ├── NotFound                no such incident, execution or approval
    │   ├── InvalidTransition       an incident status change the lifecycle forbids
    │   ├── LeaseHeld               another live worker holds the step's lease
    │   ├── StoreSchemaError        the store's schema is newer than this code (upgrade Firelane)
    │   └── StoreUnavailable        the store stayed unreachable longer than the caller waits
    └── UnknownAction               `uses:` names an action that is not registered

Callers catch at the level they care about; the CLI turns any `FirelaneError` into a one-line
message and exit status 1 instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ActionError",
    "ActionInputError",
    "ActionTimeout",
    "AlertRejected",
    "ApprovalRefused",
    "ApprovalRejected",
    "AuthenticationFailed",
    "CommandFailed",
    "ConfigError",
    "ExecutionFailed",
    "FirelaneError",
    "GuardrailBlocked",
    "IntegrationError",
    "InvalidTransition",
    "LeaseHeld",
    "NotFound",
    "Problem",
    "QuotaExhausted",
    "RateLimited",
    "RunbookError",
    "RunbookValidationError",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailable",
    "TemplateError",
    "UnknownAction",
    "VendorRejected",
    "VendorUnavailable",
]


class FirelaneError(Exception):
    """Root of every error Firelane raises on purpose."""


class ConfigError(FirelaneError):
    """Settings or the service catalog are wrong; the message says where and how to fix it."""


class AlertRejected(FirelaneError):
    """An inbound webhook cannot be accepted; `status` is the HTTP answer (4xx) and the message
    says what is wrong and where (`alerts[2].labels: ...`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class AuthenticationFailed(AlertRejected):
    """Missing or wrong token, password or signature."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 401)


class RunbookError(FirelaneError):
    """A runbook cannot be loaded or run."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a runbook: `file:line path: message`."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RunbookValidationError(RunbookError):
    """Every problem found in one pass, so the author fixes them all at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TemplateError(FirelaneError):
    """A template or expression failed to compile or render (names the step and field)."""


class ActionError(FirelaneError):
    """An action failed. `retryable` tells the engine whether another attempt may help."""

    retryable: bool = True


class ActionTimeout(ActionError):
    """The step ran longer than its `timeout_seconds`."""


class ActionInputError(ActionError):
    """The rendered inputs do not fit the action's `Inputs` model; retrying cannot help."""

    retryable = False


class ApprovalRejected(ActionError):
    """The step's approval was rejected or timed out; it never ran."""

    retryable = False


class GuardrailBlocked(ActionError):
    """A guardrail stopped a destructive step (kill switch, maintenance window, rate limit,
    service lock with `on_locked: skip`); the step is recorded as skipped with the reason.
    `guardrail` names which one (`kill_switch`, `maintenance_window`, `rate_limit`,
    `service_lock`), `scope` the service (or `*`) it covers and `until` when it ends, if known,
    so the execution's outcome can say what to do."""

    retryable = False

    def __init__(self, message: str, guardrail: str = "guardrail", scope: str | None = None,
                 until: datetime | None = None) -> None:
        self.guardrail, self.scope, self.until = guardrail, scope, until
        super().__init__(message)


class CommandFailed(ActionError):
    """A command exited with a status it was not expected to."""


class IntegrationError(ActionError):
    """A vendor API call failed; the message is the vendor's."""

    def __init__(self, vendor: str, message: str, status: int | None = None) -> None:
        self.vendor, self.status = vendor, status
        super().__init__(f"{vendor}: {message}" + (f" (HTTP {status})" if status else ""))


class RateLimited(IntegrationError):
    """The vendor answered 429; `retry_after` is its Retry-After in seconds, if it sent one."""

    def __init__(self, vendor: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(vendor, message, 429)


class VendorUnavailable(IntegrationError):
    """5xx, timeout, refused or reset connection: worth another try."""


class VendorRejected(IntegrationError):
    """The vendor refused the request (4xx other than 429): retrying cannot help."""

    retryable = False


class QuotaExhausted(VendorRejected):
    """The vendor's daily quota for this request is spent (Zoom: 100 meetings created per host
    user a UTC day, a 429 until 00:00 UTC); retrying before it resets cannot help, so it is not
    a `RateLimited`. `resets_at` is when the quota comes back."""

    def __init__(self, vendor: str, message: str, resets_at: datetime) -> None:
        self.resets_at = resets_at
        super().__init__(vendor, message, 429)


class ApprovalRefused(FirelaneError):
    """A decision on an approval that its `approvers` do not allow, or that comes through a
    path that cannot prove who decided (the Prefect UI or the CLI without API authentication).
    """


class TokenRefused(FirelaneError):
    """An API token is not accepted: `status` is 401 (missing, malformed, unknown, revoked,
    expired) or 403 (valid, but its scope does not allow this); the message says which."""

    def __init__(self, message: str, status: int = 401) -> None:
        self.status = status
        super().__init__(message)


class ExecutionFailed(FirelaneError):
    """An execution ended in anything but success (a failed step, a rejected approval, a
    guardrail): what calling the `run-runbook` flow directly raises. `result` is the flow's
    result (`execution_id`, `status`, `outcome`, `steps`)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        self.result = result
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ExecutionFailed], tuple[str, dict[str, Any]]]:
        return type(self), (str(self), self.result)


class StoreError(FirelaneError):
    """The incident store refused an operation."""


class NotFound(StoreError):
    """No such incident, execution, step or approval."""


class InvalidTransition(StoreError):
    """The incident lifecycle does not allow this status change."""


class LeaseHeld(StoreError):
    """Another live worker holds the lease on this step."""


class StoreSchemaError(StoreError):
    """The store's schema revision is one this code does not know: a newer Firelane ran
    `firelane db upgrade`. Every process refuses to start on it; upgrade Firelane, never
    downgrade the database. `revision` is the store's, `head` the newest this code knows."""

    def __init__(self, message: str, revision: str, head: str) -> None:
        self.revision, self.head = revision, head
        super().__init__(message)


class StoreUnavailable(StoreError):
    """The store did not answer (connection refused, closed, shut down, locked) for as long as
    the caller was willing to wait; the cause is the last database error."""


class UnknownAction(FirelaneError):
    """A runbook names an action that no loaded integration registered."""

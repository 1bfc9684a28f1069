"""The action registry: every `uses:` in a runbook names an action registered here.

An action is a plain async function `async def fn(inputs: I, ctx: ActionContext) -> O` where `I`
and `O` are pydantic models. The models are the single source for validation, the runbook schema
and the docs. Integrations register their actions with the `action` decorator when imported.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel

from firelane.catalog import ServiceEntry
from firelane.errors import UnknownAction
from firelane.links import is_web_url
from firelane.models import ActionItem, Incident, TimelineEvent
from firelane.runbook import KubernetesPolicy

__all__ = [
    "ActionContext",
    "ActionFn",
    "ActionSpec",
    "action",
    "call_action",
    "get_action",
    "registered_actions",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass
class ActionContext:
    """What the engine hands an action besides its inputs.

    `idempotency_key` is stable across re-runs of the same execution step: actions pass it to the
    vendor (dedup_key, label, channel name) so a crash between the call and the ledger record
    never produces a second side effect. `emit` adds a timeline event that is stored together
    with the step's outcome; `track_action_item` hands the engine a follow-up to record.
    `repeat_since` is set when this step was already tried (a retry, or a resume after its
    worker died): when its first try began, so an action without a vendor key can tell its own
    earlier effect from the state it must change. `first_use` is True when no earlier call can
    have used `idempotency_key` (the engine sets it on a step's first try in its own
    execution, with its own key): an action that looks for its earlier effect before causing
    it may then skip the look on that first try (one vendor round trip fewer). False, the
    default, means look. `move_incident(to, reason)` moves the
    incident along its lifecycle and returns its status; the engine sets it for runs that
    are not dry runs. `claim_effect(name)` claims one sub-effect of this step (an e-mail to
    one list) before it is caused: False when an earlier attempt claimed it, so it is never
    caused twice; `release_effect(name)` gives the claim back when the effect surely did not
    happen. `desk` (a `firelane.updates.UpdateDesk`) posts, prepares and publishes incident
    updates. `kubernetes_allow` is the runbook's `kubernetes:` allowlist of namespaces and
    workloads.
    """

    incident: Incident
    execution_id: str
    step_id: str
    idempotency_key: str
    attempt: int = 1
    dry_run: bool = False
    sandbox: bool = False
    service: ServiceEntry | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    events: list[TimelineEvent] = field(default_factory=list)
    shell_allow: tuple[str, ...] = ()
    shell_read_only: tuple[str, ...] = ()
    shell_env: tuple[str, ...] = ()
    kubernetes_allow: KubernetesPolicy = field(default_factory=KubernetesPolicy)
    action_items: list[ActionItem] = field(default_factory=list)
    repeat_since: datetime | None = None
    first_use: bool = False
    move_incident: Callable[[str, str], Awaitable[str]] | None = None
    claim_effect: Callable[[str], Awaitable[bool]] | None = None
    release_effect: Callable[[str], Awaitable[None]] | None = None
    desk: Any = None

    def emit(self, kind: str, summary: str, details: dict[str, Any] | None = None,
             actor: str | None = None) -> TimelineEvent:
        """Record a timeline event for this step (written when the step's outcome is)."""
        event = TimelineEvent(incident_id=self.incident.id, kind=kind, summary=summary,
                              details=details or {}, actor=actor, source="runbook",
                              execution_id=self.execution_id, step_id=self.step_id)
        self.events.append(event)
        return event

    def track_action_item(self, title: str, owner: str | None, due: datetime | None,
                          external_key: str | None) -> ActionItem:
        """Have the engine record a follow-up this action opened (reminders chase it). The
        id derives from the step's key, so a re-run records it once."""
        n = len(self.action_items)
        item = ActionItem(
            id=hashlib.sha256(f"{self.idempotency_key}:{n}".encode()).hexdigest()[:32],
            incident_id=self.incident.id, title=title, owner=owner, due=due,
            external_key=external_key)
        self.action_items.append(item)
        return item


ActionFn = Callable[[Any, ActionContext], Awaitable[BaseModel]]


@dataclass(frozen=True)
class ActionSpec:
    """A registered action: its name, function, typed models and whether it changes things.

    `destructive` actions change a system and sit behind every guardrail; `read_only` actions
    change nothing anywhere (diagnostics, status reads), so they skip approvals, locks, rate
    limits and the kill switch and run for real in dry runs. An action is at most one of both.
    """

    name: str
    fn: ActionFn
    inputs: type[BaseModel]
    outputs: type[BaseModel]
    destructive: bool
    doc: str
    pages: bool = False
    link: str | None = None
    link_field: str = "url"
    read_only: bool = False
    preview: Callable[[Any], dict[str, str]] | None = None
    waits: bool = False

    def describe_effect(self, inputs: BaseModel) -> dict[str, str]:
        """What a run with `inputs` will touch, worked out before it runs (`preview`), for an
        approver to judge; a preview that cannot be worked out says why instead."""
        if self.preview is None:
            return {}
        try:
            return self.preview(inputs)
        except Exception as exc:
            return {"preview": f"not available: {exc}"}

    def link_url(self, outputs: dict[str, Any] | None) -> str | None:
        """The URL this action's outputs link to, when it declares a link and made one."""
        if self.link is None or not outputs:
            return None
        url = outputs.get(self.link_field)
        return str(url) if is_web_url(url) else None

    def catalog_fields(self) -> dict[str, str]:
        """Inputs the service catalog can supply: input name → catalog attribute path.

        An Inputs field declares it with `Field(json_schema_extra={"catalog": "jira_project"})`;
        a runbook may then leave it out and the engine fills it from the incident's service.
        """
        out: dict[str, str] = {}
        for name, info in self.inputs.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and isinstance(extra.get("catalog"), str):
                out[info.alias or name] = str(extra["catalog"])
        return out

    def catalog_defaults(self, service: ServiceEntry | None, given: dict[str, Any],
                         ) -> dict[str, Any]:
        """`given` plus whatever the service's catalog entry supplies for missing inputs."""
        out = dict(given)
        for key, attr_path in self.catalog_fields().items():
            if key in out or service is None:
                continue
            value: Any = service
            for part in attr_path.split("."):
                value = getattr(value, part, None)
            if value is not None:
                out[key] = value
        return out

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


_REGISTRY: dict[str, ActionSpec] = {}
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def action(name: str, *, destructive: bool = False, read_only: bool = False,
           pages: bool = False, link: str | None = None, link_field: str = "url",
           preview: Callable[[Any], dict[str, str]] | None = None,
           waits: bool = False) -> Callable[[F], F]:
    """Register an async function as the action `name` (`<integration>.<verb_noun>`).

    `destructive` actions are dry-run in dry runs and never run on the fast path; `read_only`
    actions promise no side effect at all, so they run for real in dry runs and no guardrail
    holds them (the engine trusts the declaration: declare it only when true); `pages`
    marks an action that wakes a human, whose failure the engine raises loudly. `link` names
    what the action creates for the incident (`ticket`, `page`, `channel`, `bridge`): when a
    step of it succeeds, the engine records the output `link_field` (an http(s) URL) on the
    incident's links, with the step's outcome. `preview(inputs)` says what a run will touch
    (the from/to release of a rollback), shown in its approval request. `waits` marks an
    action that spends its time waiting between light requests (a health check probing once
    a second): the fast path starts it at once instead of holding a war-room slot for it.

    The Inputs and Outputs models are read from the type hints of the first parameter and the
    return value. Registering the same function again (a module imported twice) is harmless;
    registering a different function under a taken name is an error.

    Example:
        @action("core.note")
        async def note(inputs: NoteInputs, ctx: ActionContext) -> NoteOutputs: ...
    """

    def register(fn: F) -> F:
        if not _NAME.match(name):
            raise ValueError(f"action name {name!r} must look like integration.verb_noun")
        if destructive and read_only:
            raise ValueError(f"action {name}: cannot be both destructive and read_only")
        plain: Callable[..., Any] = fn
        if not inspect.iscoroutinefunction(plain):
            raise TypeError(f"action {name}: {fn.__qualname__} must be `async def`")
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2:
            raise TypeError(f"action {name}: takes (inputs, ctx), got {params}")
        inputs, outputs = hints.get(params[0]), hints.get("return")
        for label, model in (("inputs", inputs), ("return", outputs)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"action {name}: {label} must be annotated with a pydantic model")
        doc = inspect.getdoc(fn) or ""
        if not doc:
            raise TypeError(f"action {name}: needs a docstring (it is the user's documentation)")
        existing = _REGISTRY.get(name)
        if existing is not None:
            same = (existing.fn.__module__, existing.fn.__qualname__) == (
                fn.__module__, fn.__qualname__)
            if not same:
                raise ValueError(f"action {name} is already registered by "
                                 f"{existing.fn.__module__}.{existing.fn.__qualname__}")
        assert inputs is not None and outputs is not None
        if link is not None and link_field not in outputs.model_fields:
            raise TypeError(f"action {name}: link={link!r} needs an output named "
                            f"{link_field!r} in {outputs.__name__}")
        _REGISTRY[name] = ActionSpec(name=name, fn=fn, inputs=inputs, outputs=outputs,
                                     destructive=destructive, doc=doc, pages=pages,
                                     link=link, link_field=link_field, read_only=read_only,
                                     preview=preview, waits=waits)
        return fn

    return register


def get_action(name: str) -> ActionSpec:
    """The action registered as `name`; `UnknownAction` lists near names when it is missing."""
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise UnknownAction(f"no action named {name!r}{hint}") from None


async def call_action(name: str, inputs: dict[str, Any], ctx: ActionContext) -> Any:
    """Validate `inputs` against the action's model and run it outside a runbook step (the
    engine's own notices, report sources, reminders). No ledger: pass a stable
    `ctx.idempotency_key` so a repeat finds what the first call did."""
    spec = get_action(name)
    return await spec.fn(spec.inputs.model_validate(inputs), ctx)


def registered_actions() -> dict[str, ActionSpec]:
    """A copy of the registry, by name."""
    return dict(sorted(_REGISTRY.items()))

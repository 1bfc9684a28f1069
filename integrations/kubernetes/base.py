"""What the `kubernetes.*` actions share: their inputs and outputs, the runbook's allowlist,
the cluster client of a run, and the marker a change leaves on its workload.

The marker makes a change happen once: the patch that changes a workload also sets the
annotation `firelane.io/step` to the step's idempotency key and `firelane.io/change` to what
it changed, in the same write. Any later try of that step (a retry after a lost answer, a
resume after its worker died, a second worker) reads the workload first and, finding its own
key, reports the change already made instead of making it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from firelane.errors import ActionError, ActionInputError, ConfigError
from firelane.registry import ActionContext
from firelane.settings import Settings
from integrations.common import cached_block, in_thread, load_block
from integrations.kubernetes.client import KINDS, KubeClient
from integrations.kubernetes.rollout import RolloutState

__all__ = ["CHANGE", "STEP", "ChangeInputs", "ChangeOutputs", "RolloutFailed", "WorkloadInputs",
           "check_allowed", "client_for", "marker", "marker_annotations", "preview_thread",
           "sync_client"]

STEP = "firelane.io/step"
CHANGE = "firelane.io/change"
T = TypeVar("T")


class RolloutFailed(ActionError):
    """The change was made, but its rollout failed (ProgressDeadlineExceeded) or did not end
    within the step's `timeout_seconds`. Not retried: the change is made, repeating it cannot
    help; the runbook's `on_failure` steps decide what happens next."""

    retryable = False


class WorkloadInputs(BaseModel):
    """Which workload, in which namespace, on which cluster."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Workload name", min_length=1)
    namespace: str = Field(default="default", description="Namespace", min_length=1)
    kind: Literal["deployment", "statefulset", "daemonset"] = Field(
        default="deployment", description="Workload kind")
    cluster: str | None = Field(default=None, description=(
        "KubernetesCluster block (default: the runbook's credentials.kubernetes, else "
        "`default`)"))


class ChangeInputs(WorkloadInputs):
    """A change to a workload, and how long to wait for its rollout."""

    wait: bool = Field(default=True, description="Wait for the rollout to finish or fail")
    timeout_seconds: float = Field(default=300, gt=0, le=3600, description=(
        "How long to wait for the rollout"))


class ChangeOutputs(BaseModel):
    """What a destructive `kubernetes.*` action changed, and how its rollout ended."""

    kind: str
    namespace: str
    name: str
    changed: bool
    already_done: bool = False
    dry_run: bool = False
    from_revision: int | None = None
    to_revision: int | None = None
    from_images: list[str] = []
    to_images: list[str] = []
    from_replicas: int | None = None
    to_replicas: int | None = None
    pod: str | None = None
    rollout: RolloutState | None = None


def check_allowed(ctx: ActionContext, namespace: str, kind: str, name: str | None) -> None:
    """Refuse, before any request, a namespace or workload the runbook's `kubernetes:`
    allowlist does not name (`name=None` checks the namespace only)."""
    policy = ctx.kubernetes_allow
    if namespace not in policy.namespaces:
        raise ActionInputError(
            f"kubernetes: namespace {namespace!r} is not in this runbook's "
            f"kubernetes.namespaces ({', '.join(policy.namespaces) or 'none listed'}); "
            "list it there to let the runbook touch it")
    if name is not None and not policy.allows(namespace, KINDS.get(kind, kind), name):
        raise ActionInputError(
            f"kubernetes: {kind.lower()}/{name} is not in this runbook's kubernetes.workloads "
            f"({', '.join(policy.workloads) or 'none listed'}); list it there (name, "
            "kind/name or *) to let the runbook touch it")


async def client_for(ctx: ActionContext, cluster: str | None) -> KubeClient:
    """The client for this run: the sandbox's stand-in in sandbox runs, else the
    KubernetesCluster block `cluster` or the runbook's `credentials.kubernetes`."""
    from integrations.kubernetes.block import KubernetesCluster

    if cluster and not ctx.sandbox:
        try:
            block: Any = await cached_block(KubernetesCluster, cluster)
        except ValueError as exc:
            raise ConfigError(f"no KubernetesCluster block named {cluster!r}") from exc
    else:
        block = await load_block(KubernetesCluster, ctx, "kubernetes")
    return KubeClient(await in_thread(block.get_client), block.timeout_seconds)


def sync_client(cluster: str | None) -> KubeClient:
    """A client outside a run (approval previews, credential checks): the running sandbox's
    when one is set and no block is named, else the block `cluster` (or `default`)."""
    from integrations.kubernetes.block import KubernetesCluster

    settings = Settings.from_env()
    block: Any
    if cluster is None and settings.sandbox_url and settings.sandbox_ca:
        block = KubernetesCluster.for_sandbox(settings.sandbox_url.rstrip("/"),
                                              settings.sandbox_ca)
    else:
        block = KubernetesCluster.load(cluster or "default")
    return KubeClient(block.get_client(), block.timeout_seconds)


def preview_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `make()` to completion in a thread of its own: previews are called synchronously
    from inside the engine's event loop, where neither Prefect's block loading nor
    `asyncio.run` may run."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result(timeout=60)


def marker(workload: Any, key: str) -> dict[str, Any] | None:
    """What this step already changed on `workload` (its own key in the marker), or None."""
    annotations = workload.metadata.annotations or {}
    if annotations.get(STEP) != key:
        return None
    try:
        done = json.loads(annotations.get(CHANGE) or "{}")
    except ValueError:
        done = {}
    return done if isinstance(done, dict) else {}


def marker_annotations(key: str, change: dict[str, Any]) -> dict[str, str]:
    """The annotations that record `change` as made by the step `key`."""
    return {STEP: key, CHANGE: json.dumps(change, sort_keys=True)}

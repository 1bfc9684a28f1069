"""Reading a workload's rollout as kubectl does (`kubectl rollout status`, `rollout history`),
choosing the revision `rollout undo` goes back to, and waiting for a rollout to end.

A Deployment's rollout is complete when the controller has seen its latest spec
(`observedGeneration >= generation`), every replica is updated, no old replica is left and
every updated one is available; it has failed when its Progressing condition says
`ProgressDeadlineExceeded`
(https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel

from firelane.errors import RateLimited, VendorRejected, VendorUnavailable
from integrations.common import in_thread
from integrations.kubernetes.client import KubeClient

__all__ = ["REVISION", "Revision", "RolloutState", "images", "read_state", "revisions",
           "selector", "state_of", "wait_for_rollout"]

REVISION = "deployment.kubernetes.io/revision"


class RolloutState(BaseModel):
    """Where a workload's rollout stands (`kubectl rollout status`)."""

    kind: str
    namespace: str
    name: str
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    progressing: str | None = None
    progressing_reason: str | None = None
    progressing_message: str | None = None
    revision: int | None = None
    images: list[str] = []
    complete: bool = False
    failed: bool = False
    summary: str = ""


class Revision(BaseModel):
    """One entry of a Deployment's revision history (one ReplicaSet)."""

    revision: int
    replicaset: str
    images: list[str]
    replicas: int
    current: bool


def images(template: Any) -> list[str]:
    """The container images of a pod template."""
    spec = getattr(template, "spec", None)
    return [c.image for c in (getattr(spec, "containers", None) or [])]


def selector(workload: Any) -> str:
    """The workload's label selector as a string (`app=web`)."""
    labels = workload.spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def state_of(workload: Any) -> RolloutState:
    """The rollout state of a Deployment, StatefulSet or DaemonSet object."""
    kind = workload.kind or type(workload).__name__.removeprefix("V1")
    meta, spec, status = workload.metadata, workload.spec, workload.status
    state = RolloutState(kind=kind, namespace=meta.namespace, name=meta.name,
                         generation=meta.generation or 0,
                         observed_generation=getattr(status, "observed_generation", 0) or 0,
                         images=images(spec.template))
    label = f'{kind.lower()} "{meta.name}"'
    if kind == "DaemonSet":
        desired = status.desired_number_scheduled or 0
        state.replicas, state.updated_replicas = desired, status.updated_number_scheduled or 0
        state.ready_replicas = state.available_replicas = status.number_available or 0
    else:
        desired = spec.replicas if spec.replicas is not None else 1
        state.replicas = status.replicas or 0
        state.updated_replicas = status.updated_replicas or 0
        state.ready_replicas = status.ready_replicas or 0
        state.available_replicas = getattr(status, "available_replicas", 0) or 0
    revision = (meta.annotations or {}).get(REVISION)
    state.revision = int(revision) if revision and revision.isdigit() else None
    for cond in getattr(status, "conditions", None) or []:
        if cond.type == "Progressing":
            state.progressing, state.progressing_reason = cond.status, cond.reason
            state.progressing_message = cond.message
    if state.observed_generation < state.generation:
        state.summary = f"Waiting for {label} spec update to be observed..."
    elif state.progressing_reason == "ProgressDeadlineExceeded":
        state.failed = True
        state.summary = f"{label} exceeded its progress deadline"
    elif state.updated_replicas < desired:
        state.summary = (f"Waiting for {label} rollout to finish: {state.updated_replicas} "
                         f"out of {desired} new replicas have been updated...")
    elif state.replicas > state.updated_replicas:
        state.summary = (f"Waiting for {label} rollout to finish: "
                         f"{state.replicas - state.updated_replicas} old replicas are "
                         "pending termination...")
    elif state.available_replicas < state.updated_replicas:
        state.summary = (f"Waiting for {label} rollout to finish: {state.available_replicas} "
                         f"of {state.updated_replicas} updated replicas are available...")
    else:
        state.complete = True
        state.summary = f"{label} successfully rolled out"
    return state


async def read_state(kube: KubeClient, kind: str, namespace: str, name: str) -> RolloutState:
    """Read the workload and its rollout state."""
    return state_of(await in_thread(kube.read, kind, namespace, name))


async def revisions(kube: KubeClient, deployment: Any) -> list[tuple[Revision, Any]]:
    """The Deployment's ReplicaSets (those it controls) as its revision history, oldest
    first, each with the ReplicaSet object."""
    uid = deployment.metadata.uid
    current = (deployment.metadata.annotations or {}).get(REVISION)
    out = []
    for rs in await in_thread(kube.replicasets, deployment.metadata.namespace,
                              selector(deployment)):
        owners = rs.metadata.owner_references or []
        number = (rs.metadata.annotations or {}).get(REVISION, "")
        if not number.isdigit() or not any(o.uid == uid and o.controller for o in owners):
            continue
        out.append((Revision(revision=int(number), replicaset=rs.metadata.name,
                             images=images(rs.spec.template), replicas=rs.spec.replicas or 0,
                             current=number == current), rs))
    return sorted(out, key=lambda pair: pair[0].revision)


async def wait_for_rollout(kube: KubeClient, kind: str, namespace: str, name: str,
                           timeout: float) -> RolloutState:
    """Poll the rollout until it completes, fails or `timeout` seconds pass; the last state
    read. A read that fails for a transient reason is tried again at the next poll."""
    deadline = time.monotonic() + timeout
    pause = min(1.0, max(0.1, timeout / 50))
    state: RolloutState | None = None
    while True:
        try:
            state = await read_state(kube, kind, namespace, name)
        except (VendorUnavailable, RateLimited):
            if state is None and time.monotonic() >= deadline:
                raise
        except VendorRejected:
            raise
        if state is not None and (state.complete or state.failed):
            return state
        if time.monotonic() >= deadline:
            if state is None:
                raise VendorUnavailable("kubernetes", f"{kind} {namespace}/{name}: no answer "
                                        f"within {timeout:g} s")
            return state
        await asyncio.sleep(pause)

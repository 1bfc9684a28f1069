"""The read-only Kubernetes actions, for diagnosis on the timeline and in the war room:
`kubernetes.rollout_status` and `kubernetes.describe`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from firelane.registry import ActionContext, action
from integrations.common import in_thread, retrying
from integrations.kubernetes.base import WorkloadInputs, check_allowed, client_for
from integrations.kubernetes.client import KINDS
from integrations.kubernetes.rollout import Revision, RolloutState, revisions, selector, state_of

__all__ = ["DescribeInputs", "DescribeOutputs", "EventInfo", "PodInfo"]


class PodInfo(BaseModel):
    """One pod of the workload."""

    name: str
    phase: str | None
    ready: bool
    restarts: int
    waiting_reason: str | None = None
    images: list[str] = []


class EventInfo(BaseModel):
    """One recent event about the workload, its ReplicaSets or its pods."""

    type: str | None
    reason: str | None
    object: str
    message: str | None
    count: int
    last_seen: str | None


class DescribeInputs(WorkloadInputs):
    """`kubernetes.describe` inputs."""

    events: int = Field(default=20, ge=0, le=500, description="How many recent events")


class DescribeOutputs(BaseModel):
    """The workload's rollout, pods, recent events and revision history."""

    rollout: RolloutState
    pods: list[PodInfo]
    events: list[EventInfo]
    revisions: list[Revision]


@action("kubernetes.rollout_status", read_only=True)
async def rollout_status(inputs: WorkloadInputs, ctx: ActionContext) -> RolloutState:
    """Read a workload's rollout as `kubectl rollout status` does: observed generation,
    updated/ready/available replicas, the Progressing condition (`ProgressDeadlineExceeded`
    means the rollout failed), its revision and images.

    Example: `{uses: kubernetes.rollout_status, with: {namespace: shop, name: web}}`
    """
    check_allowed(ctx, inputs.namespace, inputs.kind, inputs.name)
    kube = await client_for(ctx, inputs.cluster)
    workload = await retrying(lambda: in_thread(kube.read, KINDS[inputs.kind],
                                                inputs.namespace, inputs.name), ctx)
    state = state_of(workload)
    ctx.emit("kubernetes.rollout_status", state.summary, state.model_dump())
    return state


@action("kubernetes.describe", read_only=True)
async def describe(inputs: DescribeInputs, ctx: ActionContext) -> DescribeOutputs:
    """Describe a workload for diagnosis: its pods with restarts and waiting reasons
    (`CrashLoopBackOff`, `ImagePullBackOff`), recent events about it, its ReplicaSets and
    pods, and (Deployments) its revision history with images.

    Example: `{uses: kubernetes.describe, with: {namespace: shop, name: web}}`
    """
    check_allowed(ctx, inputs.namespace, inputs.kind, inputs.name)
    kube = await client_for(ctx, inputs.cluster)
    kind = KINDS[inputs.kind]

    async def read() -> DescribeOutputs:
        workload = await in_thread(kube.read, kind, inputs.namespace, inputs.name)
        history = await revisions(kube, workload) if kind == "Deployment" else []
        pods = await in_thread(kube.pods, inputs.namespace, selector(workload))
        names = [inputs.name, *(r.replicaset for r, _ in history),
                 *(p.metadata.name for p in pods)]
        events = await in_thread(kube.events, inputs.namespace, names)
        return DescribeOutputs(rollout=state_of(workload), pods=[_pod(p) for p in pods],
                               events=[_event(e) for e in events][-inputs.events:]
                               if inputs.events else [],
                               revisions=[r for r, _ in history])

    out = await retrying(read, ctx)
    waiting = sorted({p.waiting_reason for p in out.pods if p.waiting_reason})
    restarts = sum(p.restarts for p in out.pods)
    ctx.emit("kubernetes.described",
             f"{inputs.kind}/{inputs.name}: {len(out.pods)} pods, {restarts} restarts"
             + (f", waiting: {', '.join(waiting)}" if waiting else "")
             + f"; {out.rollout.summary}",
             {"pods": [p.model_dump() for p in out.pods],
              "revisions": [r.model_dump() for r in out.revisions]})
    return out


def _pod(pod: object) -> PodInfo:
    status = getattr(pod, "status", None)
    statuses = getattr(status, "container_statuses", None) or []
    waiting = next((s.state.waiting.reason for s in statuses
                    if s.state is not None and s.state.waiting is not None), None)
    meta = getattr(pod, "metadata", None)
    return PodInfo(name=str(getattr(meta, "name", "")), phase=getattr(status, "phase", None),
                   ready=bool(statuses) and all(s.ready for s in statuses),
                   restarts=sum(s.restart_count or 0 for s in statuses),
                   waiting_reason=waiting, images=[s.image for s in statuses])


def _event(event: object) -> EventInfo:
    involved = getattr(event, "involved_object", None)
    last = getattr(event, "last_timestamp", None) or getattr(event, "event_time", None)
    return EventInfo(type=getattr(event, "type", None), reason=getattr(event, "reason", None),
                     object=f"{getattr(involved, 'kind', '')}/{getattr(involved, 'name', '')}",
                     message=getattr(event, "message", None),
                     count=int(getattr(event, "count", None) or 1),
                     last_seen=last.isoformat() if last is not None else None)

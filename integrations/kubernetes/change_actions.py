"""The destructive Kubernetes actions: `kubernetes.rollout_restart`, `kubernetes.rollout_undo`,
`kubernetes.scale` and `kubernetes.delete_pod`, each made once (see `base` for the marker),
each under optimistic concurrency: a write carries the `resourceVersion` it was decided on, and
a 409 re-reads the workload and decides again (never re-sends). Dry runs send the same write
with the API server's own `dryRun=All`. Each waits for the rollout to finish or fail within
`timeout_seconds` and reports what changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from firelane.errors import ActionError, VendorUnavailable
from firelane.registry import ActionContext, action
from integrations.common import in_thread, retrying
from integrations.kubernetes.base import (
    ChangeInputs,
    ChangeOutputs,
    RolloutFailed,
    WorkloadInputs,
    check_allowed,
    client_for,
    marker,
    marker_annotations,
    preview_thread,
    sync_client,
)
from integrations.kubernetes.client import KINDS, Conflict, KubeClient
from integrations.kubernetes.rollout import images, state_of, wait_for_rollout
from integrations.kubernetes.undo import (
    Superseded,
    UndoInputs,
    UndoPlan,
    plan_undo,
    preview_undo,
    undo_patch,
)

__all__ = ["DeletePodInputs", "ScaleInputs", "UndoInputs"]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CONFLICT_TRIES = 5


class ScaleInputs(ChangeInputs):
    """`kubernetes.scale` inputs."""

    kind: Literal["deployment", "statefulset"] = Field(
        default="deployment", description="Workload kind")
    replicas: int = Field(ge=0, le=10000, description="Replicas to run")


class DeletePodInputs(ChangeInputs):
    """`kubernetes.delete_pod` inputs: `name` is the pod's."""

    kind: Literal["deployment"] = Field(
        default="deployment", description="Ignored: the pod's owner is read from the pod")


async def _decided(ctx: ActionContext, what: str,
                   decide: Callable[[], Awaitable[ChangeOutputs]]) -> ChangeOutputs:
    """Run `decide` (read, then write once) until it is not refused by a conflict."""
    for _ in range(CONFLICT_TRIES):
        try:
            return await decide()
        except Conflict as exc:
            ctx.emit("kubernetes.conflict", f"{what}: the object changed since it was read; "
                     "reading it again", {"error": str(exc)})
    raise VendorUnavailable("kubernetes", f"{what}: still conflicting after "
                            f"{CONFLICT_TRIES} re-reads")


def _already(ctx: ActionContext, inputs: WorkloadInputs, done: dict[str, Any],
             what: str, kind: str | None = None) -> ChangeOutputs:
    out = ChangeOutputs(kind=kind or KINDS[inputs.kind], namespace=inputs.namespace,
                        name=inputs.name, changed=True, already_done=True,
                        **{k: v for k, v in done.items() if k in ChangeOutputs.model_fields})
    ctx.emit("kubernetes.already_done", f"{what} already made by an earlier try of this "
             "step; not making it again", done)
    return out


async def _settle(kube: KubeClient, inputs: ChangeInputs, ctx: ActionContext,
                  out: ChangeOutputs, what: str) -> ChangeOutputs:
    """Wait for the rollout (unless a dry run or `wait: false`); fail if it failed."""
    if out.dry_run or not inputs.wait:
        return out
    state = await wait_for_rollout(kube, out.kind, inputs.namespace, out.name,
                                   inputs.timeout_seconds)
    out.rollout = state
    if out.kind != "Pod" and out.to_revision is None:
        out.to_revision = state.revision
    ctx.emit("kubernetes.rollout", f"{what}: {state.summary}", state.model_dump())
    if state.failed:
        raise RolloutFailed(f"{what}: the rollout failed: {state.summary} "
                            f"({state.progressing_message})")
    if not state.complete:
        raise RolloutFailed(f"{what}: the rollout did not finish within "
                            f"{inputs.timeout_seconds:g} s: {state.summary}")
    return out


def preview_restart(inputs: ChangeInputs) -> dict[str, str]:
    """What the restart will change, read now for its approval request."""

    async def read() -> dict[str, str]:
        kube = sync_client(inputs.cluster)
        state = state_of(await in_thread(kube.read, KINDS[inputs.kind], inputs.namespace,
                                         inputs.name))
        at = f"revision {state.revision} " if state.revision is not None else ""
        return {"restart": f"{inputs.kind}/{inputs.name} in {inputs.namespace}: every pod of "
                f"{at}({', '.join(state.images)}) replaced by a rolling restart; same images"}

    return preview_thread(read)


def preview_scale(inputs: ScaleInputs) -> dict[str, str]:
    """The replicas before and after, read now for the approval request."""

    async def read() -> dict[str, str]:
        kube = sync_client(inputs.cluster)
        scale = await in_thread(kube.read_scale, KINDS[inputs.kind], inputs.namespace,
                                inputs.name)
        return {"scale": f"{inputs.kind}/{inputs.name} in {inputs.namespace}: "
                f"{scale.spec.replicas} → {inputs.replicas} replicas"}

    return preview_thread(read)


@action("kubernetes.rollout_restart", destructive=True, preview=preview_restart)
async def rollout_restart(inputs: ChangeInputs, ctx: ActionContext) -> ChangeOutputs:
    """Restart a Deployment, StatefulSet or DaemonSet as `kubectl rollout restart` does
    (sets the pod template's `kubectl.kubernetes.io/restartedAt`), once per step, and wait
    for the rollout.

    Example: `{uses: kubernetes.rollout_restart, with: {namespace: shop, name: web}}`
    """
    check_allowed(ctx, inputs.namespace, inputs.kind, inputs.name)
    kube, kind = await client_for(ctx, inputs.cluster), KINDS[inputs.kind]
    what = f"restart {inputs.kind}/{inputs.name}"

    async def decide() -> ChangeOutputs:
        workload = await in_thread(kube.read, kind, inputs.namespace, inputs.name)
        done = marker(workload, ctx.idempotency_key)
        if done is not None:
            return _already(ctx, inputs, done, what)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        revision = state_of(workload).revision
        change = {"action": "rollout_restart", "restarted_at": now, "from_revision": revision,
                  "from_images": images(workload.spec.template)}
        body = {"metadata": {"resourceVersion": workload.metadata.resource_version,
                             "annotations": marker_annotations(ctx.idempotency_key, change)},
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        await in_thread(kube.patch, kind, inputs.namespace, inputs.name, body, ctx.dry_run)
        out = ChangeOutputs(kind=kind, namespace=inputs.namespace, name=inputs.name,
                            changed=not ctx.dry_run, dry_run=ctx.dry_run,
                            from_revision=revision, from_images=change["from_images"],
                            to_images=change["from_images"])
        verb = "would restart" if ctx.dry_run else "restarted"
        ctx.emit("kubernetes.dry_run" if ctx.dry_run else "kubernetes.restarted",
                 f"{verb} {inputs.kind}/{inputs.name} (restartedAt {now})", change)
        return out

    out = await retrying(lambda: _decided(ctx, what, decide), ctx)
    return await _settle(kube, inputs, ctx, out, what)


@action("kubernetes.rollout_undo", destructive=True, preview=preview_undo)
async def rollout_undo(inputs: UndoInputs, ctx: ActionContext) -> ChangeOutputs:
    """Roll a Deployment back to its previous revision (or `to_revision`) as
    `kubectl rollout undo` does: the pod template of that revision's ReplicaSet is copied
    into the Deployment. Once per step: a retried or resumed step that finds its own change
    reports it instead of undoing again (a second undo would roll forward to the bad
    revision). Waits for the rollout; `to_revision` in the result is the revision rolled back
    to, `rollout.revision` the number Kubernetes gives it now.

    Example: `{uses: kubernetes.rollout_undo, with: {namespace: shop, name: web}}`
    """
    check_allowed(ctx, inputs.namespace, inputs.kind, inputs.name)
    if inputs.kind != "deployment":
        raise ActionError(f"kubernetes.rollout_undo supports deployments, not {inputs.kind}")
    kube = await client_for(ctx, inputs.cluster)
    what = f"undo deployment/{inputs.name}"
    first: list[UndoPlan] = []

    async def decide() -> ChangeOutputs:
        dep = await in_thread(kube.read, "Deployment", inputs.namespace, inputs.name)
        done = marker(dep, ctx.idempotency_key)
        if done is not None:
            return _already(ctx, inputs, done, what)
        if first and (valid := first[0].still_valid(kube, dep)) is not True:
            if valid is None:
                ctx.emit("kubernetes.undo_skipped", f"{what}: skipped, the deployment was "
                         "rolled back to the same template by someone else meanwhile",
                         first[0].change())
                return ChangeOutputs(kind="Deployment", namespace=inputs.namespace,
                                     name=inputs.name, changed=False, dry_run=ctx.dry_run,
                                     **first[0].change())
            raise Superseded(f"{what}: the deployment changed to another template since this "
                             f"step decided to roll back ({first[0].describe()}); not rolling "
                             "back what someone else just deployed")
        plan = await plan_undo(kube, dep, inputs.to_revision)
        first[:1] = first[:1] or [plan]
        out = ChangeOutputs(kind="Deployment", namespace=inputs.namespace, name=inputs.name,
                            changed=False, dry_run=ctx.dry_run, **plan.change())
        if plan.skip:
            ctx.emit("kubernetes.undo_skipped", f"{what}: skipped, the current template "
                     f"already matches revision {plan.target.revision}", plan.change())
            return out
        body = undo_patch(kube, dep, plan, ctx.idempotency_key)
        await in_thread(kube.patch, "Deployment", inputs.namespace, inputs.name, body,
                        ctx.dry_run)
        out.changed = not ctx.dry_run
        verb = "would roll back" if ctx.dry_run else "rolled back"
        ctx.emit("kubernetes.dry_run" if ctx.dry_run else "kubernetes.rolled_back",
                 f"{verb} deployment/{inputs.name}: {plan.describe()}", plan.change())
        return out

    out = await retrying(lambda: _decided(ctx, what, decide), ctx)
    return await _settle(kube, inputs, ctx, out, what)


@action("kubernetes.scale", destructive=True, preview=preview_scale)
async def scale(inputs: ScaleInputs, ctx: ActionContext) -> ChangeOutputs:
    """Set a Deployment's or StatefulSet's replicas through its Scale subresource, as
    `kubectl scale` does (with the read `resourceVersion` as precondition), and wait for the
    rollout. Scaling to the replicas it already has changes nothing, so a retry after a
    lost answer does not scale again.

    Example: `{uses: kubernetes.scale, with: {namespace: shop, name: web, replicas: 6}}`
    """
    check_allowed(ctx, inputs.namespace, inputs.kind, inputs.name)
    kube, kind = await client_for(ctx, inputs.cluster), KINDS[inputs.kind]
    what = f"scale {inputs.kind}/{inputs.name}"
    tries = 0

    async def decide() -> ChangeOutputs:
        nonlocal tries
        tries += 1
        current = await in_thread(kube.read_scale, kind, inputs.namespace, inputs.name)
        before = int(current.spec.replicas or 0)
        out = ChangeOutputs(kind=kind, namespace=inputs.namespace, name=inputs.name,
                            changed=False, dry_run=ctx.dry_run, from_replicas=before,
                            to_replicas=inputs.replicas)
        if before == inputs.replicas:
            out.already_done = tries > 1 or ctx.repeat_since is not None
            out.changed = out.already_done
            ctx.emit("kubernetes.scale_unchanged", f"{what}: already at {before} replicas")
            return out
        await in_thread(kube.patch_scale, kind, inputs.namespace, inputs.name,
                        inputs.replicas, current.metadata.resource_version, ctx.dry_run)
        out.changed = not ctx.dry_run
        verb = "would scale" if ctx.dry_run else "scaled"
        ctx.emit("kubernetes.dry_run" if ctx.dry_run else "kubernetes.scaled",
                 f"{verb} {inputs.kind}/{inputs.name}: {before} → {inputs.replicas} replicas",
                 {"from_replicas": before, "to_replicas": inputs.replicas})
        return out

    out = await retrying(lambda: _decided(ctx, what, decide), ctx)
    return await _settle(kube, inputs, ctx, out, what)


@action("kubernetes.delete_pod", destructive=True,
        preview=lambda i: {"delete": f"pod {i.name} in {i.namespace} (its controller "
                           "replaces it)"})
async def delete_pod(inputs: DeletePodInputs, ctx: ActionContext) -> ChangeOutputs:
    """Delete one pod of a workload the runbook allows (its owner, through its ReplicaSet,
    must be listed) so its controller replaces it, and wait for the workload to be whole
    again. The delete names the pod's uid as precondition; a later try that finds the pod
    gone reports the earlier delete.

    Example: `{uses: kubernetes.delete_pod, with: {namespace: shop, name: web-6d9f-x2x7k}}`
    """
    check_allowed(ctx, inputs.namespace, "deployment", None)
    kube = await client_for(ctx, inputs.cluster)
    what = f"delete pod {inputs.name}"
    tries = 0
    owner: dict[str, str] = {}

    async def decide() -> ChangeOutputs:
        nonlocal tries
        tries += 1
        out = ChangeOutputs(kind="Pod", namespace=inputs.namespace, name=inputs.name,
                            changed=False, dry_run=ctx.dry_run, pod=inputs.name)
        try:
            pod = await in_thread(kube.read_pod, inputs.namespace, inputs.name)
        except ActionError as exc:
            if getattr(exc, "status", None) == 404 and (tries > 1 or ctx.repeat_since):
                return _already(ctx, inputs, {"pod": inputs.name}, what, "Pod")
            raise
        if not owner:
            owner.update(await _owner(kube, inputs.namespace, pod))
        check_allowed(ctx, inputs.namespace, owner["kind"], owner["name"])
        await in_thread(kube.delete_pod, inputs.namespace, inputs.name, pod.metadata.uid,
                        ctx.dry_run)
        out.changed = not ctx.dry_run
        verb = "would delete" if ctx.dry_run else "deleted"
        ctx.emit("kubernetes.dry_run" if ctx.dry_run else "kubernetes.pod_deleted",
                 f"{verb} pod {inputs.name} of {owner['kind'].lower()}/{owner['name']}",
                 {"pod": inputs.name, **owner})
        return out

    out = await retrying(lambda: _decided(ctx, what, decide), ctx)
    if not owner or out.dry_run or not inputs.wait:
        return out
    settled = await _settle(kube, inputs, ctx, out.model_copy(update={
        "kind": owner["kind"], "name": owner["name"]}), what)
    return out.model_copy(update={"rollout": settled.rollout})


async def _owner(kube: KubeClient, namespace: str, pod: Any) -> dict[str, str]:
    """The workload controlling `pod` (through its ReplicaSet for a Deployment)."""
    ref = next((r for r in pod.metadata.owner_references or [] if r.controller), None)
    if ref is None:
        raise ActionError(f"pod {pod.metadata.name} has no controller: deleting it would "
                          "not replace it")
    if ref.kind == "ReplicaSet":
        rs = await in_thread(kube.read_replicaset, namespace, ref.name)
        parent = next((r for r in rs.metadata.owner_references or [] if r.controller), None)
        if parent is None:
            raise ActionError(f"pod {pod.metadata.name}: replicaset {ref.name} has no owner")
        return {"kind": parent.kind, "name": parent.name}
    return {"kind": ref.kind, "name": ref.name}

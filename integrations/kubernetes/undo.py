"""Choosing and writing a Deployment rollback as `kubectl rollout undo` does
(k8s.io/kubectl/pkg/polymorphichelpers/rollback.go): the target is the revision named, or
the newest revision older than the current one; its ReplicaSet's pod template (without the
`pod-template-hash` label) replaces the Deployment's, and the ReplicaSet's annotations replace
the Deployment's (except the controller's own), in one JSON patch. A template that already
matches the target is skipped. Firelane's patch also carries the `resourceVersion` it was
planned on and the step's marker.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from firelane.errors import ActionError
from integrations.kubernetes.base import (
    ChangeInputs,
    marker_annotations,
    preview_thread,
    sync_client,
)
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.rollout import REVISION, Revision, revisions

__all__ = ["Superseded", "UndoInputs", "UndoPlan", "plan_undo", "preview_undo", "undo_patch"]

HASH_LABEL = "pod-template-hash"
_SKIPPED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION,
                      "deployment.kubernetes.io/revision-history",
                      "deployment.kubernetes.io/desired-replicas",
                      "deployment.kubernetes.io/max-replicas",
                      "deprecated.deployment.rollback.to"})


class UndoInputs(ChangeInputs):
    """`kubernetes.rollout_undo` inputs."""

    to_revision: int | None = Field(default=None, ge=1, description=(
        "Revision to roll back to (default: the previous one)"))


class _NothingToUndo(ActionError):
    retryable = False


class Superseded(ActionError):
    """The Deployment changed to another template between this step's decision and its
    write (a 409), and not to the one it meant to roll back to: someone else is acting on it,
    so rolling back now could undo their change."""

    retryable = False


@dataclass(frozen=True)
class UndoPlan:
    """From which revision to which, the target's ReplicaSet, and both pod templates (without
    the hash label) for comparing after a conflict."""

    current: Revision | None
    target: Revision
    replicaset: Any
    skip: bool
    from_template: dict[str, Any]
    to_template: dict[str, Any]

    def still_valid(self, kube: KubeClient, deployment: Any) -> bool | None:
        """After a conflict: True when the Deployment still runs the template this plan rolls
        back from, None when it already runs the target (someone rolled back), else False."""
        now = _without_hash(kube.api.sanitize_for_serialization(deployment.spec.template))
        if now == self.to_template:
            return None
        return now == self.from_template

    def change(self) -> dict[str, Any]:
        """The change as recorded in the marker and the outputs."""
        return {"action": "rollout_undo",
                "from_revision": self.current.revision if self.current else None,
                "from_images": self.current.images if self.current else [],
                "to_revision": self.target.revision, "to_images": self.target.images}

    def describe(self) -> str:
        """`revision 3 (web:2) → revision 2 (web:1)`."""
        change = self.change()
        return (f"revision {change['from_revision']} ({', '.join(change['from_images'])}) → "
                f"revision {change['to_revision']} ({', '.join(change['to_images'])})")


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(template)
    (clean.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return clean


async def plan_undo(kube: KubeClient, deployment: Any, to_revision: int | None) -> UndoPlan:
    """The rollback of `deployment` to `to_revision` (or the previous revision)."""
    name = deployment.metadata.name
    history = await revisions(kube, deployment)
    number = (deployment.metadata.annotations or {}).get(REVISION, "")
    now = int(number) if number.isdigit() else max((r.revision for r, _ in history), default=0)
    current = next((r for r, _ in history if r.revision == now), None)
    if to_revision is not None:
        found = [(r, rs) for r, rs in history if r.revision == to_revision]
        if not found:
            have = ", ".join(str(r.revision) for r, _ in history) or "none"
            raise _NothingToUndo(f"deployment/{name}: unable to find revision {to_revision} "
                                 f"in its history (revisions: {have})")
        target, rs = found[0]
    else:
        older = [(r, rs) for r, rs in history if r.revision < now]
        if not older:
            raise _NothingToUndo(f"deployment/{name}: no revision older than {now} in its "
                                 "history: nothing to roll back to")
        target, rs = older[-1]
    api = kube.api
    ours = _without_hash(api.sanitize_for_serialization(deployment.spec.template))
    theirs = _without_hash(api.sanitize_for_serialization(rs.spec.template))
    return UndoPlan(current=current, target=target, replicaset=rs, skip=ours == theirs,
                    from_template=ours, to_template=theirs)


def undo_patch(kube: KubeClient, deployment: Any, plan: UndoPlan,
               key: str) -> list[dict[str, Any]]:
    """The JSON patch that rolls back, conditional on the read `resourceVersion`."""
    template = _without_hash(kube.api.sanitize_for_serialization(plan.replicaset.spec.template))
    current = deployment.metadata.annotations or {}
    annotations = {k: v for k, v in current.items() if k in _SKIPPED}
    annotations.update({k: v for k, v in (plan.replicaset.metadata.annotations or {}).items()
                        if k not in _SKIPPED})
    annotations.update(marker_annotations(key, plan.change()))
    return [{"op": "replace", "path": "/metadata/resourceVersion",
             "value": deployment.metadata.resource_version},
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations}]


def preview_undo(inputs: UndoInputs) -> dict[str, str]:
    """What the rollback will change, read now for its approval request."""

    async def read() -> dict[str, str]:
        from integrations.common import in_thread

        kube = sync_client(inputs.cluster)
        dep = await in_thread(kube.read, "Deployment", inputs.namespace, inputs.name)
        plan = await plan_undo(kube, dep, inputs.to_revision)
        if plan.skip:
            return {"rollback": f"deployment/{inputs.name}: nothing to change, the template "
                    f"already matches revision {plan.target.revision}"}
        return {"rollback": f"deployment/{inputs.name} in {inputs.namespace}: "
                f"{plan.describe()}"}

    return preview_thread(read)

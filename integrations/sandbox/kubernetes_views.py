"""How the Kubernetes stand-in shows its objects: status computed now, lists, the Scale
subresource and `Status` error bodies, in the shapes of the Kubernetes API (apps/v1, core/v1,
autoscaling/v1, meta/v1 Status) that the official client's models deserialise."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from integrations.sandbox.kubernetes_model import KubeCluster, iso

__all__ = ["deployment_view", "dump_cluster", "listing", "pod_view", "replicaset_view",
           "scale_view", "set_view", "status_body"]

_PLURALS = {"Deployment": ("deployments", "apps"), "ReplicaSet": ("replicasets", "apps"),
            "Pod": ("pods", ""), "Scale": ("deployments", "apps"),
            "StatefulSet": ("statefulsets", "apps"), "DaemonSet": ("daemonsets", "apps")}


def status_body(code: int, reason: str, message: str, name: str | None = None,
                kind: str | None = None, causes: list[dict[str, str]] | None = None,
                ) -> dict[str, Any]:
    """A `meta/v1 Status` failure, as the API server answers errors."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason,
                            "code": code}
    if name is not None or kind is not None:
        plural, group = _PLURALS.get(kind or "", (kind or "", ""))
        details: dict[str, Any] = {"name": name, "kind": plural}
        if group:
            details["group"] = group
        if causes:
            details["causes"] = causes
        body["details"] = details
    return body


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def _condition(kind: str, ok: bool, reason: str, message: str, at: float) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": message, "lastUpdateTime": iso(at), "lastTransitionTime": iso(at)}


def deployment_view(cluster: KubeCluster, dep: dict[str, Any],
                    now: float | None = None) -> dict[str, Any]:
    """A Deployment with its status as the controller would report it now."""
    now = time.time() if now is None else now
    out = _public(dep)
    sets = cluster.owned(dep)
    desired = int(dep["spec"]["replicas"])
    if not sets:
        out["status"] = {"observedGeneration": dep["metadata"]["generation"]}
        return out
    newest = sets[-1]
    pods = [p for rs in sets for p in cluster.pods_of(rs)]
    ready = [p for p in pods if cluster.container_state(p, now)[0]]
    new_pods = cluster.pods_of(newest)
    new_ready = [p for p in new_pods if cluster.container_state(p, now)[0]]
    complete = len(new_ready) >= desired and len(pods) == len(new_pods)
    rs_name = newest["metadata"]["name"]
    progress_at = float(dep.get("_progress_at", now))
    deadline = float(dep["spec"].get("progressDeadlineSeconds", 600)) * cluster.deadline_scale
    if complete:
        progressing = _condition("Progressing", True, "NewReplicaSetAvailable",
                                 f'ReplicaSet "{rs_name}" has successfully progressed.',
                                 progress_at)
    elif now - progress_at > deadline:
        progressing = _condition("Progressing", False, "ProgressDeadlineExceeded",
                                 f'ReplicaSet "{rs_name}" has timed out progressing.',
                                 progress_at + deadline)
    else:
        progressing = _condition("Progressing", True, "ReplicaSetUpdated",
                                 f'ReplicaSet "{rs_name}" is progressing.', progress_at)
    minimum = desired - math.floor(desired * 0.25)
    available = _condition(
        "Available", len(ready) >= minimum,
        "MinimumReplicasAvailable" if len(ready) >= minimum else "MinimumReplicasUnavailable",
        "Deployment has minimum availability." if len(ready) >= minimum else
        "Deployment does not have minimum availability.", progress_at)
    status: dict[str, Any] = {"observedGeneration": dep["metadata"]["generation"],
                              "replicas": len(pods), "updatedReplicas": len(new_pods),
                              "conditions": [available, progressing]}
    if ready:
        status["readyReplicas"] = status["availableReplicas"] = len(ready)
    if desired - len(ready) > 0:
        status["unavailableReplicas"] = desired - len(ready)
    out["status"] = status
    return out


def replicaset_view(cluster: KubeCluster, rs: dict[str, Any],
                    now: float | None = None) -> dict[str, Any]:
    """A ReplicaSet with its status now."""
    now = time.time() if now is None else now
    out = _public(rs)
    pods = cluster.pods_of(rs)
    ready = sum(1 for p in pods if cluster.container_state(p, now)[0])
    out["status"] = {"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                     "observedGeneration": rs["metadata"]["generation"]}
    if ready:
        out["status"]["readyReplicas"] = out["status"]["availableReplicas"] = ready
    return out


def pod_view(cluster: KubeCluster, pod: dict[str, Any], now: float | None = None,
             ) -> dict[str, Any]:
    """A Pod with its phase, conditions and container status now."""
    now = time.time() if now is None else now
    out = _public(pod)
    ready, restarts, waiting = cluster.container_state(pod, now)
    created = float(pod["_created"])
    container = pod["spec"]["containers"][0]
    state: dict[str, Any]
    if ready:
        state = {"running": {"startedAt": iso(created + cluster.ready_delay)}}
    else:
        message = ("back-off restarting failed container" if waiting == "CrashLoopBackOff"
                   else f'Back-off pulling image "{container["image"]}"'
                   if waiting == "ImagePullBackOff" else "")
        state = {"waiting": {"reason": waiting, "message": message}}
    status_of: dict[str, Any] = {
        "name": container["name"], "image": container["image"],
        "imageID": f"sandbox://{container['image']}" if ready else "", "ready": ready,
        "restartCount": restarts, "started": ready, "state": state,
        "containerID": f"containerd://{pod['metadata']['uid'].replace('-', '')}"}
    if restarts:
        status_of["lastState"] = {"terminated": {
            "exitCode": 1, "reason": "Error", "startedAt": iso(now - cluster.crash_period),
            "finishedAt": iso(now)}}
    pulling = waiting in ("ImagePullBackOff", "ErrImagePull")
    out["status"] = {
        "phase": "Pending" if pulling else "Running", "hostIP": "10.0.0.1",
        "podIP": f"10.1.{len(pod['metadata']['name']) % 250}.{int(created) % 250 + 2}",
        "startTime": iso(created), "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(created)},
            {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": iso(created)},
            {"type": "Ready", "status": str(ready), "lastTransitionTime": iso(created)}],
        "containerStatuses": [status_of]}
    return out


def set_view(cluster: KubeCluster, obj: dict[str, Any], now: float | None = None,
             ) -> dict[str, Any]:
    """A StatefulSet or DaemonSet with its status now (every pod runs the newest revision)."""
    now = time.time() if now is None else now
    out = _public(obj)
    pods = cluster.pods_of(obj)
    ready = sum(1 for p in pods if cluster.container_state(p, now)[0])
    generation = obj["metadata"]["generation"]
    if obj["kind"] == "DaemonSet":
        out["status"] = {"observedGeneration": generation, "desiredNumberScheduled": 1,
                         "currentNumberScheduled": len(pods), "numberMisscheduled": 0,
                         "numberReady": ready, "numberAvailable": ready,
                         "updatedNumberScheduled": len(pods)}
        if 1 - ready > 0:
            out["status"]["numberUnavailable"] = 1 - ready
        return out
    out["status"] = {"observedGeneration": generation, "replicas": len(pods),
                     "readyReplicas": ready, "availableReplicas": ready,
                     "currentReplicas": len(pods), "updatedReplicas": len(pods),
                     "currentRevision": obj.get("_revision"),
                     "updateRevision": obj.get("_revision"), "collisionCount": 0}
    return out


def scale_view(dep: dict[str, Any], replicas_now: int) -> dict[str, Any]:
    """The Deployment's `autoscaling/v1 Scale` subresource."""
    meta = dep["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in
                        sorted(dep["spec"]["selector"]["matchLabels"].items()))
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp")},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": replicas_now, "selector": selector}}


def listing(kind: str, api_version: str, cluster: KubeCluster,
            items: list[dict[str, Any]]) -> dict[str, Any]:
    """A `<Kind>List` of `items`."""
    return {"apiVersion": api_version, "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(next(cluster._rv))}, "items": items}


def dump_cluster(cluster: KubeCluster) -> dict[str, Any]:
    """The cluster for `/_admin/state`: every object as served, and the settings."""
    cluster.tick()
    now = time.time()
    return {"settings": {"ready_delay": cluster.ready_delay,
                         "crash_period": cluster.crash_period,
                         "deadline_scale": cluster.deadline_scale,
                         "bad_images": dict(cluster.bad_images)},
            "deployments": [deployment_view(cluster, d, now)
                            for d in cluster.deployments.values()],
            "replicasets": [replicaset_view(cluster, r, now)
                            for r in cluster.replicasets.values()],
            "pods": [pod_view(cluster, p, now) for p in cluster.pods.values()],
            "sets": [set_view(cluster, o, now) for o in cluster.sets.values()],
            "events": copy.deepcopy(cluster.events)}

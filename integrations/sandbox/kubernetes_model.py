"""The Kubernetes stand-in's cluster: Deployments own ReplicaSets own Pods, as the deployment
controller arranges them (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/).

A change to a Deployment's pod template makes a new ReplicaSet (or adopts an old one whose
template matches, giving it the next revision number, as `rollout undo` relies on); its pods
become ready `ready_delay` seconds after they are created, unless their image is marked bad:
`crash` images crash-loop (restartCount grows every `crash_period` seconds, waiting reason
`CrashLoopBackOff`), `pull` images wait in `ImagePullBackOff`. The old ReplicaSets keep their
pods until the new one is fully ready, so a bad rollout stalls with the old pods serving, and
its Progressing condition turns to `ProgressDeadlineExceeded` after `progressDeadlineSeconds`
x `deadline_scale` seconds. The controller's work is done lazily on every read (`tick`).
Objects are stored as the API's JSON; keys starting with `_` are the stand-in's own and never
served. Status is computed on read and does not move `resourceVersion`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["KubeCluster", "iso"]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NOT_COPIED = (REVISION, "deployment.kubernetes.io/revision-history",
               "kubectl.kubernetes.io/last-applied-configuration")

Key = tuple[str, str]


def iso(at: float) -> str:
    """An RFC 3339 timestamp, as the API writes them."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: dict[str, Any]) -> str:
    """A stable `pod-template-hash` for a template (the hash label itself left out)."""
    clean = copy.deepcopy(template)
    clean.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    digest = int(hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest(), 16)
    return "".join(_ALPHABET[(digest >> (5 * i)) % len(_ALPHABET)] for i in range(10))


def _suffix() -> str:
    return "".join(random.choice(_ALPHABET) for _ in range(5))


@dataclass
class KubeCluster:
    """The stand-in's objects and settings (`token`, `ready_delay`, `crash_period`,
    `deadline_scale`, `bad_images`: image → `crash` or `pull`)."""

    token: str = "sandbox-k8s-token"
    ready_delay: float = 0.3
    crash_period: float = 0.3
    deadline_scale: float = 0.005
    bad_images: dict[str, str] = field(default_factory=dict)
    deployments: dict[Key, dict[str, Any]] = field(default_factory=dict)
    replicasets: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[Key, dict[str, Any]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _rv: Any = field(default_factory=lambda: itertools.count(1000), repr=False)

    def clear(self) -> None:
        """Forget every object and bad image (the timing settings stay)."""
        for objects in (self.deployments, self.replicasets, self.pods, self.sets,
                        self.bad_images):
            objects.clear()
        self.events.clear()

    def bump(self, obj: dict[str, Any]) -> None:
        """Give `obj` the next resourceVersion (every stored write does)."""
        obj["metadata"]["resourceVersion"] = str(next(self._rv))

    def namespaces(self) -> list[str]:
        """Every namespace holding an object, and `default`."""
        return sorted({"default", *(ns for ns, _ in self.deployments),
                       *(ns for _, ns, _ in self.sets)})

    def _meta(self, name: str, namespace: str, labels: dict[str, str] | None = None,
              owner: dict[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                                "creationTimestamp": iso(time.time()), "labels": labels or {},
                                "annotations": {}, "generation": 1}
        if owner is not None:
            meta["ownerReferences"] = [{
                "apiVersion": "apps/v1", "kind": owner["kind"],
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
        return meta

    def event(self, obj: dict[str, Any], reason: str, message: str,
              kind: str = "Normal") -> None:
        """Record an event about `obj` (a repeated one counts up, as the API's do)."""
        meta = obj["metadata"]
        now = iso(time.time())
        for old in self.events:
            involved = old["involvedObject"]
            if (involved["uid"], old["reason"], old["message"]) == (meta["uid"], reason,
                                                                     message):
                old["count"] += 1
                old["lastTimestamp"] = now
                return
        event: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event", "type": kind, "reason": reason,
            "message": message, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                         "namespace": meta["namespace"], "uid": str(uuid.uuid4()),
                         "creationTimestamp": now},
            "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"),
                               "kind": obj["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "source": {"component": "deployment-controller" if obj["kind"] != "Pod"
                       else "kubelet"}, "reportingComponent": "", "reportingInstance": ""}
        self.bump(event)
        self.events.append(event)

    def seed(self, name: str, image: str, namespace: str = "default", replicas: int = 2,
             progress_deadline_seconds: int = 600, container: str | None = None) -> None:
        """Create a Deployment whose first revision is already rolled out and ready."""
        labels = {"app": name}
        dep: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": self._meta(name, namespace, dict(labels)),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "progressDeadlineSeconds": progress_deadline_seconds,
                     "revisionHistoryLimit": 10,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {
                         "containers": [{"name": container or name, "image": image}]}}}}
        self.bump(dep)
        self.deployments[(namespace, name)] = dep
        self.reconcile(dep, settled=True)

    def owned(self, dep: dict[str, Any]) -> list[dict[str, Any]]:
        """The Deployment's ReplicaSets, oldest revision first."""
        uid = dep["metadata"]["uid"]
        sets = [rs for rs in self.replicasets.values()
                if rs["metadata"].get("ownerReferences", [{}])[0].get("uid") == uid]
        return sorted(sets, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))

    def pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        """The ReplicaSet's pods."""
        uid = rs["metadata"]["uid"]
        return [p for p in self.pods.values()
                if p["metadata"]["ownerReferences"][0]["uid"] == uid]

    def reconcile(self, dep: dict[str, Any], settled: bool = False) -> None:
        """Act on a changed Deployment spec: the ReplicaSet for its template (new, or an old
        one adopted with the next revision) scaled to `replicas`. `settled` makes the pods
        ready at once (a seeded workload)."""
        template = dep["spec"]["template"]
        wanted = template_hash(template)
        sets = self.owned(dep)
        newest = sets[-1] if sets else None
        current = next((rs for rs in sets if rs["metadata"]["labels"][HASH_LABEL] == wanted),
                       None)
        next_revision = int(newest["metadata"]["annotations"][REVISION]) + 1 if newest else 1
        if current is None:
            current = self._new_replicaset(dep, wanted, next_revision)
            dep["_progress_at"] = time.time()
        elif current is not newest:
            annotations = current["metadata"]["annotations"]
            annotations["deployment.kubernetes.io/revision-history"] = annotations[REVISION]
            annotations[REVISION] = str(next_revision)
            self.bump(current)
            dep["_progress_at"] = time.time()
        for key, value in dep["metadata"].get("annotations", {}).items():
            if key not in _NOT_COPIED:
                current["metadata"]["annotations"][key] = value
        dep["metadata"]["annotations"][REVISION] = current["metadata"]["annotations"][REVISION]
        self.scale_replicaset(current, int(dep["spec"]["replicas"]), settled)
        if settled:
            for rs in sets:
                if rs is not current:
                    self.scale_replicaset(rs, 0)

    def _new_replicaset(self, dep: dict[str, Any], pod_hash: str,
                        revision: int) -> dict[str, Any]:
        name, ns = dep["metadata"]["name"], dep["metadata"]["namespace"]
        template = copy.deepcopy(dep["spec"]["template"])
        labels = {**template.get("metadata", {}).get("labels", {}), HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": self._meta(f"{name}-{pod_hash}", ns, dict(labels), dep),
            "spec": {"replicas": 0, "selector": {"matchLabels": {
                **dep["spec"]["selector"]["matchLabels"], HASH_LABEL: pod_hash}},
                "template": template}}
        rs["metadata"]["annotations"][REVISION] = str(revision)
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(
            dep["spec"]["replicas"])
        self.bump(rs)
        self.replicasets[(ns, rs["metadata"]["name"])] = rs
        return rs

    def scale_replicaset(self, rs: dict[str, Any], replicas: int, settled: bool = False) -> None:
        """Set a ReplicaSet's replicas and create or delete pods to match."""
        pods = self.pods_of(rs)
        if rs["spec"]["replicas"] != replicas:
            owner = self._owner_of(rs)
            if owner is not None:
                verb = "up" if replicas > rs["spec"]["replicas"] else "down"
                self.event(owner, "ScalingReplicaSet",
                           f"Scaled {verb} replica set {rs['metadata']['name']} to {replicas}")
            rs["spec"]["replicas"] = replicas
            self.bump(rs)
        for pod in pods[replicas:]:
            self.pods.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        for _ in range(replicas - len(pods)):
            self.create_pod(rs, settled)

    def _owner_of(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        refs = obj["metadata"].get("ownerReferences") or [{}]
        uid = refs[0].get("uid")
        for candidate in (*self.deployments.values(), *self.replicasets.values(),
                          *self.sets.values()):
            if candidate["metadata"]["uid"] == uid:
                return candidate
        return None

    def create_pod(self, rs: dict[str, Any], settled: bool = False, name: str | None = None,
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
        """A new pod of `rs` (a ReplicaSet, StatefulSet or DaemonSet), ready after
        `ready_delay`, or at once when `settled`."""
        ns = rs["metadata"]["namespace"]
        name = name or f"{rs['metadata']['name']}-{_suffix()}"
        template = rs["spec"]["template"]
        pod: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": self._meta(name, ns, {**template["metadata"]["labels"],
                                              **(labels or {})}, rs),
            "spec": copy.deepcopy(template["spec"]),
            "_created": time.time() - (self.ready_delay if settled else 0.0)}
        pod["spec"].setdefault("nodeName", "sandbox-node-1")
        self.bump(pod)
        self.pods[(ns, name)] = pod
        self.event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to sandbox-node-1")
        return pod

    def delete_pod(self, pod: dict[str, Any]) -> None:
        """Delete a pod; its ReplicaSet replaces it."""
        meta = pod["metadata"]
        self.pods.pop((meta["namespace"], meta["name"]), None)
        self.event(pod, "Killing", f"Stopping container {pod['spec']['containers'][0]['name']}")
        owner = self._owner_of(pod)
        if owner is not None and owner["kind"] == "ReplicaSet":
            self.scale_replicaset(owner, int(owner["spec"]["replicas"]))
        elif owner is not None:
            self.reconcile_set(owner)

    def seed_set(self, kind: str, name: str, image: str, namespace: str = "default",
                 replicas: int = 1) -> None:
        """Create a StatefulSet (`replicas` pods) or DaemonSet (one node, one pod), ready."""
        labels = {"app": name}
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": self._meta(name, namespace, dict(labels)),
            "spec": {"selector": {"matchLabels": dict(labels)},
                     "updateStrategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": {
                         "containers": [{"name": name, "image": image}]}}}}
        if kind == "StatefulSet":
            obj["spec"].update(replicas=replicas, serviceName=name)
        self.bump(obj)
        self.sets[(kind, namespace, name)] = obj
        self.reconcile_set(obj, settled=True)

    def reconcile_set(self, obj: dict[str, Any], settled: bool = False) -> None:
        """Act on a changed StatefulSet or DaemonSet: a new template replaces every pod (the
        stand-in updates them all at once), labelled with its `controller-revision-hash`."""
        name = obj["metadata"]["name"]
        revision = f"{name}-{template_hash(obj['spec']['template'])}"
        if obj.get("_revision") != revision:
            for pod in self.pods_of(obj):
                self.pods.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
                self.event(pod, "Killing", f"Stopping container {name}")
            obj["_revision"], obj["_progress_at"] = revision, time.time()
        desired = int(obj["spec"].get("replicas", 1))
        pods = self.pods_of(obj)
        for pod in pods[desired:]:
            self.pods.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        taken = {p["metadata"]["name"] for p in self.pods_of(obj)}
        for _ in range(desired - len(self.pods_of(obj))):
            ordinal = next(f"{name}-{i}" for i in itertools.count()
                           if f"{name}-{i}" not in taken)
            taken.add(ordinal)
            self.create_pod(obj, settled, ordinal if obj["kind"] == "StatefulSet" else None,
                            {"controller-revision-hash": revision})

    def container_state(self, pod: dict[str, Any], now: float) -> tuple[bool, int, str | None]:
        """(ready, restartCount, waiting reason) of the pod's first container now."""
        age = now - pod["_created"]
        badness = self.bad_images.get(pod["spec"]["containers"][0]["image"])
        if badness == "pull":
            return False, 0, "ImagePullBackOff" if age >= self.ready_delay else "ErrImagePull"
        if badness is not None:
            restarts = int(age / self.crash_period) if self.crash_period > 0 else 0
            return False, restarts, "CrashLoopBackOff" if restarts else "ContainerCreating"
        if age >= self.ready_delay:
            return True, 0, None
        return False, 0, "ContainerCreating"

    def tick(self) -> None:
        """Do the controllers' work up to now: finish rollouts whose new pods are all ready
        (old ReplicaSets scaled to 0) and record back-off events of crash-looping pods."""
        now = time.time()
        for pod in list(self.pods.values()):
            _, restarts, reason = self.container_state(pod, now)
            if reason in ("CrashLoopBackOff", "ImagePullBackOff") and \
                    pod.get("_noted", 0) < max(restarts, 1):
                pod["_noted"] = max(restarts, 1)
                message = ("Back-off restarting failed container" if reason ==
                           "CrashLoopBackOff" else
                           f"Back-off pulling image \"{pod['spec']['containers'][0]['image']}\"")
                self.event(pod, "BackOff", message, "Warning")
        for dep in self.deployments.values():
            sets = self.owned(dep)
            if not sets:
                continue
            newest = sets[-1]
            ready = [p for p in self.pods_of(newest) if self.container_state(p, now)[0]]
            if ready:
                dep["_progress_at"] = max(dep.get("_progress_at", 0.0),
                                          max(p["_created"] for p in ready) + self.ready_delay)
            if len(ready) >= int(newest["spec"]["replicas"]):
                for rs in sets[:-1]:
                    if rs["spec"]["replicas"]:
                        self.scale_replicaset(rs, 0)

"""Contract test of the Kubernetes stand-in: every response it gave the official client in a
scenario that reaches every route (and every error) deserialises into the client's own models
(generated from the Kubernetes OpenAPI description, required fields enforced), carries no field
those models do not know, and has the fields the published apps/v1 OpenAPI description
requires (checked against kubernetes/kubernetes api/openapi-spec/v3/apis__apps__v1_openapi.json
at commit 0032f46b5dcb893b0684679408a2da9bd26a0859: DeploymentSpec requires selector and
template, DeploymentCondition type and status, DeploymentList and ReplicaSetList items,
ReplicaSetSpec selector, ReplicaSetStatus replicas, DaemonSetSpec selector and template)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from integrations.kubernetes.client import KubeClient
from integrations.sandbox import Sandbox
from integrations.sandbox.kubernetes_app import configure
from tests.kubernetes_fixtures import (
    BAD,
    cluster_fixture,  # noqa: F401  (the `cluster` fixture)
    deploy,
    deployer,
)

APPS = r"/kubernetes/apis/apps/v1/namespaces/[^/]+"
CORE = r"/kubernetes/api/v1/namespaces/[^/]+"
TYPES: list[tuple[str, str, str]] = [
    ("GET", r"/kubernetes/version/?", "VersionInfo"),
    ("GET", r"/kubernetes/api/v1/namespaces", "V1NamespaceList"),
    ("GET", rf"{APPS}/deployments", "V1DeploymentList"),
    ("*", rf"{APPS}/deployments/[^/]+", "V1Deployment"),
    ("*", rf"{APPS}/deployments/[^/]+/scale", "V1Scale"),
    ("*", rf"{APPS}/statefulsets/[^/]+", "V1StatefulSet"),
    ("*", rf"{APPS}/daemonsets/[^/]+", "V1DaemonSet"),
    ("GET", rf"{APPS}/replicasets", "V1ReplicaSetList"),
    ("GET", rf"{APPS}/replicasets/[^/]+", "V1ReplicaSet"),
    ("GET", rf"{CORE}/pods", "V1PodList"),
    ("*", rf"{CORE}/pods/[^/]+", "V1Pod"),
    ("GET", rf"{CORE}/events", "CoreV1EventList"),
]
REQUIRED: dict[str, list[str]] = {
    "V1Deployment": ["spec.selector", "spec.template", "status.conditions[].type",
                     "status.conditions[].status"],
    "V1DeploymentList": ["items", "items[].spec.selector", "items[].spec.template"],
    "V1ReplicaSetList": ["items", "items[].spec.selector", "items[].status.replicas"],
    "V1ReplicaSet": ["spec.selector", "status.replicas"],
    "V1DaemonSet": ["spec.selector", "spec.template"],
}


def _type_of(method: str, path: str, status: int) -> str:
    if status >= 300:
        return "V1Status"
    for wanted, pattern, name in TYPES:
        if wanted in ("*", method) and re.fullmatch(pattern, path):
            return name
    raise AssertionError(f"no response type known for {method} {path}")


def _has(data: Any, path: str) -> bool:
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        items = data.get(head[:-2]) if isinstance(data, dict) else None
        return isinstance(items, list) and all(_has(i, rest) if rest else True for i in items)
    if not isinstance(data, dict) or head not in data:
        return False
    return _has(data[head], rest) if rest else True


def _unknown_keys(raw: Any, known: Any, where: str = "") -> list[str]:
    if isinstance(raw, dict) and isinstance(known, dict):
        out = [f"{where}.{k}" for k in raw if k not in known and raw[k] not in (None, {}, [])]
        for k in raw:
            if k in known and k not in ("labels", "annotations", "matchLabels", "selector",
                                        "nodeSelector", "data"):
                out += _unknown_keys(raw[k], known[k], f"{where}.{k}")
        return out
    if isinstance(raw, list) and isinstance(known, list):
        return [u for r, k in zip(raw, known, strict=False)
                for u in _unknown_keys(r, k, f"{where}[]")]
    return []


def _scenario(sb: Sandbox) -> None:
    kube = deployer(sb)
    kube.version()
    kube.core.list_namespace()
    kube.apps.list_namespaced_deployment("shop")
    deploy(sb, "registry.example/web:2")
    kube.patch("Deployment", "shop", "web", [{"op": "replace", "path": "/spec/replicas",
                                              "value": 3}], False)
    kube.apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"t": "1"}}},
                                          _content_type="application/merge-patch+json")
    current = kube.read("Deployment", "shop", "web")
    kube.apps.replace_namespaced_deployment("web", "shop", current)
    kube.patch("Deployment", "shop", "web", {"spec": {"replicas": 4}}, True)
    scale = kube.read_scale("Deployment", "shop", "web")
    kube.patch_scale("Deployment", "shop", "web", 2, scale.metadata.resource_version, False)
    sets = kube.replicasets("shop", "app=web")
    kube.read_replicaset("shop", sets[0].metadata.name)
    deploy(sb, BAD)
    pods = kube.pods("shop", "app=web")
    kube.read_pod("shop", pods[0].metadata.name)
    kube.delete_pod("shop", pods[0].metadata.name, pods[0].metadata.uid, False)
    kube.events("shop", ["web"])
    configure(sb.state.kubernetes, {
        "statefulsets": [{"name": "db", "namespace": "shop", "image": "db:1", "replicas": 2}],
        "daemonsets": [{"name": "agent", "namespace": "shop", "image": "agent:1"}]})
    for kind, name in (("StatefulSet", "db"), ("DaemonSet", "agent")):
        kube.read(kind, "shop", name)
        kube.patch(kind, "shop", name, {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-11-30T08:00:00Z"}}}}}, False)
    refused: list[Callable[[], object]] = [
        lambda: kube.read("Deployment", "shop", "nope"),
        lambda: kube.patch_scale("Deployment", "shop", "web", 1, "1", False),
        lambda: kube.patch("Deployment", "shop", "web", {"spec": {"replicas": -1}}, False),
        lambda: kube.read("StatefulSet", "shop", "nope")]
    for call in refused:
        with pytest.raises(Exception):  # noqa: B017  (any mapped error; the body is checked)
            call()
    make: Any = ApiClient
    anonymous = make(kube.api.configuration)
    anonymous.configuration.api_key = {}
    with pytest.raises(ApiException):
        KubeClient(anonymous).apps.list_namespaced_deployment("shop")


def test_every_stand_in_response_fits_the_official_models(cluster: Sandbox) -> None:
    cluster.state.recording = True
    try:
        _scenario(cluster)
    finally:
        cluster.state.recording = False
    client: Any = ApiClient()
    seen: dict[str, int] = {}
    statuses = set()
    for ex in cluster.state.exchanges:
        name = _type_of(ex["method"], ex["path"], ex["status"])
        text = ex["response_body"].decode()
        model = client.deserialize(text, name, ex["response_headers"]["content-type"])
        raw = json.loads(text)
        known = client.sanitize_for_serialization(model)
        assert _unknown_keys(raw, known) == [], f"{ex['method']} {ex['path']} ({name})"
        for path in REQUIRED.get(name, []):
            assert _has(raw, path), f"{ex['method']} {ex['path']}: {path} is required"
        if name == "V1Status":
            assert (raw["kind"], raw["status"], raw["code"]) == ("Status", "Failure",
                                                                 ex["status"])
            statuses.add((ex["status"], raw["reason"]))
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {t for _, _, t in TYPES} | {"V1Status"}, seen
    assert statuses == {(404, "NotFound"), (409, "Conflict"), (422, "Invalid"),
                        (401, "Unauthorized")}

"""The Kubernetes API stand-in, mounted under `/kubernetes` (the client's host is
`<sandbox>/kubernetes`): bearer-token auth, `apps/v1` Deployments (get, list, patch in the
three patch formats, replace, the scale subresource), StatefulSets and DaemonSets (get, patch;
a new template replaces their pods), ReplicaSets, `core/v1` Pods (list, get,
delete with preconditions), Events and Namespaces, and `GET /version`.

As the API server does: a write whose `metadata.resourceVersion` is stale answers 409
`Conflict`; `?dryRun=All` validates and answers the result without storing it; a missing
object is 404 `NotFound` and an invalid one 422 `Invalid`, each as a `Status` body. Seed
workloads and mark images bad with `configure()` (also `POST /_admin/config` with a
`kubernetes` key); `write_kubeconfig()` writes a kubeconfig for the official client or kubectl.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from integrations.sandbox.kubernetes_model import KubeCluster
from integrations.sandbox.kubernetes_patch import PatchError, apply_patch
from integrations.sandbox.kubernetes_views import (
    deployment_view,
    listing,
    pod_view,
    replicaset_view,
    scale_view,
    set_view,
    status_body,
)
from integrations.sandbox.state import SandboxState

__all__ = ["configure", "kubernetes_routes", "write_kubeconfig"]

Handler = Callable[[Request], Awaitable[Response]]
_SETTINGS = ("token", "ready_delay", "crash_period", "deadline_scale")


def configure(cluster: KubeCluster, spec: dict[str, Any]) -> None:
    """Apply an admin spec: `deployments` to seed (name, image, namespace, replicas,
    progress_deadline_seconds), `statefulsets` (name, image, namespace, replicas) and
    `daemonsets` (name, image, namespace), `bad_images` (image → `crash` or `pull`) and the settings
    `token`, `ready_delay`, `crash_period`, `deadline_scale`. Raises ValueError."""
    unknown = set(spec) - {"deployments", "statefulsets", "daemonsets", "bad_images",
                           *_SETTINGS}
    if unknown:
        raise ValueError(f"unknown kubernetes settings {sorted(unknown)}")
    for key in _SETTINGS:
        if key in spec:
            setattr(cluster, key, type(getattr(cluster, key))(spec[key]))
    for image, how in (spec.get("bad_images") or {}).items():
        if how not in ("crash", "pull", None):
            raise ValueError(f"bad_images[{image!r}]: use crash, pull or null")
        if how is None:
            cluster.bad_images.pop(image, None)
        else:
            cluster.bad_images[image] = how
    for seed in spec.get("deployments") or []:
        cluster.seed(**seed)
    for kind in ("StatefulSet", "DaemonSet"):
        for seed in spec.get(f"{kind.lower()}s") or []:
            cluster.seed_set(kind, **seed)


def write_kubeconfig(path: Path, sandbox_url: str, ca_file: str,
                     token: str = "sandbox-k8s-token") -> Path:
    """Write a kubeconfig (context `sandbox`) for the stand-in at `sandbox_url`."""
    ca = base64.b64encode(Path(ca_file).read_bytes()).decode()
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
              "clusters": [{"name": "sandbox", "cluster": {
                  "server": f"{sandbox_url.rstrip('/')}/kubernetes",
                  "certificate-authority-data": ca}}],
              "users": [{"name": "firelane", "user": {"token": token}}],
              "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox",
                                                           "user": "firelane"}}]}
    path.write_text(json.dumps(config, indent=2))
    return path


def _error(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=body["code"])


def _not_found(kind: str, name: str) -> JSONResponse:
    plural, group = (f"{kind.lower()}s", "") if kind == "Pod" else (f"{kind.lower()}s", ".apps")
    return _error(status_body(404, "NotFound", f'{plural}{group} "{name}" not found', name,
                              kind))


def _conflict(kind: str, name: str) -> JSONResponse:
    plural = "pods" if kind == "Pod" else f"{kind.lower()}s.apps"
    return _error(status_body(
        409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        name, kind))


def _invalid(kind: str, name: str, field: str, value: Any, why: str) -> JSONResponse:
    message = f"{field}: Invalid value: {json.dumps(value)}: {why}"
    return _error(status_body(422, "Invalid", f'{kind}.apps "{name}" is invalid: {message}',
                              name, kind, [{"reason": "FieldValueInvalid", "message":
                                            f"Invalid value: {json.dumps(value)}: {why}",
                                            "field": field}]))


def _selected(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif labels.get(term.strip()) is None:
            return False
    return True


def _fields(event: dict[str, Any], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.replace("==", "=").partition("=")
        node: Any = event
        for part in key.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if str(node) != value.strip():
            return False
    return True


def _validate_deployment(new: dict[str, Any], name: str) -> JSONResponse | None:
    spec = new.get("spec") or {}
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return _invalid("Deployment", name, "spec.replicas", replicas,
                        "must be greater than or equal to 0")
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
    if not containers:
        return _invalid("Deployment", name, "spec.template.spec.containers", [],
                        "Required value")
    for i, container in enumerate(containers):
        if not container.get("image"):
            return _invalid("Deployment", name, f"spec.template.spec.containers[{i}].image",
                            container.get("image", ""), "Required value")
    labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return _invalid("Deployment", name, "spec.template.metadata.labels", labels,
                        "`selector` does not match template `labels`")
    return None


def kubernetes_routes(state: SandboxState) -> list[BaseRoute]:
    """The `/kubernetes` mount, bound to `state.kubernetes`."""
    cluster = state.kubernetes

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {cluster.token}":
                return _error(status_body(401, "Unauthorized", "Unauthorized"))
            with state.lock:
                cluster.tick()
            return await handler(request)
        return run

    def deployment(request: Request) -> dict[str, Any] | None:
        p = request.path_params
        return cluster.deployments.get((p["namespace"], p["name"]))

    def store_deployment(request: Request, dep: dict[str, Any],
                               new: dict[str, Any]) -> JSONResponse:
        name = dep["metadata"]["name"]
        if (bad := _validate_deployment(new, name)) is not None:
            return bad
        given = (new.get("metadata") or {}).get("resourceVersion")
        if given is not None and given != dep["metadata"]["resourceVersion"]:
            return _conflict("Deployment", name)
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            new["metadata"][fixed] = dep["metadata"][fixed]
        new["metadata"]["resourceVersion"] = dep["metadata"]["resourceVersion"]
        new.pop("status", None)
        spec_changed = new["spec"] != dep["spec"]
        if spec_changed:
            new["metadata"]["generation"] += 1
        dry = request.query_params.get("dryRun") == "All"
        if dry:
            shown = deployment_view(cluster, dep)
            shown.update({"metadata": new["metadata"], "spec": new["spec"]})
            return JSONResponse(shown)
        template_changed = new["spec"].get("template") != dep["spec"].get("template")
        replicas_changed = new["spec"].get("replicas") != dep["spec"].get("replicas")
        dep["metadata"], dep["spec"] = new["metadata"], new["spec"]
        cluster.bump(dep)
        if template_changed or replicas_changed:
            cluster.reconcile(dep)
        return JSONResponse(deployment_view(cluster, dep))

    async def deployments(request: Request) -> Response:
        ns, selector = request.path_params["namespace"], request.query_params.get(
            "labelSelector")
        with state.lock:
            items = [deployment_view(cluster, d) for (n, _), d in cluster.deployments.items()
                     if n == ns and _selected(d["metadata"]["labels"], selector)]
            return JSONResponse(listing("Deployment", "apps/v1", cluster, items))

    async def one_deployment(request: Request) -> Response:
        body = json.loads(await request.body() or b"null")
        with state.lock:
            dep = deployment(request)
            if dep is None:
                return _not_found("Deployment", request.path_params["name"])
            if request.method == "GET":
                return JSONResponse(deployment_view(cluster, dep))
            if request.method == "PUT":
                if not isinstance(body, dict) or not (body.get("metadata") or {}).get(
                        "resourceVersion"):
                    return _invalid("Deployment", dep["metadata"]["name"],
                                    "metadata.resourceVersion", 0,
                                    "must be specified for an update")
                return store_deployment(request, dep, copy.deepcopy(body))
            try:
                new = apply_patch(deployment_view(cluster, dep), body,
                                  request.headers.get("content-type", ""))
            except PatchError as exc:
                return _error(status_body(exc.status, "Invalid" if exc.status == 422 else
                                          "BadRequest", str(exc), dep["metadata"]["name"],
                                          "Deployment"))
            return store_deployment(request, dep, new)

    async def one_set(request: Request) -> Response:
        body = json.loads(await request.body() or b"null")
        p = request.path_params
        kind = "StatefulSet" if "/statefulsets/" in request.url.path else "DaemonSet"
        with state.lock:
            obj = cluster.sets.get((kind, p["namespace"], p["name"]))
            if obj is None:
                return _not_found(kind, p["name"])
            if request.method == "GET":
                return JSONResponse(set_view(cluster, obj))
            try:
                new = apply_patch(set_view(cluster, obj), body,
                                  request.headers.get("content-type", ""))
            except PatchError as exc:
                return _error(status_body(exc.status, "Invalid", str(exc), p["name"], kind))
            if new["metadata"].get("resourceVersion") != obj["metadata"]["resourceVersion"]:
                return _conflict(kind, p["name"])
            images = [c.get("image") for c in new["spec"]["template"]["spec"]["containers"]]
            if not all(images):
                return _invalid(kind, p["name"], "spec.template.spec.containers[0].image",
                                "", "Required value")
            changed = new["spec"] != obj["spec"]
            new["metadata"]["generation"] = obj["metadata"]["generation"] + int(changed)
            if request.query_params.get("dryRun") == "All":
                return JSONResponse({**set_view(cluster, obj), "metadata": new["metadata"],
                                     "spec": new["spec"]})
            obj["metadata"], obj["spec"] = new["metadata"], new["spec"]
            cluster.bump(obj)
            if changed:
                cluster.reconcile_set(obj)
            return JSONResponse(set_view(cluster, obj))

    async def scale(request: Request) -> Response:
        body = json.loads(await request.body() or b"null")
        with state.lock:
            dep = deployment(request)
            if dep is None:
                return _not_found("Deployment", request.path_params["name"])
            pods = sum(len(cluster.pods_of(rs)) for rs in cluster.owned(dep))
            current = scale_view(dep, pods)
            if request.method == "GET":
                return JSONResponse(current)
            try:
                new = body if request.method == "PUT" else apply_patch(
                    current, body, request.headers.get("content-type", ""))
            except PatchError as exc:
                return _error(status_body(exc.status, "Invalid", str(exc)))
            target = copy.deepcopy(deployment_view(cluster, dep))
            target["spec"]["replicas"] = (new.get("spec") or {}).get("replicas")
            target["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get(
                "resourceVersion")
            answer = store_deployment(request, dep, target)
            if answer.status_code != 200:
                return answer
            shown = json.loads(bytes(answer.body))
            return JSONResponse({**scale_view(shown, pods),
                                 "spec": {"replicas": shown["spec"]["replicas"]}})

    async def replicasets(request: Request) -> Response:
        ns, selector = request.path_params["namespace"], request.query_params.get(
            "labelSelector")
        with state.lock:
            items = [replicaset_view(cluster, r) for (n, _), r in cluster.replicasets.items()
                     if n == ns and _selected(r["metadata"]["labels"], selector)]
            return JSONResponse(listing("ReplicaSet", "apps/v1", cluster, items))

    async def one_replicaset(request: Request) -> Response:
        p = request.path_params
        with state.lock:
            rs = cluster.replicasets.get((p["namespace"], p["name"]))
            if rs is None:
                return _not_found("ReplicaSet", p["name"])
            return JSONResponse(replicaset_view(cluster, rs))

    async def pods(request: Request) -> Response:
        ns, selector = request.path_params["namespace"], request.query_params.get(
            "labelSelector")
        with state.lock:
            items = [pod_view(cluster, p) for (n, _), p in cluster.pods.items()
                     if n == ns and _selected(p["metadata"]["labels"], selector)]
            return JSONResponse(listing("Pod", "v1", cluster, items))

    async def one_pod(request: Request) -> Response:
        p = request.path_params
        body = json.loads(await request.body() or b"{}") or {}
        with state.lock:
            pod = cluster.pods.get((p["namespace"], p["name"]))
            if pod is None:
                return _not_found("Pod", p["name"])
            shown = pod_view(cluster, pod)
            if request.method == "GET":
                return JSONResponse(shown)
            wanted = body.get("preconditions") or {}
            meta = pod["metadata"]
            if any(wanted.get(k) not in (None, meta[k]) for k in ("uid", "resourceVersion")):
                return _conflict("Pod", p["name"])
            if request.query_params.get("dryRun") != "All":
                cluster.delete_pod(pod)
            shown["metadata"]["deletionTimestamp"] = shown["metadata"]["creationTimestamp"]
            shown["metadata"]["deletionGracePeriodSeconds"] = 0
            return JSONResponse(shown)

    async def events(request: Request) -> Response:
        ns = request.path_params["namespace"]
        selector = request.query_params.get("fieldSelector")
        with state.lock:
            items = [copy.deepcopy(e) for e in cluster.events
                     if e["metadata"]["namespace"] == ns and _fields(e, selector)]
            return JSONResponse(listing("Event", "v1", cluster, items))

    async def namespaces(request: Request) -> Response:
        with state.lock:
            items = [{"metadata": {"name": ns, "uid": f"ns-{ns}", "resourceVersion": "1",
                                   "labels": {"kubernetes.io/metadata.name": ns}},
                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
                     for ns in cluster.namespaces()]
            return JSONResponse(listing("Namespace", "v1", cluster, items))

    async def version(request: Request) -> Response:
        return JSONResponse({"major": "1", "minor": "33", "gitVersion": "v1.33.0-sandbox",
                             "gitCommit": "sandbox", "gitTreeState": "clean",
                             "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                             "compiler": "gc", "platform": "linux/amd64"})

    async def unknown(request: Request) -> Response:
        return _error(status_body(404, "NotFound",
                                  "the server could not find the requested resource"))

    apps, core = "/apis/apps/v1/namespaces/{namespace}", "/api/v1/namespaces/{namespace}"
    routes = [
        Route("/version", guarded(version)),
        Route("/version/", guarded(version)),
        Route("/api/v1/namespaces", guarded(namespaces)),
        Route(f"{apps}/deployments", guarded(deployments)),
        Route(f"{apps}/deployments/{{name}}", guarded(one_deployment),
              methods=["GET", "PATCH", "PUT"]),
        Route(f"{apps}/deployments/{{name}}/scale", guarded(scale),
              methods=["GET", "PATCH", "PUT"]),
        Route(f"{apps}/statefulsets/{{name}}", guarded(one_set), methods=["GET", "PATCH"]),
        Route(f"{apps}/daemonsets/{{name}}", guarded(one_set), methods=["GET", "PATCH"]),
        Route(f"{apps}/replicasets", guarded(replicasets)),
        Route(f"{apps}/replicasets/{{name}}", guarded(one_replicaset)),
        Route(f"{core}/pods", guarded(pods)),
        Route(f"{core}/pods/{{name}}", guarded(one_pod), methods=["GET", "DELETE"]),
        Route(f"{core}/events", guarded(events)),
        Route("/{rest:path}", guarded(unknown),
              methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return [Mount("/kubernetes", routes=routes)]

"""`KubeClient`: the few Kubernetes API calls the actions make, through the official client,
each bounded by a timeout and each failure one of Firelane's errors.

`ApiException` 429 → `RateLimited` (with Retry-After), 5xx, timeouts, refused or cut
connections → `VendorUnavailable`, 409 → `Conflict` (the caller re-reads and re-decides),
other 4xx → `VendorRejected` with the API server's `Status` message. The client's own retries
are off (see `KubernetesCluster.configuration`). Synchronous: actions run it in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from firelane.errors import IntegrationError, VendorRejected, VendorUnavailable
from integrations.common import vendor_error

__all__ = ["KINDS", "Conflict", "KubeClient"]

T = TypeVar("T")
VENDOR = "kubernetes"
KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet"}
_METHOD = {"Deployment": "deployment", "StatefulSet": "stateful_set",
           "DaemonSet": "daemon_set"}


class Conflict(VendorRejected):
    """409: the object changed since it was read (a stale resourceVersion). Re-read it and
    decide again; never re-send the same write."""


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or "no message")


def _mapped(exc: Exception, what: str) -> IntegrationError:
    if isinstance(exc, ApiException):
        status = exc.status or None
        if status == 409:
            return Conflict(VENDOR, f"{what}: {_message(exc)}", 409)
        retry_after = (exc.headers or {}).get("Retry-After") if exc.headers else None
        return vendor_error(VENDOR, status, f"{what}: {_message(exc)}", retry_after)
    return VendorUnavailable(VENDOR, f"{what}: {type(exc).__name__}: {exc}")


class KubeClient:
    """Calls against one cluster through an `ApiClient`, each bounded by `timeout` seconds."""

    def __init__(self, api: Any, timeout: float = 10.0) -> None:
        self.api, self.timeout = api, timeout
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _mapped(exc, what) from exc

    def read(self, kind: str, namespace: str, name: str) -> Any:
        """The workload (Deployment, StatefulSet or DaemonSet)."""
        fn = getattr(self.apps, f"read_namespaced_{_METHOD[kind]}")
        return self._call(f"read {kind.lower()} {namespace}/{name}", fn, name, namespace)

    def patch(self, kind: str, namespace: str, name: str, body: Any, dry_run: bool) -> Any:
        """Patch the workload: a dict is a strategic merge patch, a list a JSON patch."""
        fn = getattr(self.apps, f"patch_namespaced_{_METHOD[kind]}")
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"patch {kind.lower()} {namespace}/{name}", fn, name, namespace,
                          body, **extra)

    def read_scale(self, kind: str, namespace: str, name: str) -> Any:
        """The workload's Scale subresource."""
        fn = getattr(self.apps, f"read_namespaced_{_METHOD[kind]}_scale")
        return self._call(f"read scale {namespace}/{name}", fn, name, namespace)

    def patch_scale(self, kind: str, namespace: str, name: str, replicas: int,
                    resource_version: str, dry_run: bool) -> Any:
        """Set the replicas through the Scale subresource, if `resource_version` is current."""
        fn = getattr(self.apps, f"patch_namespaced_{_METHOD[kind]}_scale")
        body = {"metadata": {"resourceVersion": resource_version},
                "spec": {"replicas": replicas}}
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"scale {namespace}/{name}", fn, name, namespace, body, **extra)

    def replicasets(self, namespace: str, selector: str) -> list[Any]:
        """ReplicaSets matching a label selector."""
        answer = self._call(f"list replicasets in {namespace}",
                            self.apps.list_namespaced_replica_set, namespace,
                            label_selector=selector)
        return list(answer.items or [])

    def read_replicaset(self, namespace: str, name: str) -> Any:
        """One ReplicaSet."""
        return self._call(f"read replicaset {namespace}/{name}",
                          self.apps.read_namespaced_replica_set, name, namespace)

    def pods(self, namespace: str, selector: str) -> list[Any]:
        """Pods matching a label selector."""
        answer = self._call(f"list pods in {namespace}", self.core.list_namespaced_pod,
                            namespace, label_selector=selector)
        return list(answer.items or [])

    def read_pod(self, namespace: str, name: str) -> Any:
        """One pod."""
        return self._call(f"read pod {namespace}/{name}", self.core.read_namespaced_pod,
                          name, namespace)

    def delete_pod(self, namespace: str, name: str, uid: str, dry_run: bool) -> Any:
        """Delete the pod if it is still the one with `uid` (else 409 `Conflict`)."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid),
                                         dry_run=["All"] if dry_run else None)
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"delete pod {namespace}/{name}", self.core.delete_namespaced_pod,
                          name, namespace, body=options, **extra)

    def events(self, namespace: str, names: list[str]) -> list[Any]:
        """Events in `namespace` about any of the objects named `names`."""
        answer = self._call(f"list events in {namespace}",
                            self.core.list_namespaced_event, namespace)
        wanted = set(names)
        return [e for e in (answer.items or []) if e.involved_object.name in wanted]

    def namespaces(self) -> list[str]:
        """The names of the namespaces these credentials may list."""
        answer = self._call("list namespaces", self.core.list_namespace)
        return [str(n.metadata.name) for n in answer.items or [] if n.metadata is not None]

    def version(self) -> str:
        """The API server's version (`GET /version`)."""
        info = self._call("version", client.VersionApi(self.api).get_code)
        return str(info.git_version)

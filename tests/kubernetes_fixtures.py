"""Fixtures for the Kubernetes tests: the sandbox's stand-in seeded with a Deployment `web`
(image web:1, 2 replicas), a runbook allowlist for it, and a deployer that changes it the
way a CI pipeline would (through the official client)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from firelane.registry import ActionContext
from firelane.runbook import KubernetesPolicy
from integrations.common import forget_pooled
from integrations.kubernetes.block import KubernetesCluster
from integrations.kubernetes.client import KubeClient
from integrations.sandbox import Sandbox
from integrations.sandbox.kubernetes_app import configure
from tests.sandbox_fixtures import make_ctx

ALLOW = KubernetesPolicy(namespaces=["shop"], workloads=["deployment/web"])
BAD = "registry.example/web:bad"


@pytest.fixture(name="cluster")
def cluster_fixture(sandbox: Sandbox) -> Sandbox:
    """The sandbox with `shop/web` rolled out at web:1 and `registry.example/web:bad`
    crash-looping; progress deadline 200 s x 0.005 = 1 s, pods ready after 0.2 s."""
    forget_pooled()
    configure(sandbox.state.kubernetes, {
        "ready_delay": 0.2, "crash_period": 0.2, "deadline_scale": 0.005,
        "bad_images": {BAD: "crash"},
        "deployments": [{"name": "web", "namespace": "shop", "image": "registry.example/web:1",
                         "replicas": 2, "progress_deadline_seconds": 200}]})
    return sandbox


def kctx(step: str = "k8s", **changes: Any) -> ActionContext:
    """A sandbox action context whose runbook allows shop/web."""
    return replace(make_ctx(step), **{"kubernetes_allow": ALLOW, **changes})


def deployer(sb: Sandbox) -> KubeClient:
    """A client of the stand-in, as a CI pipeline would hold one."""
    return KubeClient(KubernetesCluster.for_sandbox(sb.url, sb.ca_file).get_client())


def deploy(sb: Sandbox, image: str) -> None:
    """Roll `shop/web` out with `image` (a strategic merge patch, as `kubectl set image`)."""
    deployer(sb).patch("Deployment", "shop", "web", {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "image": image}]}}}}, False)


def web(sb: Sandbox) -> dict[str, Any]:
    """shop/web as the stand-in serves it now."""
    state = sb.state.dump()["kubernetes"]
    return next(d for d in state["deployments"] if d["metadata"]["name"] == "web")


def image_of(sb: Sandbox) -> str:
    """shop/web's image now."""
    return str(web(sb)["spec"]["template"]["spec"]["containers"][0]["image"])


def revisions(sb: Sandbox) -> int:
    """The highest revision shop/web has had (each new rollout adds one)."""
    return int(web(sb)["metadata"]["annotations"]["deployment.kubernetes.io/revision"])

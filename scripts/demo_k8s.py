"""`make demo DEMO_ARGS=--kubernetes`: the same story on Kubernetes, told with `k8s-rollback`.

What is real and what stands in: the Kubernetes API is the sandbox's stand-in (Debian has no
API server), reached with the official `kubernetes` client; the Deployment `shop/web` is
seeded there at a good image, and the bad image is marked to crash-loop. The pods' traffic is
served by the sample web service, which stands in for them: a bridge thread switches its
release to match the Deployment's image (bad image → the bad release), so the real Prometheus
sees the errors rise when the bad image rolls out and fall when `kubernetes.rollout_undo` rolls
it back, and the real Alertmanager fires and resolves.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
from demo_stack import BAD, GOOD, Stack

__all__ = ["NAMESPACE", "Bridge", "deploy_image", "image", "seed_cluster"]

NAMESPACE, DEPLOYMENT = "shop", "web"


def image(release: str) -> str:
    """The container image of a release of the sample service."""
    return f"registry.example/web:{release}"


def seed_cluster(sandbox_url: str, ca: str) -> None:
    """Seed `shop/web` at the good image (3 replicas) and mark the bad image as crash-looping;
    a stalled rollout reports ProgressDeadlineExceeded after 15 s."""
    answer = httpx.post(f"{sandbox_url}/_admin/config", verify=ca, timeout=10, json={
        "kubernetes": {"ready_delay": 0.5, "crash_period": 1.0,
                       "bad_images": {image(BAD): "crash"},
                       "deployments": [{"name": DEPLOYMENT, "namespace": NAMESPACE,
                                        "image": image(GOOD), "replicas": 3,
                                        "progress_deadline_seconds": 15}]}})
    if answer.status_code != 200:
        raise SystemExit(f"the sandbox refused the Kubernetes seed: {answer.text}")


def deploy_image(sandbox_url: str, ca: str, new_image: str) -> None:
    """Roll `shop/web` out with `new_image`, as `kubectl set image` does (the official
    client, a strategic merge patch)."""
    from integrations.kubernetes.block import KubernetesCluster
    from integrations.kubernetes.client import KubeClient

    client = KubeClient(KubernetesCluster.for_sandbox(sandbox_url, ca).get_client())
    client.patch("Deployment", NAMESPACE, DEPLOYMENT, {"spec": {"template": {"spec": {
        "containers": [{"name": DEPLOYMENT, "image": new_image}]}}}}, False)


def _current_image(sandbox_url: str, ca: str) -> str | None:
    state: dict[str, Any] = httpx.get(f"{sandbox_url}/_admin/state", verify=ca,
                                      timeout=5).json()
    for dep in state.get("kubernetes", {}).get("deployments", []):
        if dep["metadata"]["name"] == DEPLOYMENT:
            return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])
    return None


class Bridge(threading.Thread):
    """Keeps the sample service's release in step with `shop/web`'s image."""

    def __init__(self, stack: Stack, conf: Path, sandbox_url: str, ca: str) -> None:
        super().__init__(daemon=True, name="demo-k8s-bridge")
        self.stack, self.conf, self.url, self.ca = stack, conf, sandbox_url, ca
        self.halt, self.serving = threading.Event(), GOOD

    def run(self) -> None:
        while not self.halt.wait(0.5):
            try:
                now = _current_image(self.url, self.ca)
            except httpx.HTTPError:
                continue
            wanted = BAD if now == image(BAD) else GOOD
            if now is not None and wanted != self.serving:
                self.stack.deploy_release(self.conf, wanted)
                self.serving = wanted

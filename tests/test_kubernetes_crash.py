"""A worker SIGKILLed between a Kubernetes change and its record: the step resumed after it
finds its own change on the workload and does not make it again (one undo, one restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.sandbox import Sandbox
from tests.kubernetes_fixtures import (
    BAD,
    cluster_fixture,  # noqa: F401  (the `cluster` fixture)
    deploy,
    image_of,
    kctx,
    revisions,
)
from tests.sandbox_fixtures import run_action

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, os, signal, sys
from integrations.kubernetes.client import KubeClient
from tests.kubernetes_fixtures import kctx
from tests.sandbox_fixtures import run_action

real = KubeClient.patch

def patch_then_die(self, *args):
    answer = real(self, *args)
    os.kill(os.getpid(), signal.SIGKILL)
    return answer

KubeClient.patch = patch_then_die
asyncio.run(run_action(sys.argv[1], {"namespace": "shop", "name": "web"}, kctx("crash")))
"""


def _killed_after_the_patch(action: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, action], cwd=ROOT, env=env,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


@pytest.mark.faults
def test_undo_killed_after_the_patch_then_resumed_undoes_once(cluster: Sandbox) -> None:
    deploy(cluster, BAD)
    started = datetime.now(UTC)
    _killed_after_the_patch("kubernetes.rollout_undo")
    assert image_of(cluster) == "registry.example/web:1" and revisions(cluster) == 3
    resumed = kctx("crash", repeat_since=started, attempt=2)
    out = asyncio.run(run_action("kubernetes.rollout_undo", {
        "namespace": "shop", "name": "web", "timeout_seconds": 20}, resumed))
    assert out.already_done and out.rollout.complete
    assert (out.from_images, out.to_images) == ([BAD], ["registry.example/web:1"])
    assert image_of(cluster) == "registry.example/web:1", "the resumed step undid again"
    assert revisions(cluster) == 3


@pytest.mark.faults
def test_restart_killed_after_the_patch_then_resumed_restarts_once(cluster: Sandbox) -> None:
    started = datetime.now(UTC)
    _killed_after_the_patch("kubernetes.rollout_restart")
    assert revisions(cluster) == 2
    resumed = kctx("crash", repeat_since=started, attempt=2)
    out = asyncio.run(run_action("kubernetes.rollout_restart", {
        "namespace": "shop", "name": "web", "timeout_seconds": 20}, resumed))
    assert out.already_done and out.rollout.complete
    assert revisions(cluster) == 2, "the resumed step restarted again"

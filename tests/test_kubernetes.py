"""The kubernetes.* actions through the official client, over HTTPS, against the sandbox's
stand-in: diagnosis of a bad rollout, undo, restart, scale and delete_pod, each made once
(retries, resumed steps, conflicts), dry runs that change nothing, and the allowlist."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from firelane.errors import ActionInputError, VendorRejected
from firelane.runbook import KubernetesPolicy, Runbook
from integrations.kubernetes.base import RolloutFailed
from integrations.kubernetes.client import KubeClient
from integrations.sandbox import Sandbox
from tests.kubernetes_fixtures import (
    BAD,
    cluster_fixture,  # noqa: F401  (the `cluster` fixture)
    deploy,
    deployer,
    image_of,
    kctx,
    revisions,
    web,
)
from tests.sandbox_fixtures import run_action

WEB = {"namespace": "shop", "name": "web"}


def run(name: str, inputs: dict[str, Any], ctx: Any) -> Any:
    return asyncio.run(run_action(name, inputs, ctx))


def stalled(sb: Sandbox) -> None:
    deploy(sb, BAD)
    deadline = time.monotonic() + 10
    while not any(c["reason"] == "ProgressDeadlineExceeded"
                  for c in web(sb)["status"]["conditions"]):
        assert time.monotonic() < deadline, "the bad rollout never hit its deadline"
        time.sleep(0.1)


def test_bad_image_stalls_past_its_deadline_and_describe_shows_the_crash_loop(
        cluster: Sandbox) -> None:
    stalled(cluster)
    state = run("kubernetes.rollout_status", WEB, kctx())
    assert state.failed and not state.complete
    assert state.progressing == "False" and state.progressing_reason == "ProgressDeadlineExceeded"
    assert state.images == [BAD] and state.revision == 2
    assert state.summary == 'deployment "web" exceeded its progress deadline'
    ctx = kctx()
    out = run("kubernetes.describe", WEB, ctx)
    crashing = [p for p in out.pods if p.images == [BAD]]
    assert len(crashing) == 2 and all(p.waiting_reason == "CrashLoopBackOff" and p.restarts > 0
                                      and not p.ready for p in crashing)
    assert sum(p.ready for p in out.pods) == 2, "the old pods keep serving"
    assert [(r.revision, r.images, r.current) for r in out.revisions] == [
        (1, ["registry.example/web:1"], False), (2, [BAD], True)]
    assert {"ScalingReplicaSet", "BackOff"} <= {e.reason for e in out.events}
    assert "CrashLoopBackOff" in ctx.events[-1].summary


def test_undo_returns_to_the_previous_image_and_the_rollout_completes(
        cluster: Sandbox) -> None:
    stalled(cluster)
    ctx = kctx("undo")
    out = run("kubernetes.rollout_undo", {**WEB, "timeout_seconds": 20}, ctx)
    assert out.changed and not out.already_done
    assert (out.from_revision, out.from_images) == (2, [BAD])
    assert (out.to_revision, out.to_images) == (1, ["registry.example/web:1"])
    assert out.rollout.complete and out.rollout.revision == 3, "the old ReplicaSet is reused"
    assert image_of(cluster) == "registry.example/web:1"
    sets = cluster.state.dump()["kubernetes"]["replicasets"]
    assert len(sets) == 2, "no new ReplicaSet: the revision-1 one was adopted as revision 3"
    assert {e.kind for e in ctx.events} >= {"kubernetes.rolled_back", "kubernetes.rollout"}
    hash_labels = web(cluster)["spec"]["template"]["metadata"]["labels"]
    assert "pod-template-hash" not in hash_labels


def test_undo_retried_with_the_same_key_undoes_once(cluster: Sandbox) -> None:
    stalled(cluster)
    first = run("kubernetes.rollout_undo", {**WEB, "timeout_seconds": 20}, kctx("undo"))
    again = run("kubernetes.rollout_undo", {**WEB, "timeout_seconds": 20}, kctx("undo"))
    assert first.changed and again.already_done and again.to_images == first.to_images
    assert image_of(cluster) == "registry.example/web:1", "a second undo rolled forward"
    assert revisions(cluster) == 3


def test_a_resumed_undo_sees_its_own_change(cluster: Sandbox) -> None:
    stalled(cluster)
    started = datetime.now(UTC)
    run("kubernetes.rollout_undo", {**WEB, "wait": False}, kctx("undo"))
    resumed = kctx("undo", repeat_since=started, attempt=2)
    out = run("kubernetes.rollout_undo", {**WEB, "timeout_seconds": 20}, resumed)
    assert out.already_done and out.rollout.complete
    assert image_of(cluster) == "registry.example/web:1" and revisions(cluster) == 3
    assert resumed.events[0].kind == "kubernetes.already_done"
    other = run("kubernetes.rollout_undo", {**WEB, "wait": False}, kctx("other"))
    assert other.changed and image_of(cluster) == BAD, "another step's undo is its own"


def test_undo_to_a_named_revision(cluster: Sandbox) -> None:
    deploy(cluster, "registry.example/web:2")
    deploy(cluster, "registry.example/web:3")
    out = run("kubernetes.rollout_undo", {**WEB, "to_revision": 1, "timeout_seconds": 20},
              kctx())
    assert out.from_revision == 3 and out.to_revision == 1
    assert image_of(cluster) == "registry.example/web:1"
    with pytest.raises(Exception, match="unable to find revision 9"):
        run("kubernetes.rollout_undo", {**WEB, "to_revision": 9}, kctx("nine"))


def test_a_conflict_rereads_and_decides_again(cluster: Sandbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stalled(cluster)
    real_patch = KubeClient.patch
    raced: list[bool] = []

    def racing_patch(self: KubeClient, *args: Any) -> Any:
        if not raced:
            raced.append(True)
            deployer(cluster).patch("Deployment", "shop", "web", {"spec": {"template": {
                "spec": {"containers": [{"name": "web",
                                         "image": "registry.example/web:1"}]}}}}, False)
        return real_patch(self, *args)

    monkeypatch.setattr(KubeClient, "patch", racing_patch)
    ctx = kctx("raced")
    out = run("kubernetes.rollout_undo", {**WEB, "timeout_seconds": 20}, ctx)
    kinds = [e.kind for e in ctx.events]
    assert "kubernetes.conflict" in kinds, "the stale write was not refused"
    assert not out.changed and "kubernetes.undo_skipped" in kinds, (
        "after the re-read the template already matched revision 1: nothing to undo")
    assert image_of(cluster) == "registry.example/web:1", "the undo was re-applied blindly"


def test_dry_runs_change_nothing(cluster: Sandbox) -> None:
    stalled(cluster)
    before = cluster.state.dump()["kubernetes"]
    pod = before["pods"][0]["metadata"]["name"]
    dry = kctx("dry", dry_run=True)
    undo = run("kubernetes.rollout_undo", WEB, dry)
    restart = run("kubernetes.rollout_restart", WEB, dry)
    scaled = run("kubernetes.scale", {**WEB, "replicas": 5}, dry)
    deleted = run("kubernetes.delete_pod", {"namespace": "shop", "name": pod}, dry)
    assert all(o.dry_run and not o.changed for o in (undo, restart, scaled, deleted))
    assert (undo.from_images, undo.to_images) == ([BAD], ["registry.example/web:1"])
    assert (scaled.from_replicas, scaled.to_replicas) == (2, 5)
    after = cluster.state.dump()["kubernetes"]
    assert [d["metadata"]["resourceVersion"] for d in after["deployments"]] == [
        d["metadata"]["resourceVersion"] for d in before["deployments"]]
    assert {p["metadata"]["name"] for p in after["pods"]} == {
        p["metadata"]["name"] for p in before["pods"]}
    assert len(after["replicasets"]) == len(before["replicasets"])
    assert any("dryRun=All" in r for r in cluster.state.requests), "no server-side dry run"


def test_outside_the_allowlist_is_refused_before_any_request(cluster: Sandbox) -> None:
    cluster.state.requests.clear()
    with pytest.raises(ActionInputError, match="namespace 'kube-system' is not in"):
        run("kubernetes.rollout_undo", {"namespace": "kube-system", "name": "web"}, kctx())
    with pytest.raises(ActionInputError, match="deployment/api is not in"):
        run("kubernetes.rollout_restart", {"namespace": "shop", "name": "api"}, kctx())
    with pytest.raises(ActionInputError, match="none listed"):
        run("kubernetes.rollout_status", WEB, replace(kctx(), kubernetes_allow=(
            KubernetesPolicy())))
    assert cluster.state.requests == []


def test_the_runbook_allowlist_is_validated() -> None:
    base = {"version": 1, "name": "k", "steps": [{"id": "a", "uses": "core.note",
                                                    "with": {"text": "x"}}]}
    ok = Runbook.model_validate({**base, "kubernetes": {"namespaces": ["shop"],
                                                        "workloads": ["deployment/web", "*"]}})
    assert ok.kubernetes.allows("shop", "StatefulSet", "db")
    for bad in ({"namespaces": ["Shop!"]}, {"workloads": ["job/x"]}, {"workloads": ["a b"]},
                {"namespace": ["shop"]}):
        with pytest.raises(ValueError):
            Runbook.model_validate({**base, "kubernetes": bad})


def test_restart_restarts_once(cluster: Sandbox) -> None:
    ctx = kctx("restart")
    out = run("kubernetes.rollout_restart", {**WEB, "timeout_seconds": 20}, ctx)
    assert out.changed and out.rollout.complete and out.to_revision == 2
    again = run("kubernetes.rollout_restart", {**WEB, "timeout_seconds": 20}, kctx("restart"))
    assert again.already_done and revisions(cluster) == 2
    annotations = web(cluster)["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert web(cluster)["metadata"]["annotations"]["firelane.io/step"] == ctx.idempotency_key


def test_scale_and_delete_pod(cluster: Sandbox) -> None:
    out = run("kubernetes.scale", {**WEB, "replicas": 4, "timeout_seconds": 20}, kctx("s"))
    assert (out.from_replicas, out.to_replicas, out.changed) == (2, 4, True)
    assert out.rollout.complete and out.rollout.available_replicas == 4
    same = run("kubernetes.scale", {**WEB, "replicas": 4}, kctx("s2"))
    assert not same.changed
    pods = cluster.state.dump()["kubernetes"]["pods"]
    victim = pods[0]["metadata"]["name"]
    ctx = kctx("p")
    gone = run("kubernetes.delete_pod", {"namespace": "shop", "name": victim,
                                         "timeout_seconds": 20}, ctx)
    assert gone.changed and gone.pod == victim and gone.rollout.complete
    now = {p["metadata"]["name"] for p in cluster.state.dump()["kubernetes"]["pods"]}
    assert victim not in now and len(now) == 4, "the ReplicaSet replaced the pod"
    again = run("kubernetes.delete_pod", {"namespace": "shop", "name": victim},
                kctx("p", repeat_since=datetime.now(UTC)))
    assert again.already_done
    with pytest.raises(VendorRejected, match="not found"):
        run("kubernetes.delete_pod", {"namespace": "shop", "name": victim}, kctx("fresh"))


def test_a_rollout_that_fails_fails_the_step(cluster: Sandbox) -> None:
    ctx = kctx("restart-bad")
    deploy(cluster, BAD)
    with pytest.raises(RolloutFailed, match="exceeded its progress deadline"):
        run("kubernetes.rollout_restart", {**WEB, "timeout_seconds": 20}, ctx)
    assert "kubernetes.restarted" in [e.kind for e in ctx.events]


def test_a_wrong_token_is_refused(cluster: Sandbox) -> None:
    cluster.state.kubernetes.token = "another"
    try:
        with pytest.raises(VendorRejected, match="Unauthorized"):
            run("kubernetes.rollout_status", WEB, kctx())
    finally:
        cluster.state.kubernetes.token = "sandbox-k8s-token"


def test_the_approval_preview_names_the_revisions(cluster: Sandbox) -> None:
    from firelane.registry import get_action

    stalled(cluster)
    spec = get_action("kubernetes.rollout_undo")
    effect = spec.describe_effect(spec.inputs.model_validate(WEB))
    assert effect == {"rollback": "deployment/web in shop: revision 2 (registry.example/"
                      "web:bad) → revision 1 (registry.example/web:1)"}
    restart = get_action("kubernetes.rollout_restart")
    assert restart.describe_effect(restart.inputs.model_validate(WEB)) == {
        "restart": "deployment/web in shop: every pod of revision 2 (registry.example/web:bad) "
                   "replaced by a rolling restart; same images"}
    scale = get_action("kubernetes.scale")
    assert scale.describe_effect(scale.inputs.model_validate({**WEB, "replicas": 5})) == {
        "scale": "deployment/web in shop: 2 → 5 replicas"}


def test_the_block_with_server_token_and_ca_and_its_credentials_check(
        cluster: Sandbox) -> None:
    from pathlib import Path

    from pydantic import SecretStr

    from integrations.block_types import CREDENTIALS, _check_kubernetes
    from integrations.kubernetes.block import KubernetesCluster

    assert CREDENTIALS["kubernetes"] is KubernetesCluster
    block = KubernetesCluster(server=f"{cluster.url}/kubernetes",
                              token=SecretStr("sandbox-k8s-token"),
                              ca_cert=SecretStr(Path(cluster.ca_file).read_text()))
    assert "sandbox-k8s-token" not in repr(block) and "BEGIN CERTIFICATE" not in repr(block)
    said = _check_kubernetes(block)
    assert said == "API server v1.33.0-sandbox; 2 namespaces visible"
    kube = KubeClient(block.get_client())
    assert kube.read("Deployment", "shop", "web").spec.replicas == 2
    with pytest.raises(ValueError, match="kubeconfig, or server and token"):
        KubernetesCluster(server=f"{cluster.url}/kubernetes")


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
def test_restart_a_statefulset_or_daemonset_once(cluster: Sandbox, kind: str) -> None:
    from integrations.sandbox.kubernetes_app import configure

    configure(cluster.state.kubernetes, {f"{kind}s": [
        {"name": "db", "namespace": "shop", "image": "registry.example/db:1"}]})
    allow = KubernetesPolicy(namespaces=["shop"], workloads=[f"{kind}/db"])
    inputs = {"namespace": "shop", "name": "db", "kind": kind, "timeout_seconds": 20}
    before = {p["metadata"]["uid"] for p in cluster.state.dump()["kubernetes"]["pods"]
              if p["metadata"]["name"].startswith("db-")}
    status = run("kubernetes.rollout_status", {"namespace": "shop", "name": "db", "kind": kind},
                 kctx(kubernetes_allow=allow))
    assert status.complete and status.images == ["registry.example/db:1"]
    out = run("kubernetes.rollout_restart", inputs, kctx("r", kubernetes_allow=allow))
    again = run("kubernetes.rollout_restart", inputs, kctx("r", kubernetes_allow=allow))
    assert out.changed and out.rollout.complete and again.already_done
    after = {p["metadata"]["uid"] for p in cluster.state.dump()["kubernetes"]["pods"]
             if p["metadata"]["name"].startswith("db-")}
    assert after and not after & before, "every pod was replaced"
    sets = cluster.state.dump()["kubernetes"]["sets"]
    assert [s["metadata"]["generation"] for s in sets] == [2], "restarted once"
    with pytest.raises(ActionInputError):
        run("kubernetes.rollout_restart", inputs | {"kind": "deployment"},
            kctx(kubernetes_allow=allow))

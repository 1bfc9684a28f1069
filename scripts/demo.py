"""`make demo`: a bad deploy, its 5xx alert, and Firelane's whole response, narrated.

Starts a local Prefect server, the sandbox (Jira, PagerDuty, Slack, Zoom stand-ins over TLS), a
sample web service with a good and a bad release under supervisord, the intake with its paging
responder and its flow responder, and a Prefect worker; registers the deployments from
prefect.yaml; deploys the bad release; sends the real-format Alertmanager webhook for its 5xx
rate; and narrates `web-5xx-rollback` from the incident store as it runs: ticket, page, war
room, bridge, diagnosis, approval (auto-approved after a visible pause, or yours with
`--interactive`), rollback, verification, resolution and report. Everything it started is
stopped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import secrets
import shutil
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_k8s import Bridge, deploy_image, image, seed_cluster
from demo_monitoring import Traffic, fallback_alert, post_alert, start_monitoring
from demo_stack import BAD, BIN, DEMO, GOOD, ROOT, Stack, free_port, stop_previous

from firelane.store import Store, open_store

T0 = time.monotonic()
BOLD, DIM, OFF = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")
DEPLOYMENT = "run-runbook/respond-to-incident"


def say(text: str, head: bool = False) -> None:
    stamp = f"{time.monotonic() - T0:6.1f}s"
    print(f"{DIM}{stamp}{OFF}  {BOLD if head else ''}{text}{OFF if head else ''}", flush=True)


def _describe(step: str, uses: str, status: str, outputs: dict[str, Any], error: str) -> str:
    bits = [f"{k}={v}" for k, v in outputs.items()
            if k in ("key", "dedup_key", "name", "url", "from_release", "to_release", "status")
            and v not in (None, "")]
    tail = f" · {error[:110]}" if error and status == "failed" else ""
    return f"{step:<13} {uses:<22} {status:<9} {' '.join(bits)}{tail}"


class Narrator:
    """Prints each step and approval of the incident's execution as the store records them."""

    def __init__(self, store: Store, incident_id: str) -> None:
        self.store, self.incident_id = store, incident_id
        self.seen: dict[str, str] = {}
        self.first_ok: dict[str, float] = {}

    def poll(self) -> tuple[str, Any]:
        """Print what is new; returns the execution's status and a pending approval (or None)."""
        executions = self.store.list_executions(self.incident_id)
        if not executions:
            return "none", None
        execution = executions[0]
        for step, rec in sorted(self.store.step_records(execution.id).items(),
                                key=lambda kv: kv[1].started_at):
            status = rec.status.value
            if self.seen.get(step) != status and status not in ("running", "pending", "claimed"):
                self.seen[step] = status
                self.first_ok.setdefault(step, time.monotonic() - T0)
                uses = next((s.uses for s in self._steps(execution) if s.id == step), "")
                say(_describe(step, uses, status, rec.outputs or {}, rec.error or ""))
        pending = [a for a in self.store.approvals_for(self.incident_id) if a.status == "pending"]
        return execution.status.value, pending[0] if pending else None

    def _steps(self, execution: Any) -> list[Any]:
        raw = yaml.safe_load(execution.runbook_source)
        return [SimpleNamespace(id=s["id"], uses=s["uses"])
                for s in [*raw.get("steps", []), *raw.get("on_failure", [])]]


def _flow_runs(api: str, incident_id: str) -> list[dict[str, Any]]:
    r = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"tags": {"all_": [f"incident:{incident_id}"]}}, "sort": "START_TIME_ASC"})
    return list(r.json()) if r.status_code == 200 else []


def _wait(what: str, check: Any, seconds: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise SystemExit(f"timed out after {seconds:g} s waiting for {what} (logs: {DEMO}/logs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave everything running")
    parser.add_argument("--interactive", action="store_true",
                        help="wait for you to approve the rollback (Prefect UI or CLI)")
    parser.add_argument("--stop", action="store_true", help="stop a --keep demo and exit")
    parser.add_argument("--kubernetes", action="store_true",
                        help="the Kubernetes story: k8s-rollback on the sandbox's Kubernetes "
                        "API (needs Prometheus and Alertmanager)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(
        "FIRELANE_DEMO_PREFECT_PORT", "4310")), help="Prefect server port")
    args = parser.parse_args(argv)
    stopped = stop_previous()
    if args.stop:
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if stopped:
        say(f"stopped what the previous demo left running ({', '.join(stopped)})")
    for old in DEMO.glob("*"):
        if old.name != "prefect":
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    (DEMO / "logs").mkdir(parents=True)
    api = f"http://127.0.0.1:{args.port}/api"
    token = secrets.token_urlsafe(24)
    intake_port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(DEMO / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_UI_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING",
           "FIRELANE_DATABASE_URL": f"sqlite:///{DEMO / 'firelane.db'}",
           "FIRELANE_CATALOG": str(DEMO / "services.yaml"),
           "FIRELANE_REPORTS_DIR": str(DEMO / "reports"),
           "FIRELANE_RUNBOOKS_DIR": str(ROOT / "runbooks"),
           "FIRELANE_WAKE_ADDRESS": f"127.0.0.1:{free_port()}",
           "FIRELANE_ALERTMANAGER_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    env.pop("FIRELANE_PLUGINS", None)
    os.environ.update(env)
    stack = Stack(env)
    if stack.http_ok(f"{api}/health"):
        raise SystemExit(f"something already serves a Prefect API on port {args.port}: stop it "
                         "or pick another port (make demo DEMO_ARGS=--port=4311)")
    ok = False
    try:
        ok = _demo(stack, args, api, token, intake_port)
    finally:
        if args.keep:
            print(f"\nEverything is still running (logs in {DEMO}/logs). Stop it with: "
                  "make demo-stop")
        else:
            stack.stop()
            say("stopped every process the demo started (--keep leaves them running)")
    return 0 if ok else 1


def _demo(stack: Stack, args: argparse.Namespace, api: str, token: str,
          intake_port: int) -> bool:
    fl = str(BIN / "firelane")
    say("Starting: Prefect server, sandbox, sample web service under supervisord", head=True)
    stack.start_prefect(args.port)
    sandbox_url, sandbox_ca = stack.start_sandbox()
    stack.env.update(FIRELANE_SANDBOX_URL=sandbox_url, FIRELANE_SANDBOX_CA=sandbox_ca)
    web_port = free_port()
    conf = stack.start_web_service(web_port)
    (DEMO / "services.yaml").write_text(json.dumps({"services": {"web": {
        "jira_project": "OPS", "slack_channel": "#web-team", "display_name": "Web shop",
        "group": "Storefront", "stakeholder_channel": "#web-status",
        "stakeholder_emails": ["web-stakeholders@example.com"],
        "statuspage_component": "cmp00website",
        "health_url": f"http://127.0.0.1:{web_port}/healthz",
        "release_dir": str(DEMO / "web"),
        "supervisor": {"program": "web", "url": f"unix://{DEMO}/supervisor.sock"}},
        "checkout": {"jira_project": "PAY", "slack_channel": "#payments",
                     "display_name": "Checkout", "group": "Storefront"}},
        "communications": {"statuspage": True,
                           "public_emails": ["status-subscribers@example.com"],
                           "status_page": {
            "title": "Example shop status", "folder": str(DEMO / "status"),
            "public_url": f"http://127.0.0.1:{intake_port}/status"}}}))
    stack.sandbox_slack(sandbox_url, sandbox_ca, "conversations.create", name="web-status")
    (DEMO / "intake.yaml").write_text(json.dumps({
        "default_runbook": "declare-incident", "auto_resolve": True,
        "sources": {"alertmanager": {"bearer_token": {"env": "FIRELANE_ALERTMANAGER_TOKEN"}}}}))
    say(f"sandbox at {sandbox_url}; web service on :{web_port} running release {GOOD}")
    stack.wait_for("prefect-server", lambda: stack.http_ok(f"{api}/health"), 90)
    say(f"Prefect server up: http://127.0.0.1:{args.port}")
    stack.start("worker", [fl, "worker", "--limit", "10"])
    stack.wait_for("worker", lambda: stack.http_ok(f"{api}/work_pools/firelane"), 60)
    count = len(yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"])
    say(f"prefect deploy --all: registering the {count} deployments of prefect.yaml on pool "
        "firelane (in the background; a hand-off waits for its deployment)", head=True)
    deploy = stack.start("deploy", [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"])
    stack.start("intake", [fl, "serve", "--port", str(intake_port), "--config",
                           str(DEMO / "intake.yaml"), "--responder", "external", "--sandbox"])
    stack.start("responder-urgent", [fl, "respond", "--role", "urgent", "--hand-off",
                                     DEPLOYMENT])
    stack.start("responder-flows", [fl, "respond", "--role", "flows"])
    intake = f"http://127.0.0.1:{intake_port}"
    stack.wait_for("intake", lambda: stack.http_ok(f"{intake}/healthz"), 60)
    monitoring = start_monitoring(stack, web_port, intake_port, token, {
        "platform": "kubernetes", "namespace": "shop"} if args.kubernetes else None)
    if args.kubernetes and monitoring is None:
        raise SystemExit("--kubernetes verifies with Prometheus: sudo apt-get install "
                         "prometheus prometheus-alertmanager")
    traffic = Traffic(web_port)
    traffic.start()
    bridge = Bridge(stack, conf, sandbox_url, sandbox_ca)
    if args.kubernetes:
        assert monitoring is not None
        from integrations.prometheus.block import PrometheusConnection

        seed_cluster(sandbox_url, sandbox_ca)
        PrometheusConnection(url=monitoring.prometheus).save("default", overwrite=True)
        bridge.start()
        say(f"Kubernetes (the sandbox's stand-in API): Deployment shop/web at {image(GOOD)}, "
            "3 replicas; the sample web service serves its traffic (its release follows the "
            "Deployment's image)")
    if monitoring is not None:
        say(f"Prometheus {monitoring.prometheus} scrapes web every second (rule HighErrorRate: "
            f"5xx ratio > 5% over 10 s); Alertmanager {monitoring.alertmanager} notifies the "
            "intake; 20 requests/s of traffic to web")
        say("Real here: Prefect, Prometheus, Alertmanager, supervisord and the web service. "
            "Stand-ins (the sandbox): Jira, PagerDuty, Slack, Zoom, Statuspage, the mail server"
            + (", the Kubernetes API (the web service stands in for the Deployment's pods)"
               if args.kubernetes else ""))
    else:
        say("Prometheus or Alertmanager is not installed (sudo apt-get install prometheus "
            "prometheus-alertmanager): the demo posts the webhook Alertmanager would send")
    store = open_store(stack.env["FIRELANE_DATABASE_URL"], migrate=False)

    if args.kubernetes:
        say(f"kubectl set image deployment/web web={image(BAD)} -n shop (the bad one)",
            head=True)
        deploy_image(sandbox_url, sandbox_ca, image(BAD))
    else:
        say(f"Deploying release {BAD} of web (the bad one)", head=True)
        stack.deploy_release(conf, BAD)
    deployed_at = time.monotonic()
    health = _wait("the 5xx", lambda: _status(web_port) == 500 and 500, 20)
    started = datetime.now(UTC).isoformat()
    if monitoring is None:
        say(f"web /healthz answers {health}; the demo sends what Alertmanager would")
        code, ms, body = post_alert(intake, token, fallback_alert("firing", started))
        if code != 202:
            raise SystemExit(f"the intake answered {code}: {body}")
        incident = store.get_incident(body["alerts"][0]["incident_id"])
        came = f"webhook → intake: 202 in {ms:.1f} ms"
    else:
        say(f"web answers {health}; waiting for Prometheus to see it and Alertmanager to fire")
        incident = _wait("the real alert", lambda: next(iter(store.list_incidents()), None), 90)
        came = (f"real Alertmanager webhook, {time.monotonic() - deployed_at:.1f} s after the "
                "deploy")
    incident_id = incident.id
    sent_at = time.monotonic()
    runbook = _wait("the runbook", lambda: next(
        (e.runbook_name for e in store.list_executions(incident_id)), None), 30)
    say(f"{came} · INC-{incident.number} declared ({incident.severity.value}): "
        f"{incident.title} · runbook {runbook}", head=True)
    narrator = Narrator(store, incident_id)
    threading.Thread(target=importlib.import_module, args=("flows.runs.approvals",),
                     daemon=True).start()
    approved_at = None
    while True:
        if deploy.returncode is None and deploy.poll() is not None:
            if deploy.returncode != 0:
                raise SystemExit(f"prefect deploy --all failed:\n{stack.log('deploy')[-3000:]}")
            say(f"the {count} deployments are registered; `firelane worker` runs them")
        status, pending = narrator.poll()
        if status in ("succeeded", "failed"):
            break
        if pending is not None and approved_at is None:
            approved_at = _approve(stack, incident.number, pending, args, api, narrator)
        if time.monotonic() - sent_at > 240:
            raise SystemExit("the runbook did not finish within 4 minutes; logs in "
                             f"{DEMO}/logs")
        time.sleep(0.2)
    say(f"runbook {status} {time.monotonic() - sent_at:.1f} s after the alert", head=True)
    if status == "succeeded":
        say(f"web /healthz answers {_status(web_port)} on release "
            f"{os.readlink(DEMO / 'web' / 'current').rsplit('/', 1)[-1]}")
        if monitoring is None:
            post_alert(intake, token, fallback_alert("resolved", started))
        else:
            _wait("the resolved notification", lambda: "alert.resolved" in [
                e.kind for e in store.timeline(incident_id)], 60)
            say("the 5xx ratio fell: the real Alertmanager sent the resolved notification")
    _tell_updates(store, incident_id, intake, sandbox_url, sandbox_ca,
                  2 if status == "succeeded" else 1)
    report = DEMO / "reports" / f"inc-{incident.number}.html"
    _wait("the timeline report", lambda: report.exists() and "report.published" in [
        e.kind for e in store.timeline(incident_id)], 90)
    incident = store.get_incident(incident_id)
    say(f"INC-{incident.number} {incident.status.value}; timeline report and postmortem "
        "draft written", head=True)
    synced = [e.summary for e in store.timeline(incident_id) if e.kind == "lifecycle.synced"]
    if synced:
        say(f"page and ticket followed the incident: {synced[-1]}")
    _summary(store, stack, incident, api, args.port, sent_at, narrator, report)
    traffic.halt.set()
    bridge.halt.set()
    store.close()
    return status == "succeeded"


def _tell_updates(store: Store, incident_id: str, intake: str,
                  sandbox_url: str, sandbox_ca: str, expected: int) -> None:
    """What stakeholders were told, once each update's delivery (the `stakeholder-update`
    runbook, run by the responders) has finished."""
    def delivered() -> bool:
        runs = {e.id: e.status for e in store.list_executions(incident_id)}
        found = store.list_updates(incident_id)
        return len(found) >= expected and all(
            runs.get(u.execution_id or "") in ("succeeded", "failed") for u in found)
    _wait("the stakeholder updates", delivered, 90)
    runs = {e.id: e for e in store.list_executions(incident_id)}
    declared = store.get_incident(incident_id).created_at
    for u in store.list_updates(incident_id):
        run = runs.get(u.execution_id or "")
        done = (f" {(run.finished_at - declared).total_seconds():.1f} s after the alert"
                if run is not None and run.finished_at is not None else "")
        say(f"stakeholder update #{u.seq} [{u.status}] ({u.audience}, {u.state}; delivery "
            f"{run.status if run else 'not queued'}{done}): {u.message}")
    state = httpx.get(f"{sandbox_url}/_admin/state", verify=sandbox_ca, timeout=10).json()
    room = next((c["id"] for c in state["slack_channels"].values()
                 if c["name"] == "web-status"), "")
    posts = [m for m in state["slack_messages"] if m["channel"] == room]
    hosted = list(state.get("statuspage_incidents", {}).values())
    hosted_updates = len(hosted[0].get("incident_updates", [])) if hosted else 0
    say(f"the sandbox received: {len(posts)} messages in #web-status, "
        f"{len(state.get('emails', []))} e-mails "
        f"({', '.join(sorted({m['rcpt_tos'][0] for m in state.get('emails', [])}))}), "
        f"{len(hosted)} Statuspage incident"
        + (f" ({hosted[0]['status']}, {hosted_updates} updates)"
           if hosted else ""))
    say(f"status page: {intake}/status (and the static copy in {DEMO / 'status'})")


def _status(port: int) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return None


def _approve(stack: Stack, number: int, pending: Any, args: argparse.Namespace,
             api: str, narrator: Narrator) -> float:
    say(f"approval requested for step {pending.step_id}: {pending.message}", head=True)
    if args.interactive:
        deadline = time.monotonic() + 15
        while not pending.flow_run_id and time.monotonic() < deadline:
            time.sleep(0.2)
            pending = next(a for a in narrator.store.approvals_for(pending.incident_id)
                           if a.id == pending.id)
        where = (f"http://127.0.0.1:{args.port}/runs/flow-run/{pending.flow_run_id}"
                 if pending.flow_run_id else "the paused `approve` subflow run")
        say(f"approve it in the Prefect UI: {where} → Resume, or from another terminal:")
        say(f"  PREFECT_API_URL={api} FIRELANE_DATABASE_URL={stack.env['FIRELANE_DATABASE_URL']}"
            f" .venv/bin/firelane approve INC-{number} {pending.step_id}")
        return time.monotonic()
    for left in (3, 2, 1):
        say(f"  the demo approves in {left} s (run it with --interactive to decide yourself)")
        narrator.poll()
        time.sleep(1)
    from flows.runs.approvals import decide

    asyncio.run(decide(narrator.store, pending, True, "demo-oncall",
                       "bad deploy confirmed by the diagnosis"))
    say(f"approved by demo-oncall (what `firelane approve INC-{number} {pending.step_id}` "
        "does; the paused approval subflow resumes)")
    return time.monotonic()


def _summary(store: Store, stack: Stack, incident: Any, api: str, port: int, sent_at: float,
             narrator: Narrator, report: Path) -> None:
    print(f"\n{BOLD}Timings after the alert{OFF}")
    for step, at in sorted(narrator.first_ok.items(), key=lambda kv: kv[1]):
        print(f"  {step:<14} {at - (sent_at - T0):6.1f} s")
    print(f"\n{BOLD}Prefect UI{OFF}  http://127.0.0.1:{port}")
    for run in _flow_runs(api, incident.id):
        print(f"  {run['name']:<40} {run['state_type']:<10} "
              f"http://127.0.0.1:{port}/runs/flow-run/{run['id']}")
    print(f"\n{BOLD}Report{OFF}  {report}")
    print(f"  postmortem draft: {report.with_name(f'inc-{incident.number}-postmortem.md')}")
    print(f"  timeline: .venv/bin/firelane incidents show INC-{incident.number} "
          f"(FIRELANE_DATABASE_URL={stack.env['FIRELANE_DATABASE_URL']})")
    print(f"\ndemo took {time.monotonic() - T0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())

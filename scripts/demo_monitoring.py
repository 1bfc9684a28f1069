"""The demo's monitoring: a real Prometheus scraping the sample web service, a real alerting
rule on its 5xx ratio, and a real Alertmanager that posts firing and resolved notifications
to the intake with its bearer token; plus the steady traffic that gives the ratio meaning.

Debian packages both (`prometheus`, `prometheus-alertmanager`; `make system-deps` installs
them). Without them the demo says so and posts the webhook Alertmanager would have sent.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from demo_stack import BAD, DEMO, Stack, free_port

__all__ = ["RULE", "Monitoring", "Traffic", "fallback_alert", "post_alert", "start_monitoring"]

RULE = ('sum(rate(http_requests_total{job="web",path="/",code=~"5.."}[10s])) '
        '/ sum(rate(http_requests_total{job="web",path="/"}[10s])) > 0.05')
"""The alert: more than 5% of the web service's requests answered 5xx over 10 s."""


@dataclass(frozen=True)
class Monitoring:
    """Where the demo's Prometheus and Alertmanager listen."""

    prometheus: str
    alertmanager: str


class Traffic(threading.Thread):
    """Users of the web service: 20 requests a second to `/` until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True, name="demo-traffic")
        self.url, self.halt = f"http://127.0.0.1:{port}/", threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=1) as client:
            while not self.halt.wait(0.05):
                try:
                    client.get(self.url)
                except httpx.HTTPError:
                    continue


def fallback_alert(status: str, started: str) -> dict[str, Any]:
    """The webhook Alertmanager would send, for a machine without Alertmanager."""
    labels = {"alertname": "HighErrorRate", "service": "web", "severity": "critical",
              "job": "web", "instance": "web-1:8080"}
    return {"version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "status": status,
            "receiver": "firelane", "truncatedAlerts": 0,
            "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": labels,
            "commonAnnotations": {"summary": "web 5xx rate above 20% after deploy " + BAD},
            "externalURL": "http://alertmanager.demo:9093",
            "alerts": [{"status": status, "labels": labels,
                        "annotations": {"summary": f"web 5xx rate above 20% after deploy {BAD}",
                                        "description": "rate(http_requests_total{code=~\"5..\"}"
                                                       "[1m]) / rate(http_requests_total[1m])"
                                                       " = 0.97"},
                        "startsAt": started,
                        "endsAt": datetime.now(UTC).isoformat() if status == "resolved"
                        else "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.demo:9090/graph?g0.expr=...",
                        "fingerprint": "5e1d0a3b7c9f2e41"}]}


def post_alert(intake: str, token: str, body: dict[str, Any]) -> tuple[int, float, Any]:
    """Post `body` to the intake as Alertmanager does; status, milliseconds, answer."""
    started = time.perf_counter()
    r = httpx.post(f"{intake}/alerts/alertmanager", json=body, timeout=10,
                   headers={"Authorization": f"Bearer {token}"})
    return r.status_code, (time.perf_counter() - started) * 1000, r.json()


def _binary(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


def start_monitoring(stack: Stack, web_port: int, intake_port: int, token: str,
                     labels: dict[str, str] | None = None) -> Monitoring | None:
    """Start Prometheus and Alertmanager for the demo (None when either is not installed);
    `labels` are added to the alert's (the Kubernetes story adds `platform: kubernetes`)."""
    prometheus = _binary("prometheus")
    alertmanager = _binary("prometheus-alertmanager", "alertmanager")
    if prometheus is None or alertmanager is None:
        return None
    root = DEMO / "monitoring"
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(token + "\n")
    am_port, prom_port = free_port(), free_port()
    _write_configs(root, web_port, intake_port, am_port, labels or {})
    stack.start("alertmanager", [
        alertmanager, f"--config.file={root / 'alertmanager.yml'}",
        f"--storage.path={root / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address="])
    stack.start("prometheus", [
        prometheus, f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
        "--log.level=warn"])
    found = Monitoring(prometheus=f"http://127.0.0.1:{prom_port}",
                       alertmanager=f"http://127.0.0.1:{am_port}")
    stack.wait_for("alertmanager", lambda: stack.http_ok(f"{found.alertmanager}/-/ready"), 30)
    stack.wait_for("prometheus", lambda: stack.http_ok(f"{found.prometheus}/-/ready"), 60)
    return found


def _write_configs(root: Path, web_port: int, intake_port: int, am_port: int,
                   labels: dict[str, str]) -> None:
    rules = {"groups": [{"name": "web", "interval": "1s", "rules": [{
        "alert": "HighErrorRate", "expr": RULE,
        "labels": {"severity": "critical", "service": "web", **labels},
        "annotations": {
            "summary": "web 5xx rate above 5% ({{ $value | humanizePercentage }})",
            "description": f"{RULE} (Prometheus, scraping the sample service every second)"}}]}]}
    (root / "rules.yml").write_text(json.dumps(rules))
    (root / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(root / "rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "web", "static_configs": [
            {"targets": [f"127.0.0.1:{web_port}"], "labels": {"service": "web"}}]}]}))
    (root / "alertmanager.yml").write_text(json.dumps({
        "route": {"receiver": "firelane", "group_by": ["alertname", "service"],
                  "group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"},
        "receivers": [{"name": "firelane", "webhook_configs": [{
            "url": f"http://127.0.0.1:{intake_port}/alerts/alertmanager",
            "send_resolved": True, "max_alerts": 1000,
            "http_config": {"authorization": {
                "type": "Bearer", "credentials_file": str(root / "token")}}}]}]}))

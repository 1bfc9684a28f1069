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
from dataclasses import dataclass
from pathlib import Path

import httpx
from demo_stack import DEMO, Stack, free_port

__all__ = ["RULE", "Monitoring", "Traffic", "start_monitoring"]

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


def _binary(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


def start_monitoring(stack: Stack, web_port: int, intake_port: int,
                     token: str) -> Monitoring | None:
    """Start Prometheus and Alertmanager for the demo (None when either is not installed)."""
    prometheus = _binary("prometheus")
    alertmanager = _binary("prometheus-alertmanager", "alertmanager")
    if prometheus is None or alertmanager is None:
        return None
    root = DEMO / "monitoring"
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(token + "\n")
    am_port, prom_port = free_port(), free_port()
    _write_configs(root, web_port, intake_port, am_port)
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


def _write_configs(root: Path, web_port: int, intake_port: int, am_port: int) -> None:
    rules = {"groups": [{"name": "web", "interval": "1s", "rules": [{
        "alert": "HighErrorRate", "expr": RULE,
        "labels": {"severity": "critical", "service": "web"},
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

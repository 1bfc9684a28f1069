"""The sandbox's state: what the stand-in vendors and the mail server hold, behind one lock."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from integrations.sandbox.kubernetes_model import KubeCluster
from integrations.sandbox.kubernetes_views import dump_cluster

__all__ = ["STATUSPAGE_COMPONENTS", "STATUSPAGE_PAGE_ID", "SandboxState", "statuspage_components"]

STATUSPAGE_PAGE_ID = "fl0sandbox00"
STATUSPAGE_COMPONENTS = {"cmp0checkout": "Checkout", "cmp000search": "Search",
                         "cmp00website": "Website"}


def statuspage_components(names: dict[str, str], page_id: str = STATUSPAGE_PAGE_ID,
                          ) -> dict[str, dict[str, Any]]:
    """Statuspage components as its API returns them, from `{id: name}`, all operational."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {cid: {"id": cid, "page_id": page_id, "group_id": None, "created_at": at,
                  "updated_at": at, "group": False, "name": name, "description": None,
                  "position": n, "status": "operational", "showcase": True,
                  "only_show_if_degraded": False,
                  "automation_email": f"component+{cid}@notifications.statuspage.io",
                  "start_date": at[:10]}
            for n, (cid, name) in enumerate(names.items(), start=1)}


@dataclass
class SandboxState:
    """Everything the stand-ins remember; `dump()` is what the admin endpoint shows."""

    jira_mode: str = "Server"
    jira_search_lag: float = 0.0
    jira_projects: dict[str, str] = field(default_factory=lambda: {"OPS": "10000",
                                                                   "WEB": "10001"})
    jira_issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    jira_links: list[dict[str, Any]] = field(default_factory=list)
    pd_incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    pd_log_entries: list[dict[str, Any]] = field(default_factory=list)
    pd_users: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "PUSER01": {"id": "PUSER01", "type": "user", "name": "Alice Oncall",
                    "summary": "Alice Oncall", "email": "alice@example.com"},
        "PUSER02": {"id": "PUSER02", "type": "user", "name": "Bob Backup",
                    "summary": "Bob Backup", "email": "bob@example.com"}})
    pd_oncall: list[dict[str, Any]] = field(default_factory=lambda: [
        {"user": "PUSER01", "escalation_policy": "PPOL001", "level": 1},
        {"user": "PUSER02", "escalation_policy": "PPOL001", "level": 2}])
    slack_users: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "U0ALICE": {"id": "U0ALICE", "name": "alice", "real_name": "Alice Oncall",
                    "profile": {"email": "alice@example.com"}},
        "U0BOB": {"id": "U0BOB", "name": "bob", "real_name": "Bob Backup",
                  "profile": {"email": "bob@example.com"}}})
    slack_channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    slack_messages: list[dict[str, Any]] = field(default_factory=list)
    slack_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    slack_withheld_scopes: list[str] = field(default_factory=list)
    zoom_meetings: list[dict[str, Any]] = field(default_factory=list)
    zoom_daily_limit: int = 100
    zoom_creates: dict[str, int] = field(default_factory=dict)
    smtp_port: int = 0
    smtp_require_auth: bool = False
    emails: list[dict[str, Any]] = field(default_factory=list)
    statuspage_page_id: str = STATUSPAGE_PAGE_ID
    statuspage_keys: list[str] = field(default_factory=lambda: ["sandbox-statuspage-key"])
    statuspage_rate_limit: dict[str, float] | None = field(
        default_factory=lambda: {"requests": 60, "window": 60.0})
    statuspage_rate_status: int = 420
    statuspage_component_names: dict[str, str] = field(
        default_factory=lambda: dict(STATUSPAGE_COMPONENTS))
    statuspage_components: dict[str, dict[str, Any]] = field(
        default_factory=lambda: statuspage_components(STATUSPAGE_COMPONENTS))
    statuspage_incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuspage_component_changes: list[dict[str, Any]] = field(default_factory=list)
    statuspage_calls: list[dict[str, Any]] = field(default_factory=list)
    statuspage_windows: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    kubernetes: KubeCluster = field(default_factory=KubeCluster)
    requests: list[str] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    arrivals: list[dict[str, Any]] = field(default_factory=list)
    recording: bool = False
    exchanges: list[dict[str, Any]] = field(default_factory=list, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _ids: Any = field(default_factory=lambda: itertools.count(1), repr=False)

    def next_id(self) -> int:
        """A fresh number for ids and keys."""
        return int(next(self._ids))

    def arrived(self, kind: str, key: str) -> None:
        """Note when a side effect happened (epoch seconds), for latency benchmarks."""
        self.arrivals.append({"kind": kind, "key": key, "at": time.time()})

    def visible_issues(self) -> list[dict[str, Any]]:
        """Issues the search index has caught up with (Jira's documented lag)."""
        cutoff = time.time() - self.jira_search_lag
        return [i for i in self.jira_issues.values() if i["_indexed_at"] <= cutoff]

    def dump(self) -> dict[str, Any]:
        """A JSON-able copy of the state (no lock, no counters)."""
        with self.lock:
            data = copy.deepcopy({f.name: getattr(self, f.name) for f in fields(self)
                                  if not f.name.startswith("_")
                                  and f.name not in ("lock", "exchanges", "kubernetes",
                                                     "statuspage_windows")})
            data["kubernetes"] = dump_cluster(self.kubernetes)
        data["jira_issues"] = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                               for k, v in data["jira_issues"].items()}
        data["statuspage_incidents"] = {
            k: {**{kk: vv for kk, vv in v.items() if not kk.startswith("_")},
                "component_ids": v["_component_ids"], "incident_updates": v["_updates"]}
            for k, v in data["statuspage_incidents"].items()}
        for stored in data["slack_files"].values():
            content = stored.pop("bytes")
            stored["uploaded_bytes"] = None if content is None else len(content)
        return data

    def reset(self) -> None:
        """Back to a fresh sandbox (configuration kept)."""
        fresh = SandboxState(jira_mode=self.jira_mode, jira_search_lag=self.jira_search_lag,
                             zoom_daily_limit=self.zoom_daily_limit)
        with self.lock:
            for name in ("jira_issues", "jira_links", "pd_incidents", "pd_log_entries",
                         "slack_channels", "slack_messages", "slack_files",
                         "slack_withheld_scopes", "zoom_meetings",
                         "zoom_creates", "emails", "requests", "client_ports", "exchanges",
                         "arrivals",
                         "statuspage_incidents",
                         "statuspage_component_changes", "statuspage_calls",
                         "statuspage_windows"):
                setattr(self, name, getattr(fresh, name))
            self.statuspage_components = statuspage_components(
                self.statuspage_component_names, self.statuspage_page_id)
            self.kubernetes.clear()

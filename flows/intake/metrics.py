"""The intake's Prometheus metrics (text exposition format 0.0.4).

Counters and the intake-latency histogram are this process's own; the response figures
(waiting, stuck, failed pages, alert→first-action) are read from the store at scrape time, so
they cover every intake and responder process that shares it.
"""

from __future__ import annotations

import bisect
import os
import resource
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from firelane.store import Health

__all__ = ["BUCKETS", "Histogram", "IntakeMetrics", "peak_resident_bytes",
           "resident_bytes"]

BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_HELP = {
    "alerts_received_total": ("counter", "Alerts accepted, by source and alert status"),
    "alerts_rejected_total": ("counter", "Requests refused, by source and HTTP status"),
    "incidents_declared_total": ("counter", "Incidents declared by alerts"),
    "dedup_hits_total": ("counter", "Alerts folded into their fingerprint's open incident"),
    "alerts_grouped_total": ("counter", "Alerts that joined their group's incident"),
    "incidents_reopened_total": ("counter", "Incidents reopened by a re-firing alert"),
    "alerts_flapping_total": ("counter", "Re-firing alerts marked flapping (not paged)"),
    "responses_started_total": ("counter", "Responses this process started"),
    "responses_failed_total": ("counter", "Responses this process could not run"),
    "sns_subscriptions_confirmed_total": ("counter", "SNS subscriptions confirmed"),
}


@dataclass
class Histogram:
    """A cumulative Prometheus histogram."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.n += 1

    def render(self, name: str, help_text: str) -> list[str]:
        """Exposition lines."""
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        return [*lines, f"{name}_sum {self.total:.6f}", f"{name}_count {self.n}"]


@dataclass
class IntakeMetrics:
    """Everything `/metrics` shows."""

    counters: Counter[str] = field(default_factory=Counter)
    intake: Histogram = field(default_factory=Histogram)
    first_action: Histogram = field(default_factory=Histogram)
    first_action_seen: datetime | None = None

    def count(self, name: str, labels: str = "", by: int = 1) -> None:
        """Add to a counter (`labels` like `source="grafana"`)."""
        self.counters[f"{name}{{{labels}}}" if labels else name] += by

    def absorb(self, health: Health) -> None:
        """Fold the executions that acted since the last scrape into the histogram."""
        for at, seconds in health.first_actions:
            self.first_action.observe(seconds)
            self.first_action_seen = at

    def render(self, health: Health, running: int) -> str:
        """The whole exposition."""
        lines: list[str] = []
        families: dict[str, list[str]] = {}
        for key, value in sorted(self.counters.items()):
            families.setdefault(key.split("{")[0], []).append(f"firelane_{key} {value}")
        for family, samples in families.items():
            kind, text = _HELP.get(family, ("counter", family.replace("_", " ")))
            lines += [f"# HELP firelane_{family} {text}", f"# TYPE firelane_{family} {kind}",
                      *samples]
        gauges: list[tuple[str, str, float]] = [
            ("responses_waiting", "Executions accepted and waiting for a responder",
             health.waiting),
            ("responses_oldest_waiting_seconds", "Age of the oldest waiting execution",
             round(health.oldest_waiting_seconds, 3)),
            ("flows_waiting", "Executions whose urgent steps ran, waiting for a flow runner",
             health.flows_waiting),
            ("executions_stuck", "Running executions past their lease (responder or step "
             "worker stopped)", health.stuck),
            ("pages_failed", "Pages that failed after their retries (incidents flagged "
             "page_failed)", health.pages_failed),
            ("responses_running", "Responses running in this process", running),
            ("process_resident_memory_bytes", "Resident memory of this process now",
             resident_bytes()),
            ("process_peak_resident_memory_bytes", "Highest resident memory of this process "
             "since it started", peak_resident_bytes()),
        ]
        for name, text, reading in gauges:
            lines += [f"# HELP firelane_{name} {text}", f"# TYPE firelane_{name} gauge",
                      f"firelane_{name} {reading}"]
        lines += self.intake.render("firelane_intake_seconds",
                                    "Request to committed 202, this process")
        lines += self.first_action.render(
            "firelane_alert_first_action_seconds",
            "From the response being recorded (with its alert) to its first step succeeding")
        return "\n".join(lines) + "\n"


def resident_bytes() -> int:
    """This process's resident set size now (Linux `/proc/self/statm`; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """The highest resident set size this process has had (`getrusage`, never below now)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, resident_bytes())

"""The intake's Prometheus metrics, through `prometheus_client`, one registry per intake app.

Counters and the intake-latency histogram are this process's own; the response figures
(waiting, stuck, failed pages, alert→first-action) and the key-time histograms (time to
acknowledge, mitigate and resolve, observed once per resolution) are read from the store at
scrape time, so they cover every intake and responder process that shares it.

Every label value comes from a fixed vocabulary and every series exists from the moment the app
is built: `source` is one of `SOURCES` or `unknown`, `status` one of `ALERT_STATUSES` (alerts
received) or `REJECTED_STATUSES` (requests refused). No request can add a series, and
`prometheus_client` escapes whatever it writes, so no request can add a line either.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from firelane.models import Severity
from firelane.store import Accepted, Health, Store
from firelane.timeline import KeyTimes, from_store, key_times
from flows.respond.liveness import PROCESS_ROLES
from integrations.alerts import SOURCES

if TYPE_CHECKING:
    from firelane.library import Library
    from flows.intake.live import LiveConfig
    from flows.respond.starter import ResponseStarter

__all__ = ["ALERT_STATUSES", "BUCKETS", "CONFIG_KINDS", "KEY_TIME_BUCKETS",
           "REJECTED_STATUSES", "SOURCE_LABELS", "IntakeMetrics", "peak_resident_bytes",
           "resident_bytes", "source_label", "status_label"]

BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KEY_TIME_LOOKBACK = timedelta(hours=1)
KEY_TIME_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
                    86400.0, 259200.0)
SOURCE_LABELS = (*SOURCES, "unknown")
ALERT_STATUSES = ("firing", "resolved")
REJECTED_STATUSES = ("400", "401", "404", "413", "415", "503", "other")
CONFIG_KINDS = ("intake_config", "runbook", "catalog")

_STORE_GAUGES: tuple[tuple[str, str, Callable[[Health], float]], ...] = (
    ("firelane_responses_waiting", "Executions accepted and waiting for a responder",
     lambda h: h.waiting),
    ("firelane_responses_oldest_waiting_seconds", "Age of the oldest waiting execution",
     lambda h: round(h.oldest_waiting_seconds, 3)),
    ("firelane_flows_waiting", "Executions whose urgent steps ran, waiting for a flow runner",
     lambda h: h.flows_waiting),
    ("firelane_executions_stuck", "Running executions past their lease (responder or step "
     "worker stopped)", lambda h: h.stuck),
    ("firelane_pages_failed", "Pages that failed after their retries (incidents flagged "
     "page_failed)", lambda h: h.pages_failed),
    ("firelane_pages_overdue", "Pages claimed by a responder whose lease ran out (it died or "
     "stalled) and not yet taken over", lambda h: h.pages_overdue),
    ("firelane_incidents_resolved_page_open", "Incidents resolved in the last day whose page "
     "went out and was not resolved by a pagerduty.resolve step after it",
     lambda h: h.resolved_page_open),
)
_LIVE = ("firelane_processes_live", "Firelane processes whose heartbeat is younger than "
         "FIRELANE_LIVENESS_SECONDS, by role")
_RUNNING = ("firelane_responses_running", "Responses running in this process")
_STARTED = ("firelane_responses_started", "Responses this process started")
_FAILED = ("firelane_responses_failed", "Responses this process could not run")
_FIRST_ACTION = ("firelane_alert_first_action_seconds",
                 "From the response being recorded (with its alert) to its first step "
                 "succeeding")
_KEY_TIMES: tuple[tuple[str, str, Callable[[KeyTimes], timedelta | None]], ...] = (
    ("firelane_incident_time_to_acknowledge_seconds", "Detected to acknowledged (first "
     "acknowledgement from any side), per resolved incident", lambda t: t.time_to_acknowledge),
    ("firelane_incident_time_to_mitigate_seconds", "Detected to mitigated (or resolved when "
     "never mitigated first), per resolved incident", lambda t: t.time_to_mitigate),
    ("firelane_incident_time_to_resolve_seconds", "Detected to the incident's own resolution, "
     "per resolved incident", lambda t: t.time_to_resolve),
)
_PEAK = ("firelane_process_peak_resident_memory_bytes",
         "Highest resident memory of this process since it started")


def source_label(source: str) -> str:
    """`source` if it is a known alert source, else `unknown`."""
    return source if source in SOURCES else "unknown"


def status_label(status: int) -> str:
    """The HTTP status of a refusal as a label: one of `REJECTED_STATUSES` (`other` if new)."""
    text = str(status)
    return text if text in REJECTED_STATUSES else "other"


class _StoreCollector:
    """The response figures, read from the store (and the starter) at each scrape."""

    def __init__(self, store: Store, stale_after: float, starter: ResponseStarter | None,
                 live_within: float) -> None:
        self.store, self.stale_after, self.starter = store, stale_after, starter
        self.live_within = live_within
        self.first_action = Histogram(*_FIRST_ACTION, buckets=BUCKETS, registry=None)
        self.seen: datetime | None = None
        self.lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        for name, text, _ in _STORE_GAUGES:
            yield GaugeMetricFamily(name, text)
        yield GaugeMetricFamily(*_LIVE, labels=["role"])
        yield GaugeMetricFamily(*_RUNNING)
        yield CounterMetricFamily(*_STARTED)
        yield CounterMetricFamily(*_FAILED)
        yield from self.first_action.describe()

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            health = self.store.health(self.stale_after, self.seen)
            for at, seconds in health.first_actions:
                self.first_action.observe(seconds)
                self.seen = at
        live = self.store.live_processes(self.live_within)
        for name, text, read in _STORE_GAUGES:
            yield GaugeMetricFamily(name, text, value=read(health))
        processes = GaugeMetricFamily(*_LIVE, labels=["role"])
        for role in (*PROCESS_ROLES, *sorted(set(live) - set(PROCESS_ROLES))):
            processes.add_metric([role], live.get(role, 0))
        yield processes
        starter = self.starter
        yield GaugeMetricFamily(*_RUNNING, value=len(starter.tasks) if starter else 0)
        yield CounterMetricFamily(*_STARTED, value=starter.started if starter else 0)
        yield CounterMetricFamily(*_FAILED, value=starter.failed if starter else 0)
        yield from self.first_action.collect()


class _KeyTimesCollector:
    """Time to acknowledge, mitigate and resolve, by severity: each resolution the store
    records is observed once, with the key times the report and postmortem show (the same
    `key_times` over the store's timeline and alerts).

    A resolution taken from a vendor carries the vendor's time, which can be earlier than one
    already observed; so each scrape looks back `KEY_TIME_LOOKBACK` before the newest
    resolution it observed and skips the events it has seen."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.histograms = [Histogram(name, text, ("severity",), buckets=KEY_TIME_BUCKETS,
                                     registry=None) for name, text, _ in _KEY_TIMES]
        for histogram in self.histograms:
            for severity in Severity:
                histogram.labels(severity.value)
        self.newest: datetime | None = None
        self.observed: dict[str, datetime] = {}
        self.lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        for histogram in self.histograms:
            yield from histogram.describe()

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            since = self.newest - KEY_TIME_LOOKBACK if self.newest else None
            for event_id, at, incident_id in self.store.resolved_since(since):
                if event_id not in self.observed:
                    self.observe(incident_id)
                    self.observed[event_id] = at
                    self.newest = max(self.newest or at, at)
            if since is not None:
                self.observed = {k: v for k, v in self.observed.items() if v >= since}
        for histogram in self.histograms:
            yield from histogram.collect()

    def observe(self, incident_id: str) -> None:
        """Observe one resolved incident's key times (a missing one is not observed)."""
        incident = self.store.get_incident(incident_id)
        times = key_times(incident, from_store(self.store.timeline(incident.id),
                                               self.store.alerts_of(incident.id)))
        for histogram, (_, _, read) in zip(self.histograms, _KEY_TIMES, strict=True):
            value = read(times)
            if value is not None:
                histogram.labels(incident.severity.value).observe(
                    max(0.0, value.total_seconds()))


class _PeakMemoryCollector:
    """The process's peak resident memory (`ProcessCollector` has only the current one)."""

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(*_PEAK)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(*_PEAK, value=peak_resident_bytes())


class IntakeMetrics:
    """One intake app's metrics, in a registry of its own (never the process-wide default), so
    two intakes in one process neither share nor collide.

    Args:
        store: read at scrape time for the response figures.
        stale_after: seconds after which a running execution without a heartbeat is stuck.
        starter: the in-process response starter whose counts are shown, if any.
        live_within: liveness window in seconds (`firelane_processes_live`).

    Example:
        >>> metrics = IntakeMetrics(store, 90.0)
        >>> metrics.count_rejected("nagios", 404)   # counted as source="unknown"
        >>> page = metrics.exposition()
    """

    def __init__(self, store: Store, stale_after: float,
                 starter: ResponseStarter | None = None, live_within: float = 30.0) -> None:
        self.registry = registry = CollectorRegistry()
        self.received = Counter("firelane_alerts_received",
                                "Alerts accepted, by source and alert status",
                                ("source", "status"), registry=registry)
        self.rejected = Counter("firelane_alerts_rejected",
                                "Requests refused, by source and HTTP status",
                                ("source", "status"), registry=registry)
        self.declared = Counter("firelane_incidents_declared", "Incidents declared by alerts",
                                registry=registry)
        self.dedup_hits = Counter("firelane_dedup_hits",
                                  "Alerts folded into their fingerprint's open incident",
                                  registry=registry)
        self.grouped = Counter("firelane_alerts_grouped",
                               "Alerts that joined their group's incident", registry=registry)
        self.reopened = Counter("firelane_incidents_reopened",
                                "Incidents reopened by a re-firing alert", registry=registry)
        self.flapping = Counter("firelane_alerts_flapping",
                                "Re-firing alerts marked flapping (not paged)", registry=registry)
        self.sns_confirmed = Counter("firelane_sns_subscriptions_confirmed",
                                     "SNS subscriptions confirmed", registry=registry)
        self.intake = Histogram("firelane_intake_seconds",
                                "Request to committed 202, this process", buckets=BUCKETS,
                                registry=registry)
        self.config_refused = Counter(
            "firelane_config_refused", "Files refused by a load or reload because they failed "
            "validation (the last good version keeps serving), by kind", ("kind",),
            registry=registry)
        self.config_invalid = Gauge(
            "firelane_config_invalid", "Files that fail validation now, by kind (0 when every "
            "runbook, the catalog and the intake configuration in force are their files)",
            ("kind",), registry=registry)
        for kind in CONFIG_KINDS:
            self.config_refused.labels(kind)
            self.config_invalid.labels(kind)
        for source in SOURCES:
            for status in ALERT_STATUSES:
                self.received.labels(source, status)
        for source in SOURCE_LABELS:
            for code in REJECTED_STATUSES:
                self.rejected.labels(source, code)
        ProcessCollector(namespace="firelane", registry=registry)
        registry.register(_PeakMemoryCollector())
        registry.register(_StoreCollector(store, stale_after, starter, live_within))
        registry.register(_KeyTimesCollector(store))

    def watch_config(self, live: LiveConfig, library: Library | None) -> None:
        """Count the refusals of `live` and `library` (those found at start once) and show
        how many of their files fail validation now."""
        live.on_refused(lambda _: self.config_refused.labels("intake_config").inc())
        self.config_invalid.labels("intake_config").set_function(
            lambda: float(live.refusal is not None))
        if library is None:
            return
        for refusal in library.refused:
            self.config_refused.labels(refusal.kind).inc()
        library.on_refused(lambda refusal: self.config_refused.labels(refusal.kind).inc())
        def invalid(kind: str) -> Callable[[], float]:
            return lambda: float(sum(r.kind == kind for r in library.refused))

        for kind in ("runbook", "catalog"):
            self.config_invalid.labels(kind).set_function(invalid(kind))

    def count_accepted(self, source: str, items: list[Accepted]) -> None:
        """Count a request's committed alerts and what the store decided about them (one
        increment per series, however many alerts: a group of 100 is one request)."""
        resolved = sum(item.status == "resolved" for item in items)
        label = source_label(source)
        for status, n in (("resolved", resolved), ("firing", len(items) - resolved)):
            if n:
                self.received.labels(label, status).inc(n)
        for counter, n in ((self.dedup_hits, sum(i.deduplicated for i in items)),
                           (self.grouped, sum(i.grouped for i in items)),
                           (self.reopened, sum(i.reopened for i in items)),
                           (self.flapping, sum(i.flapping for i in items)),
                           (self.declared, sum(i.declared for i in items))):
            if n:
                counter.inc(n)

    def count_rejected(self, source: str, status: int) -> None:
        """Count one refused request (an unknown source counts as `unknown`)."""
        self.rejected.labels(source_label(source), status_label(status)).inc()

    def exposition(self) -> bytes:
        """The whole page in the Prometheus text format. It reads the store: call it off the
        event loop."""
        return generate_latest(self.registry)


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

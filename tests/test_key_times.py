"""A scripted incident's key times, each at a chosen instant, come out exactly as scripted in
every place they show: the report (Markdown and HTML), the postmortem and the intake's
`/metrics` histograms; a scrape observes each resolution once, and a reopened incident's second
resolution is observed again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from firelane.models import Alert, IncidentStatus, Severity, utcnow
from firelane.store import open_store
from flows.intake.metrics import IntakeMetrics
from flows.records.report import build_report, render

TTA, TTM, TTR = 3104.0, 3900.0, 4800.0


def _samples(metrics: IntakeMetrics) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {(s.name, s.labels.get("severity", "")): s.value
            for family in text_string_to_metric_families(text)
            if family.name.startswith("firelane_incident_time_to_")
            for s in family.samples if "le" not in s.labels}


def test_scripted_key_times_are_exact_in_report_postmortem_and_metrics(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    declared = utcnow().replace(microsecond=0)
    detected = declared - timedelta(seconds=3000)
    accepted = store.accept_alerts([Alert(source="prometheus", fingerprint="kt-1",
                                          title="5xx ratio above 5%", severity=Severity.SEV2,
                                          service="web", starts_at=detected)])
    incident_id = accepted[0].incident_id
    assert incident_id is not None and accepted[0].declared
    for to, seconds in ((IncidentStatus.ACKNOWLEDGED, TTA), (IncidentStatus.MITIGATED, TTM),
                        (IncidentStatus.RESOLVED, TTR)):
        assert store.follow_vendor(incident_id, to, via="pagerduty", actor="alice",
                                   at=detected + timedelta(seconds=seconds)) is not None
    incident = store.get_incident(incident_id)
    report = build_report(store, incident)
    times = report.times
    assert (times.detected, times.acknowledged, times.mitigated, times.resolved) == (
        detected, detected + timedelta(seconds=TTA), detected + timedelta(seconds=TTM),
        detected + timedelta(seconds=TTR))
    assert [t.total_seconds() if t else None for t in (
        times.time_to_acknowledge, times.time_to_mitigate, times.time_to_resolve)] == [
        TTA, TTM, TTR]
    scripted = ("51m 44s", "1h 05m", "1h 20m")
    for fmt in ("md", "html", "postmortem"):
        text = render(report, fmt, items=[], alerts=1)
        assert all(figure in text for figure in scripted), (fmt, scripted)

    metrics = IntakeMetrics(store, 90.0)
    first = _samples(metrics)
    for name, seconds in (("acknowledge", TTA), ("mitigate", TTM), ("resolve", TTR)):
        assert first[(f"firelane_incident_time_to_{name}_seconds_count", "SEV2")] == 1
        assert first[(f"firelane_incident_time_to_{name}_seconds_sum", "SEV2")] == seconds
        assert first[(f"firelane_incident_time_to_{name}_seconds_count", "SEV1")] == 0
    assert _samples(metrics) == first

    store.set_status(incident_id, IncidentStatus.DECLARED, actor="alice", reason="back")
    store.set_status(incident_id, IncidentStatus.RESOLVED, actor="alice", reason="fixed")
    again = _samples(metrics)
    assert again[("firelane_incident_time_to_resolve_seconds_count", "SEV2")] == 2
    assert again[("firelane_incident_time_to_resolve_seconds_sum", "SEV2")] > 2 * TTR - 1

"""Alertmanager (webhook v4) and Grafana Alerting (webhook "1"): the same shape of payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from firelane.errors import AlertRejected
from firelane.models import Alert, fit_title
from integrations.alerts.common import (
    as_text_map,
    check_count,
    fingerprint,
    known_severity,
    parse_time,
    severity,
)

__all__ = ["parse_alertmanager", "parse_grafana"]


def _gaps(source: str, labels: Mapping[str, str], annotations: Mapping[str, str],
          severities: Mapping[str, str] | None) -> dict[str, str]:
    """What an alert left out, with the default used and where to fix it."""
    rule = "the alerting rule" if source == "alertmanager" else "the Grafana alert rule"
    gaps = {}
    if not (annotations.get("summary") or annotations.get("title") or labels.get("alertname")):
        gaps["title"] = (f"no summary or title annotation and no alertname label, so the "
                         f"title is 'alert'; add a summary annotation to {rule}")
    raw = labels.get("severity") or labels.get("priority")
    if not raw:
        gaps["severity"] = (f"no severity label, so SEV3 was assumed; add a severity label "
                            f"(critical, warning, ...) to {rule}")
    elif not known_severity(raw, severities):
        gaps["severity"] = (f"severity {raw!r} is not a known spelling, so SEV3 was assumed; "
                            f"map it in intake.yaml sources.{source}.severities "
                            f"(for example {{{raw}: SEV2}})")
    if not (labels.get("service") or labels.get("job") or labels.get("app")):
        gaps["service"] = (f"no service, job or app label, so the service is 'unknown' (no "
                           f"catalog entry; runbooks that match services never match); add a "
                           f"service label to {rule}")
    return gaps


def _parse(source: str, data: Any, severities: Mapping[str, str] | None) -> list[Alert]:
    if not isinstance(data, dict):
        raise AlertRejected(f"{source}: the body must be a JSON object with an alerts list")
    items = data.get("alerts")
    if not isinstance(items, list) or not items:
        raise AlertRejected(f"{source}: alerts: expected a non-empty list")
    check_count(items)
    group_key = data.get("groupKey")
    group = f"{source}:{group_key}" if isinstance(group_key, str) and group_key else None
    common_labels = as_text_map(data.get("commonLabels"), "commonLabels")
    common_annotations = as_text_map(data.get("commonAnnotations"), "commonAnnotations")
    out = []
    for index, item in enumerate(items):
        where = f"alerts[{index}]"
        if not isinstance(item, dict):
            raise AlertRejected(f"{where}: expected an object")
        labels = {**common_labels, **as_text_map(item.get("labels"), f"{where}.labels")}
        annotations = {**common_annotations,
                       **as_text_map(item.get("annotations"), f"{where}.annotations")}
        if not labels:
            raise AlertRejected(f"{where}.labels: an alert needs at least one label")
        status = item.get("status", data.get("status", "firing"))
        if status not in ("firing", "resolved"):
            raise AlertRejected(f"{where}.status: expected firing or resolved, got {status!r}")
        given = item.get("fingerprint")
        print_ = f"{source}:{given}" if isinstance(given, str) and given else \
            fingerprint(source, labels)
        title = annotations.get("summary") or annotations.get("title") or labels.get(
            "alertname") or "alert"
        starts = parse_time(item.get("startsAt"), f"{where}.startsAt")
        alert = Alert(source=source, fingerprint=print_[:128], status=status,
                      title=fit_title(title),
                      severity=severity(labels.get("severity") or labels.get("priority"),
                                        severities),
                      service=labels.get("service") or labels.get("job") or labels.get("app"),
                      labels=labels, annotations=annotations,
                      ends_at=parse_time(item.get("endsAt"), f"{where}.endsAt"),
                      raw=item, group=group,
                      gaps=_gaps(source, labels, annotations, severities))
        if starts is not None:
            alert.starts_at = starts
        out.append(alert)
    group_title = _group_title(out, common_labels, common_annotations) if group else None
    for alert in out:
        alert.group_title = group_title
    return out


def _group_title(alerts: list[Alert], common_labels: Mapping[str, str],
                 common_annotations: Mapping[str, str]) -> str | None:
    """One title for a notification of several firing alerts whose own titles differ: the
    group's name, how many, and what tells them apart (the labels they do not share)."""
    firing = [a for a in alerts if a.status == "firing"]
    if len(firing) < 2 or len({a.title for a in firing}) == 1:
        return None
    name = common_annotations.get("summary") or common_labels.get("alertname") or "alerts"
    varying = sorted({k for a in firing for k in a.labels} - set(common_labels))
    names = ["/".join(a.labels[k] for k in varying if k in a.labels) or a.title for a in firing]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return fit_title(f"{name}: {len(firing)} alerts ({shown})")


def parse_alertmanager(data: Any, severities: Mapping[str, str] | None = None) -> list[Alert]:
    """Alertmanager webhook (version 4): one alert per `alerts[]` item, group labels merged;
    each alert carries the notification's `groupKey` (`Alert.group`)."""
    if isinstance(data, dict) and data.get("version") not in (None, "4"):
        raise AlertRejected(f"alertmanager: version {data.get('version')!r} is not supported "
                            "(webhook format version 4 is)")
    return _parse("alertmanager", data, severities)


def parse_grafana(data: Any, severities: Mapping[str, str] | None = None) -> list[Alert]:
    """Grafana Alerting webhook (version "1"), Alertmanager-shaped with extra fields."""
    return _parse("grafana", data, severities)

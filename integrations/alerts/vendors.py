"""Datadog webhooks, PagerDuty v3 webhooks, CloudWatch alarms (inside SNS), generic JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from firelane.errors import AlertRejected
from firelane.models import Alert, fit_title, utcnow
from integrations.alerts.common import (
    as_text_map,
    check_count,
    fingerprint,
    known_severity,
    parse_time,
    severity,
)

__all__ = ["parse_cloudwatch_message", "parse_datadog", "parse_generic", "parse_pagerduty"]

_TRANSITION = re.compile(r"^\[(triggered|recovered|re-triggered|warn|no data|renotify)"
                         r"(?: on [^\]]*)?\]\s*", re.I)


def parse_datadog(data: Any, severities: Mapping[str, str] | None = None) -> list[Alert]:
    """Datadog webhook (the default payload, plus $ALERT_* variables when the template adds
    them). Every value arrives as a string."""
    if not isinstance(data, dict):
        raise AlertRejected("datadog: the body must be a JSON object")
    title = str(data.get("title") or data.get("event_title") or "").strip()
    if not title:
        raise AlertRejected("datadog: title is missing (the default payload's $EVENT_TITLE)")
    transition = str(data.get("alert_transition") or "").lower()
    match = _TRANSITION.match(title)
    if match and not transition:
        transition = match.group(1).lower()
    clean = _TRANSITION.sub("", title)
    status = "resolved" if transition in ("recovered", "resolved") else "firing"
    tags = {}
    for tag in str(data.get("tags") or "").split(","):
        key, _, value = tag.strip().partition(":")
        if key:
            tags[key] = value
    labels = as_text_map({k: v for k, v in data.items() if isinstance(v, str | int | float)
                          and k not in ("body", "title")}, "datadog") | tags
    identity = data.get("aggreg_key") or data.get("alert_id") or clean
    org = (data.get("org") or {}).get("id") if isinstance(data.get("org"), dict) else None
    raw_severity = data.get("priority") or tags.get("severity") or data.get("alert_type")
    return [Alert(source="datadog", fingerprint=fingerprint("datadog", org, identity),
                  status=status, title=fit_title(clean) or "datadog alert",
                  severity=severity(raw_severity, severities),
                  service=tags.get("service") or None, labels=labels,
                  annotations={"body": str(data.get("body", ""))[:4096]},
                  starts_at=_lenient_time(data.get("date") or data.get("last_updated")),
                  raw=data)]


def _lenient_time(value: Any) -> datetime:
    """Datadog's times are informational (templates may leave `$DATE` unexpanded)."""
    try:
        return parse_time(value, "date") or utcnow()
    except AlertRejected:
        return utcnow()


def parse_pagerduty(data: Any, severities: Mapping[str, str] | None = None) -> list[Alert]:
    """PagerDuty v3 webhook: incident events become alerts; other events are ignored."""
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise AlertRejected("pagerduty: expected {\"event\": {\"event_type\": ..., "
                            "\"data\": ...}}")
    kind = event["event_type"]
    incident = event.get("data")
    if not kind.startswith("incident.") or not isinstance(incident, dict):
        return []
    if "incident" in incident and isinstance(incident["incident"], dict):
        incident = incident["incident"]
    ident = incident.get("id")
    if not isinstance(ident, str):
        raise AlertRejected("pagerduty: event.data.id is missing")
    priority = (incident.get("priority") or {}).get("summary") if isinstance(
        incident.get("priority"), dict) else None
    raw_sev = priority or {"high": "high", "low": "low"}.get(str(incident.get("urgency")))
    service = incident.get("service") or {}
    resolved = kind == "incident.resolved" or incident.get("status") == "resolved"
    occurred = parse_time(event.get("occurred_at"), "event.occurred_at") \
        if isinstance(event.get("occurred_at"), str) else None
    return [Alert(source="pagerduty", fingerprint=f"pagerduty:{ident}",
                  status="resolved" if resolved else "firing",
                  title=fit_title(str(incident.get("title") or kind)),
                  severity=severity(raw_sev, severities),
                  service=str(service.get("summary")) if isinstance(service, dict) and
                  service.get("summary") else None,
                  labels={"event_type": kind, "incident_id": ident,
                          "urgency": str(incident.get("urgency", "")),
                          "incident_key": str(incident.get("incident_key") or ""),
                          "agent": str((event.get("agent") or {}).get("summary") or "")
                          if isinstance(event.get("agent"), dict) else ""},
                  annotations={"html_url": str(incident.get("html_url", ""))},
                  starts_at=occurred or utcnow(), raw=event)]


def parse_cloudwatch_message(message: Any, topic: str = "",
                             severities: Mapping[str, str] | None = None) -> list[Alert]:
    """A CloudWatch alarm (the JSON string inside an SNS Notification's `Message`)."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except json.JSONDecodeError as exc:
            raise AlertRejected(f"cloudwatch: Message is not JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise AlertRejected("cloudwatch: Message is JSON nested too deeply") from exc
    if not isinstance(message, dict) or "AlarmName" not in message:
        raise AlertRejected("cloudwatch: Message is not a CloudWatch alarm (no AlarmName)")
    state = str(message.get("NewStateValue", ""))
    if state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise AlertRejected(f"cloudwatch: NewStateValue {state!r} is not a CloudWatch state")
    trigger: dict[str, Any] = message["Trigger"] if isinstance(message.get("Trigger"),
                                                                dict) else {}
    dims = {str(d.get("name")): str(d.get("value")) for d in trigger.get("Dimensions") or []
            if isinstance(d, dict)}
    labels = {"alarm": str(message["AlarmName"]), "account": str(message.get("AWSAccountId")),
              "region": str(message.get("Region")), "state": state,
              "metric": str(trigger.get("MetricName", "")),
              "namespace": str(trigger.get("Namespace", "")), **dims}
    return [Alert(source="cloudwatch",
                  fingerprint=fingerprint("cloudwatch", message.get("AlarmArn") or [
                      labels["account"], labels["region"], labels["alarm"]]),
                  status="resolved" if state == "OK" else "firing",
                  title=fit_title(str(message.get("AlarmDescription")
                                      or message["AlarmName"])),
                  severity=severity(dims.get("severity") or ("warning" if state ==
                                                             "INSUFFICIENT_DATA" else "high"),
                                    severities),
                  service=dims.get("service"), labels=labels,
                  annotations={"reason": str(message.get("NewStateReason", ""))[:4096],
                               "topic": topic},
                  starts_at=parse_time(message.get("StateChangeTime"), "StateChangeTime")
                  or utcnow(),
                  raw=message)]


def _get(item: Mapping[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _generic_gaps(item: dict[str, Any], mapping: Mapping[str, str],
                  severities: Mapping[str, str] | None) -> dict[str, str]:
    """What a generic alert left out, with the default used and the mapping to fix."""
    gaps = {}
    path = mapping.get("severity", "severity")
    raw = _get(item, path)
    if raw in (None, ""):
        gaps["severity"] = (f"nothing at {path!r}, so SEV3 was assumed; point intake.yaml "
                            "sources.generic.mapping.severity at the field that has it")
    elif not known_severity(raw, severities):
        gaps["severity"] = (f"{raw!r} at {path!r} is not a known spelling, so SEV3 was "
                            "assumed; map it in intake.yaml sources.generic.severities")
    path = mapping.get("service", "service")
    if _get(item, path) in (None, ""):
        gaps["service"] = (f"nothing at {path!r}, so the service is 'unknown'; point intake.yaml "
                           "sources.generic.mapping.service at the field that has it")
    return gaps


def parse_generic(data: Any, mapping: Mapping[str, str],
                  severities: Mapping[str, str] | None = None) -> list[Alert]:
    """Generic JSON: an object, a list, or {"alerts": [...]}, read through a field mapping
    (`title`, `severity`, `service`, `fingerprint`, `status` → dotted paths)."""
    items: list[Any] = data["alerts"] if isinstance(data, dict) and isinstance(
        data.get("alerts"), list) else data if isinstance(data, list) else [data]
    check_count(items)
    out = []
    for index, item in enumerate(items):
        where = f"alerts[{index}]"
        if not isinstance(item, dict):
            raise AlertRejected(f"{where}: expected an object")
        title = _get(item, mapping.get("title", "title"))
        if not isinstance(title, str) or not title.strip():
            raise AlertRejected(f"{where}.{mapping.get('title', 'title')}: a title is required")
        given = _get(item, mapping.get("fingerprint", "fingerprint"))
        status = str(_get(item, mapping.get("status", "status")) or "firing").lower()
        labels = as_text_map(_get(item, mapping.get("labels", "labels")), f"{where}.labels")
        service = _get(item, mapping.get("service", "service"))
        out.append(Alert(
            source="generic",
            fingerprint=f"generic:{given}"[:128] if given not in (None, "") else
            fingerprint("generic", title, service, labels),
            status="resolved" if status in ("resolved", "ok", "closed", "recovered") else
            "firing", title=fit_title(title),
            severity=severity(_get(item, mapping.get("severity", "severity")), severities),
            service=str(service) if service not in (None, "") else None, labels=labels,
            raw=item, gaps=_generic_gaps(item, mapping, severities)))
    if not out:
        raise AlertRejected("generic: no alerts in the body")
    return out

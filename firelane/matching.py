"""Which runbook answers an alert: the runbooks' `match:` blocks, the most specific first."""

from __future__ import annotations

from firelane.models import Alert, Incident, Severity
from firelane.runbook import LoadedRunbook

__all__ = ["match_runbook", "newly_matching"]


def match_runbook(runbooks: list[LoadedRunbook], alert: Alert,
                  default: str) -> LoadedRunbook | None:
    """The runbook whose `match:` fits the alert, the most specific first; else `default`."""
    fitting = []
    for loaded in runbooks:
        match = loaded.runbook.match
        if match is None:
            continue
        if any(alert.labels.get(k) != v for k, v in match.labels.items()):
            continue
        if match.severity and alert.severity not in match.severity:
            continue
        if match.services and alert.service not in match.services:
            continue
        fitting.append((len(match.labels) + bool(match.services), loaded))
    if fitting:
        return max(fitting, key=lambda pair: pair[0])[1]
    return next((r for r in runbooks if r.runbook.name == default), None)


def newly_matching(runbooks: list[LoadedRunbook], incident: Incident,
                   before: Severity) -> list[LoadedRunbook]:
    """Runbooks whose `match:` names severities and fits `incident` at its severity now but
    did not at `before` (its labels and service fitting both times): what a severity change
    starts, e.g. an upgrade to SEV1 that pages more people."""
    out = []
    for loaded in runbooks:
        match = loaded.runbook.match
        if match is None or not match.severity:
            continue
        if any(incident.labels.get(k) != v for k, v in match.labels.items()):
            continue
        if match.services and incident.service not in match.services:
            continue
        if incident.severity in match.severity and before not in match.severity:
            out.append(loaded)
    return out

"""Which runbook answers an alert: the runbooks' `match:` blocks, the most specific first."""

from __future__ import annotations

from firelane.models import Alert
from firelane.runbook import LoadedRunbook

__all__ = ["match_runbook"]


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

"""The incident lifecycle and roles."""

from __future__ import annotations

import pytest

from firelane.errors import InvalidTransition
from firelane.models import Incident, IncidentStatus, Role, Severity

S = IncidentStatus


def make() -> Incident:
    return Incident(number=3, title="t", severity=Severity.SEV2, service="web")


def test_forward_path_records_each_change() -> None:
    inc = make()
    kinds = [inc.transition(s, "alice").details["to"]
             for s in (S.ACKNOWLEDGED, S.MITIGATED, S.RESOLVED, S.CLOSED)]
    assert kinds == ["acknowledged", "mitigated", "resolved", "closed"]
    assert inc.status is S.CLOSED and not inc.is_open


def test_skipping_forward_is_allowed_but_backwards_is_not() -> None:
    inc = make()
    inc.transition(S.RESOLVED)
    inc2 = make()
    inc2.transition(S.ACKNOWLEDGED)
    with pytest.raises(InvalidTransition, match="cannot become declared"):
        inc2.transition(S.DECLARED)


def test_declared_cannot_be_closed_without_resolving() -> None:
    with pytest.raises(InvalidTransition, match="allowed from declared"):
        make().transition(S.CLOSED)


def test_reopen_only_from_resolved_and_closed_is_final() -> None:
    inc = make()
    inc.transition(S.RESOLVED)
    event = inc.transition(S.ACKNOWLEDGED, reason="errors are back")
    assert event.kind == "incident.reopened" and inc.reopened == 1
    inc.transition(S.RESOLVED)
    inc.transition(S.CLOSED)
    with pytest.raises(InvalidTransition, match="final"):
        inc.transition(S.DECLARED)


def test_mitigation_that_did_not_hold_goes_back_to_acknowledged() -> None:
    inc = make()
    inc.transition(S.MITIGATED)
    inc.transition(S.ACKNOWLEDGED)
    assert inc.status is S.ACKNOWLEDGED and inc.reopened == 0


def test_roles_and_severity_are_timeline_events() -> None:
    inc = make()
    e1 = inc.assign(Role.COMMANDER, "alice")
    e2 = inc.assign(Role.COMMANDER, "bob")
    inc.assign(Role.INVESTIGATOR, "carol")
    inc.assign(Role.INVESTIGATOR, "carol")
    e3 = inc.change_severity(Severity.SEV1)
    assert (e1.details["previous"], e2.details["previous"]) == (None, "alice")
    assert inc.commander == "bob" and inc.investigators == ["carol"]
    assert e3.summary == "Severity SEV2 → SEV1" and inc.severity is Severity.SEV1

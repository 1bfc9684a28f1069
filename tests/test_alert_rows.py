"""The intake's lean `alerts` insert stores what the model says, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text

from firelane.models import Alert, Severity, new_id, time_ordered_id
from firelane.store import Store
from firelane.store.alerts import alert_row
from firelane.store.tables import alerts


def _alert(n: int, **extra: object) -> Alert:
    return Alert.model_validate({
        "source": "alertmanager", "fingerprint": f"fp-{n}", "title": f"Disk full ☃ {n}",
        "severity": Severity.SEV2, "service": "db", "labels": {"alertname": "Disk", "n": str(n)},
        "annotations": {"summary": "it's \"full\"\n"},
        "starts_at": datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC),
        "raw": {"labels": {"a": 1}, "nested": [{"x": None}, 1.5, True], "big": 2 ** 70},
        **extra})


def test_the_row_is_the_models_dump() -> None:
    alert = _alert(1, ends_at=datetime(2026, 11, 30, 2, tzinfo=UTC), group="g", gaps={"a": "b"})
    assert alert_row(alert, "inc-1") == {**alert.model_dump(mode="python"),
                                         "incident_id": "inc-1"}


def test_stored_alerts_read_back_as_sent(store: Store) -> None:
    sent = [_alert(n, status="resolved" if n % 2 else "firing") for n in range(5)]
    accepted = store.accept_alerts(sent[:1])
    store.accept_alerts(sent[1:])
    incident_id = accepted[0].incident_id
    assert incident_id is not None
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(alerts))}
        nulls = conn.execute(text("SELECT count(*) FROM alerts WHERE ends_at IS NULL")).scalar()
    assert set(rows) == {a.id for a in sent}
    assert nulls == 5
    for alert in sent:
        row = rows[alert.id]
        assert row.labels == alert.labels and row.annotations == alert.annotations
        assert row.raw == alert.raw and row.raw["big"] == 2 ** 70
        assert (row.title, row.severity, row.status) == (alert.title, "SEV2", alert.status)
        assert row.starts_at.replace(tzinfo=UTC) == alert.starts_at
    back = store.alerts_of(incident_id)
    assert [a.model_dump() for a in back] == [
        {**sent[0].model_dump(), "incident_id": incident_id}]


def test_alert_ids_are_time_ordered_uuid7_and_row_ids_random_uuid4() -> None:
    before = time.time_ns() // 1_000_000
    ordered = [time_ordered_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ordered)) == len(ordered)
    assert all(len(i) == 32 and uuid.UUID(i).version == 7
               and uuid.UUID(i).variant == uuid.RFC_4122 for i in ordered[:100])
    assert all(before <= uuid.UUID(i).int >> 80 <= after for i in ordered)
    assert [i[:12] for i in ordered] == sorted(i[:12] for i in ordered)
    assert len({time_ordered_id()[12:] for _ in range(1000)}) == 1000
    assert _alert(0).id[:12] >= ordered[-1][:12]
    random_ids = [new_id() for _ in range(1000)]
    assert all(uuid.UUID(i).version == 4 for i in random_ids)
    assert len({i[:12] for i in random_ids}) == 1000

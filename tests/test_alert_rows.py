"""The intake's lean `alerts` insert stores what the model says, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import event, select, text

from firelane.models import Alert, Severity, new_id, time_ordered_id
from firelane.store import Store
from firelane.store.alert_rows import alert_row
from firelane.store.tables import alerts, open_fingerprints


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


def test_a_group_commit_counts_repeats_and_stores_every_alert(store: Store) -> None:
    first = store.accept_alerts([_alert(n) for n in range(3)])
    assert all(a.declared for a in first)
    with store.tx(write=False) as conn:
        before = dict(conn.execute(select(open_fingerprints.c.fingerprint,
                                          open_fingerprints.c.last_seen_at)).all())
    statements: list[str] = []
    engine = store._engine_for_lane(True)

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        repeats = [[_alert(n % 3) for n in range(k, k + 4)] for k in range(3)] + [[_alert(7)]]
        out = store.accept_batches(repeats)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [[a.deduplicated for a in b] for b in out] == [[True] * 4] * 3 + [[False]]
    with store.tx(write=False) as conn:
        counts = {fp: (n, at) for fp, n, at in conn.execute(select(
            open_fingerprints.c.fingerprint, open_fingerprints.c.count,
            open_fingerprints.c.last_seen_at))}
        stored = conn.execute(select(alerts.c.id, alerts.c.incident_id)).all()
    assert {fp: c for fp, (c, _) in counts.items()} == {"fp-0": 5, "fp-1": 5, "fp-2": 5,
                                                       "fp-7": 1}
    assert all(counts[fp][1] > seen_at for fp, seen_at in before.items())
    assert len(stored) == 3 + 13
    assert {i for i, _ in stored} >= {a.id for b in out for a in b}
    if store.dialect == "postgresql":
        assert statements.count("WITH") == 1 and statements.count("UPDATE") == 0
        assert "INSERT" in statements

"""The executor's semantics, driven without Prefect (the same code the flow wraps)."""

from __future__ import annotations

import asyncio

import pytest

from firelane.models import Severity
from firelane.store import Store
from flows.engine import RunContext, execute_step
from flows.engine.dag import run_dag
from tests.helpers import plain_runner, prepare, statuses, step_events


def run(rc: RunContext) -> bool:
    return asyncio.run(run_dag(rc, plain_runner))


def test_if_needs_outputs_and_skips(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
inputs: {n: {type: integer, default: 2}}
steps:
  - {id: a, uses: core.note, with: {message: "n={{ inputs.n }}"}}
  - {id: low_sev_only, uses: core.note, if: "incident.severity == 'SEV4'", with: {message: x}}
  - {id: after_skip, uses: core.note, needs: [low_sev_only], with: {message: never}}
  - id: b
    uses: core.note
    needs: [a]
    with: {message: "{{ steps.a.outputs.message }} and {{ steps.a.status }}"}
""")
    assert run(rc) is False
    records = sq.step_records(rc.execution.id)
    assert (records["b"].outputs or {}).get("message") == "n=2 and succeeded"
    assert statuses(rc) == {"a": "succeeded", "low_sev_only": "skipped",
                            "after_skip": "skipped", "b": "succeeded"}
    assert "condition is false" in (records["low_sev_only"].error or "")
    assert records["b"].started_at >= records["a"].finished_at  # type: ignore[operator]


def test_retries_until_success_and_timeline_shows_attempts(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: flaky, uses: core.fail, with: {attempts: 2}, retries: 3, retry_delay_seconds: 0}
""")
    assert run(rc) is False
    rec = sq.step_records(rc.execution.id)["flaky"]
    assert (rec.status.value, rec.attempts, rec.outputs) == ("succeeded", 3, {"attempt": 3})
    kinds = step_events(sq.timeline(rc.incident.id), "flaky")
    assert kinds == ["step.started", "step.retrying", "step.started", "step.retrying",
                     "step.started", "step.succeeded"]


def test_retries_exhausted_then_dependents_skipped_and_on_failure_runs(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: bad, uses: core.fail, with: {message: boom}, retries: 1, retry_delay_seconds: 0}
  - {id: next, uses: core.note, needs: [bad], with: {message: x}}
  - {id: independent, uses: core.note, with: {message: still runs}}
on_failure:
  - {id: tell, uses: core.note, with: {message: "bad said {{ steps.bad.error }}"}}
""")
    assert run(rc) is True
    records = sq.step_records(rc.execution.id)
    assert statuses(rc) == {"bad": "failed", "next": "skipped", "independent": "succeeded",
                            "tell": "succeeded"}
    assert records["bad"].attempts == 2 and records["bad"].error == "ActionError: boom"
    assert records["next"].error == "needs bad, which failed"
    assert records["tell"].outputs["message"] == "bad said ActionError: boom"  # type: ignore[index]


def test_on_error_continue_lets_dependents_see_failure(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: probe, uses: core.fail, on_error: continue}
  - {id: fallback, uses: core.note, needs: [probe], if: "steps.probe.status == 'failed'",
     with: {message: "probe failed: {{ steps.probe.error }}"}}
on_failure:
  - {id: tell, uses: core.note, with: {message: x}}
""")
    assert run(rc) is False
    assert statuses(rc) == {"probe": "failed", "fallback": "succeeded"}


def test_timeout_fails_the_step(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: slow, uses: core.wait, with: {seconds: 30}, timeout_seconds: 0.2}
""")
    assert run(rc) is True
    rec = sq.step_records(rc.execution.id)["slow"]
    assert rec.status.value == "failed" and "timed out after 0.2 s" in (rec.error or "")


def test_bad_rendered_input_fails_once_without_retry(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
inputs: {secs: {type: string, default: "soon"}}
steps:
  - {id: w, uses: core.wait, with: {seconds: "{{ inputs.secs }}"}, retries: 3}
""")
    assert run(rc) is True
    rec = sq.step_records(rc.execution.id)["w"]
    assert rec.attempts == 0 and rec.error is not None
    assert rec.error.startswith("ActionInputError: with.seconds:")


def test_alert_text_is_not_rendered_twice(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: a, uses: core.note, with: {message: "T: {{ incident.title }}"}}
""", title="boom {{ 7*7 }}")
    run(rc)
    assert sq.step_records(rc.execution.id)["a"].outputs["message"] == "T: boom {{ 7*7 }}"  # type: ignore[index]


def test_destructive_step_in_dry_run_reports_without_acting(sq: Store, effects_db: object) -> None:
    from tests.plugin_actions import effects

    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: change, uses: test.change, with: {name: rollback}, approval: {timeout_seconds: 5}}
  - {id: safe, uses: test.effect, with: {name: ticket}}
""", dry_run=True)
    assert run(rc) is False
    would_send = {"name": "rollback", "before_seconds": 0.0, "after_seconds": 0.0}
    assert sq.step_records(rc.execution.id)["change"].outputs == {
        "name": "rollback", "created": False, "dry_run": True, "would_send": would_send}
    safe = sq.step_records(rc.execution.id)["safe"].outputs or {}
    assert safe["dry_run"] is True and safe["would_send"]["name"] == "ticket"
    assert effects() == [], "a dry run calls no vendor, not even a harmless one"


def test_second_caller_reuses_recorded_outcome(sq: Store, effects_db: object) -> None:
    from tests.plugin_actions import calls

    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: page, uses: test.effect, with: {name: page, after_seconds: 0.3}}
""", severity=Severity.SEV1)
    step = rc.loaded.runbook.steps[0]

    async def both() -> list[str]:
        other = prepare.__globals__["RunContext"](**{**rc.__dict__, "owner": "someone-else",
                                                      "records": {}})
        first, second = await asyncio.gather(execute_step(rc, step), execute_step(other, step))
        return [first.status.value, second.status.value]

    assert asyncio.run(both()) == ["succeeded", "succeeded"]
    assert len(calls()) == 1


def test_timeline_is_complete(sq: Store) -> None:
    rc = prepare(sq, """version: 1
name: t
steps:
  - {id: a, uses: core.note, with: {message: one}}
  - {id: b, uses: core.fail, needs: [a], on_error: continue}
  - {id: c, uses: core.note, needs: [b], if: "false", with: {message: never}}
""")
    run(rc)
    events = sq.timeline(rc.incident.id)
    assert [e.kind for e in events][:2] == ["incident.declared", "execution.created"]
    assert step_events(events, "a") == ["step.started", "runbook.note", "step.succeeded"]
    assert step_events(events, "b") == ["step.started", "step.failed"]
    assert step_events(events, "c") == ["step.skipped"]
    assert all(e.execution_id == rc.execution.id for e in events if e.step_id)
    failed = next(e for e in events if e.kind == "step.failed")
    assert failed.details["error"] == "ActionError: failed on purpose"


def test_only_prefect_api_failures_count_as_an_outage() -> None:
    import httpx

    from flows.runs.outage import is_api_outage

    request = httpx.Request("POST", "http://prefect/api/flow_runs/")

    def status(code: int) -> httpx.HTTPStatusError:
        return httpx.HTTPStatusError("x", request=request,
                                     response=httpx.Response(code, request=request))

    try:
        try:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        except httpx.ConnectError as exc:
            raise RuntimeError("Unable to acquire concurrency slots") from exc
    except RuntimeError as wrapped:
        assert is_api_outage(wrapped)
    assert is_api_outage(status(503)) and not is_api_outage(status(404))
    assert not is_api_outage(ValueError("a runbook bug"))


def test_a_run_that_keeps_failing_on_the_api_gives_up_loudly(
        firelane_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from firelane.store import open_store
    from flows.runs import outage

    async def healthy() -> bool:
        return True

    monkeypatch.setattr(outage, "api_reachable", healthy)
    store = open_store(firelane_env)
    rc = prepare(store, "version: 1\nname: t\nsteps:\n"
                        "  - {id: a, uses: core.note, with: {message: m}}\n")
    tries: list[int] = []

    async def failing() -> dict[str, object]:
        tries.append(1)
        raise httpx.ConnectError("All connection attempts failed")

    result = asyncio.run(outage.ride_out_outages(rc, failing))
    assert result["status"] == "failed" and len(tries) == outage.MAX_OUTAGES + 1
    kinds = [e.kind for e in store.timeline(rc.incident.id)]
    assert (kinds.count("execution.interrupted"), kinds.count("execution.resuming"),
            kinds.count("execution.failed")) == (outage.MAX_OUTAGES, outage.MAX_OUTAGES, 1)
    assert store.get_execution(rc.execution.id).status == "failed"

    async def buggy() -> dict[str, object]:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="not an outage"):
        asyncio.run(outage.ride_out_outages(rc, buggy))

"""The consistency check every benchmark passes before writing its JSON: a latency counts only
from a probe's send to its own single arrival, and a run with a negative, missing, duplicated
or unmatched sample writes nothing. Nothing here is timed: every time is a given number."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import bench.common
from bench.common import InconsistentRun, check_figures, match_probes, summarize, write_results
from bench.intake_support import Arrivals
from bench.machine import environment, snapshot


def test_each_probe_is_timed_from_its_own_send_to_its_own_arrival() -> None:
    got = match_probes("page", {"r1-seq-0": 100.0, "r1-seq-1": 101.0},
                       [("r1-seq-1", 101.25), ("r1-seq-0", 100.5)])
    assert got == {"r1-seq-0": 500.0, "r1-seq-1": 250.0}


def test_a_negative_sample_aborts_the_run() -> None:
    with pytest.raises(InconsistentRun, match=r"'r1-seq-0' arrived 1500\.00 ms before it was "
                                              r"sent \(negative latency\)") as caught:
        match_probes("page", {"r1-seq-0": 100.0}, [("r1-seq-0", 98.5)])
    assert "page: not written" in str(caught.value.code)


def test_a_missing_probe_aborts_the_run() -> None:
    with pytest.raises(InconsistentRun, match=r"'r1-seq-1' was sent and never arrived"):
        match_probes("page", {"r1-seq-0": 100.0, "r1-seq-1": 101.0}, [("r1-seq-0", 100.1)])


def test_an_unmatched_arrival_aborts_the_run() -> None:
    with pytest.raises(InconsistentRun, match=r"unmatched arrival 'r1-seq-7'"):
        match_probes("page", {"r1-seq-0": 100.0}, [("r1-seq-0", 100.1), ("r1-seq-7", 100.2)])


def test_a_probe_that_arrives_twice_aborts_the_run() -> None:
    with pytest.raises(InconsistentRun, match=r"'r1-seq-0' arrived 2 times"):
        match_probes("page", {"r1-seq-0": 100.0}, [("r1-seq-0", 100.1), ("r1-seq-0", 100.3)])


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(InconsistentRun) as caught:
        match_probes("page", {"a-0": 10.0, "a-1": 11.0}, [("a-0", 9.0), ("b-0", 12.0)])
    assert len(caught.value.problems) == 3


def _arrivals(seen: list[dict[str, Any]]) -> Arrivals:
    arrivals = Arrivals(httpx.AsyncClient(), "http://sandbox.invalid")
    arrivals.seen = seen
    return arrivals


def test_a_second_storms_probes_never_match_the_first_storms_pages() -> None:
    """The bug that published -31,736 ms: both storms' probes had the same names, so the
    second storm's probes were matched to the first storm's pages."""
    arrivals = _arrivals([
        {"kind": "pagerduty.incident", "key": "[SEV1] r1-understorm-sqlite-0", "at": 50.0},
        {"kind": "pagerduty.incident", "key": "[SEV1] r1-understorm-postgresql-0", "at": 90.2},
        {"kind": "jira.issue", "key": "[SEV1] r1-understorm-postgresql-0", "at": 90.1},
        {"kind": "pagerduty.incident", "key": "[SEV1] r1-understorm-postgresql-01", "at": 95.0}])
    found = arrivals.probes("pagerduty.incident", "r1-understorm-postgresql-")
    assert found == [("r1-understorm-postgresql-0", 90.2), ("r1-understorm-postgresql-01", 95.0)]
    assert arrivals.probes("pagerduty.incident", "r1-understorm-sqlite-") == [
        ("r1-understorm-sqlite-0", 50.0)]
    with pytest.raises(InconsistentRun, match="unmatched arrival 'r1-understorm-postgresql-01'"):
        match_probes("page under storm", {"r1-understorm-postgresql-0": 90.0}, found)


def test_reused_probe_names_are_refused_rather_than_published() -> None:
    with pytest.raises(InconsistentRun, match="negative latency"):
        match_probes("page under storm", {"understorm alert 0": 90.0},
                     [("understorm alert 0", 58.264)])


def test_figures_with_a_negative_or_empty_summary_are_refused() -> None:
    good = summarize([1.0, 2.0, 3.0])
    check_figures("bench", {"storm": {"latency_ms": good}, "n": 3})
    bad = {**good, "min": -31735.77}
    with pytest.raises(InconsistentRun, match=r"storm_postgresql\.page_under_storm_ms: "
                                              r"negative sample -31735\.77"):
        check_figures("intake", {"storm": {"latency_ms": good},
                                 "storm_postgresql": {"page_under_storm_ms": bad}})
    with pytest.raises(InconsistentRun, match="x: no samples"):
        check_figures("bench", {"x": {**good, "n": 0}})


def test_an_inconsistent_run_writes_no_json(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    bad = {**summarize([5.0]), "min": -1.0}
    with pytest.raises(InconsistentRun):
        write_results("intake", {"alert_to_page_ms": bad})
    assert list(tmp_path.iterdir()) == []
    path = write_results("intake", {"alert_to_page_ms": summarize([5.0, 6.0])})
    written = json.loads(path.read_text())
    assert written["consistency"] == "checked"
    env = written["environment"]
    assert env["cpus"] and len(env["load_average_before"]) == 3
    assert len(env["load_average_after"]) == 3 and isinstance(env["busiest_processes"], list)


def test_the_environment_names_the_busiest_processes_and_marks_ours() -> None:
    before = snapshot()
    me, other = os.getpid(), 1
    ticks = {**before.ticks, me: before.ticks.get(me, 0) + 1000,
             other: before.ticks.get(other, 0) + 500}
    after = replace(before, ticks=ticks, parents={**before.parents, other: 0},
                    commands={**before.commands, other: "init", me: "pytest"})
    busiest = environment(before, after)["busiest_processes"]
    assert [(p["pid"], p["ours"]) for p in busiest[:2]] == [(me, True), (other, False)]
    assert busiest[0]["cpu_seconds"] == round(1000 / os.sysconf("SC_CLK_TCK"), 2)


def test_cpu_by_role_counts_live_processes_and_never_reads_below_zero() -> None:
    import subprocess
    import sys
    import time

    from bench.common import cpu_snapshot, cpu_used

    roles = {"spinner": "cpu-by-role-spinner", "gone": "cpu-by-role-gone"}
    gone = subprocess.Popen([sys.executable, "-c", "import sys; sum(range(10**7)); "
                             "sys.stdin.read()", "cpu-by-role-gone"], stdin=subprocess.PIPE)
    try:
        time.sleep(1.0)
        before = cpu_snapshot(roles)
        assert before[gone.pid][0] == "gone" and before[gone.pid][1] > 0
        gone.communicate(b"")
        spinner = subprocess.Popen([sys.executable, "-c", "import sys; sum(range(10**7)); "
                                    "sys.stdin.read()", "cpu-by-role-spinner"],
                                   stdin=subprocess.PIPE)
        time.sleep(1.0)
        used = cpu_used(roles, before, cpu_snapshot(roles))
        spinner.communicate(b"")
    finally:
        gone.kill()
    assert used["gone"] == 0.0 and used["spinner"] > 0 and min(used.values()) >= 0

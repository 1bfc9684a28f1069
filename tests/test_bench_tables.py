"""The benchmark figures in README.md and docs/ are what `scripts/bench_tables.py` writes from
the committed `bench/results/*.json`, and a figure from a run that fails the consistency check
is marked, never printed."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bench.common import summarize

ROOT = Path(__file__).resolve().parent.parent


def _tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("firelane_bench_tables",
                                                  ROOT / "scripts" / "bench_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TABLES = _tables()


def test_the_docs_match_the_committed_results() -> None:
    assert TABLES.stale_files() == [], \
        "benchmark figures in the docs differ from bench/results: run `make bench-tables`"
    assert TABLES.main(["--check"]) == 0


def test_every_block_in_the_docs_has_a_renderer_and_every_renderer_is_used() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in TABLES.pages())
    used = {m.group(2) for m in TABLES.BLOCK.finditer(text)}
    assert used == set(TABLES.BLOCKS)


def _results(tmp_path: Path, **docs: Any) -> Any:
    for name, doc in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    return TABLES.Results(tmp_path)


def _intake() -> dict[str, Any]:
    """The committed intake results, with a PostgreSQL storm section (from the PostgreSQL
    rerun's file when the intake run skipped that storm), for the tests to alter."""
    results = ROOT / "bench" / "results"
    doc: dict[str, Any] = json.loads((results / "intake.json").read_text())
    if "storm_postgresql" not in doc:
        doc["storm_postgresql"] = json.loads(
            (results / "intake_postgresql.json").read_text())["storm_postgresql"]
    return copy.deepcopy(doc)


def test_a_negative_figure_is_marked_invalid_not_printed(tmp_path: Path) -> None:
    doc = _intake()
    under = summarize([100.0, 200.0, 300.0])
    doc["storm_postgresql"]["page_under_storm_ms"] = {
        **under, "p50": -31735.77, "min": -50577.08}
    text = TABLES.BLOCKS["intake"](_results(tmp_path, intake=doc))
    [row] = [line for line in text.splitlines()
             if line.startswith("| page under storm, PostgreSQL")]
    assert TABLES.INVALID in row and "31,736" not in row and "-" not in row.split("|")[2]
    assert "not judged" in row


def test_a_rerun_replaces_the_invalid_figures(tmp_path: Path) -> None:
    doc = _intake()
    rerun = {"date": "2026-11-30T08:00:00+00:00", "consistency": "checked",
             "storm_postgresql": {**doc["storm_postgresql"],
                                  "page_under_storm_ms": summarize([400.0, 900.0, 1200.0])}}
    text = TABLES.BLOCKS["intake"](_results(tmp_path, intake=doc, intake_postgresql=rerun))
    [row] = [line for line in text.splitlines()
             if line.startswith("| page under storm, PostgreSQL")]
    assert "900 ms" in row and "1,200 ms" in row and "**missed**" in row
    assert "`bench/results/intake_postgresql.json`, run of 2026-11-30" in text


def test_a_missing_result_file_is_said_not_run(tmp_path: Path) -> None:
    assert "`bench/results/burst.json`: not run" in TABLES.BLOCKS["burst"](_results(tmp_path))


def test_rewrite_replaces_only_what_is_between_the_markers(tmp_path: Path) -> None:
    results = _results(tmp_path, validate={
        "date": "2026-11-23T05:47:04+00:00", "runbooks": 3, "repeat": 2,
        "validate_all_ms": summarize([10.0, 12.0]),
        "yaml_safe_load_all_ms": summarize([5.0, 6.0]),
        "yaml_csafeloader_all_ms": summarize([1.0, 2.0])})
    page = "Before 99 ms.\n<!-- bench:validate -->\nhand-written 1 ms\n<!-- /bench:validate -->\n"
    out = TABLES.rewrite(page, results)
    assert out.startswith("Before 99 ms.\n<!-- bench:validate -->\nValidating 3 generated")
    assert "hand-written" not in out and out.endswith("<!-- /bench:validate -->\n")
    assert TABLES.rewrite(out, results) == out
    with pytest.raises(KeyError, match="bench:nope"):
        TABLES.rewrite("<!-- bench:nope -->\n<!-- /bench:nope -->", results)


def _storm_run(per_second: float, p99: float) -> dict[str, Any]:
    return {"per_second": per_second, "latency_ms": summarize([5.0, 10.0, p99])}


def test_a_storm_repeated_is_judged_on_the_median_of_its_runs(tmp_path: Path) -> None:
    doc = _intake()
    doc["storm"] = {**doc["storm"], **_storm_run(2400.0, 40.0)}
    doc["storm_repeats"] = [_storm_run(r, p) for r, p in ((1500.0, 60.0), (1600.0, 55.0),
                                                          (2100.0, 45.0), (1700.0, 70.0))]

    def row() -> str:
        text = TABLES.BLOCKS["intake"](_results(tmp_path, intake=doc))
        [line] = [line for line in text.splitlines()
                  if line.startswith("| storm with responses, SQLite")]
        return str(line)

    line = row()
    assert "2,400 alerts/s committed" in line and "5 runs" in line
    assert "median 1,700 alerts/s (1,500 to 2,400)" in line
    assert "latency p99 median 55 ms (40 to 70)" in line and "**missed**" in line
    doc["storm_repeats"] = [_storm_run(r, 30.0) for r in (2100.0, 2050.0, 1900.0, 2200.0)]
    assert "**met**" in row()
    doc["storm_repeats"][0]["latency_ms"] = {**summarize([1.0]), "min": -3.0}
    line = row()
    assert "5 runs" not in line and TABLES.INVALID in line and "not judged" in line

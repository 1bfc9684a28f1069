"""Validation speed: 200 distinct runbooks through the full validator, beside plain YAML parsing.

Each generated runbook has 12 steps with templates, needs, conditions and an `on_failure` step,
and its own text (so template caches do not flatter the figure). The baselines are plain YAML
loading of the same files in the same run: `yaml.safe_load` (pure Python) and libyaml's
`CSafeLoader`, which the validator builds on. Writes `bench/results/validate.json`.
Usage: `python bench/validate.py [--runbooks N] [--repeat R]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench.common import summarize, write_results
from firelane.loader import load_runbook


def runbook_text(n: int) -> str:
    steps = [f"  - {{id: open_{n}, uses: core.note, with: {{message: \"INC {{{{ incident.number "
             f"}}}} #{n}\"}}}}"]
    for i in range(1, 11):
        needs = f"[open_{n}]" if i == 1 else f"[s{i - 1}_{n}]"
        steps.append(
            f"  - id: s{i}_{n}\n    uses: core.note\n    needs: {needs}\n"
            f"    if: \"inputs.level_{n} > {i} or incident.severity == 'SEV1'\"\n"
            f"    with: {{message: \"step {i} of {n} after {{{{ steps.open_{n}.status }}}}\"}}")
    steps.append(f"  - {{id: wait_{n}, uses: core.wait, with: {{seconds: {n % 5}}}}}")
    return (f"# yaml-language-server: $schema=./runbook.schema.json\nversion: 1\n"
            f"name: generated-{n}\ndescription: generated runbook {n}\n"
            f"inputs:\n  level_{n}: {{type: integer, default: {n % 7}, description: level}}\n"
            "steps:\n" + "\n".join(steps) + "\non_failure:\n"
            f"  - {{id: tell_{n}, uses: core.note, with: {{message: \"failed {n}\"}}}}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runbooks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="firelane-bench-validate-"))
    files = []
    for n in range(args.runbooks):
        path = folder / f"generated-{n}.yaml"
        path.write_text(runbook_text(n))
        files.append(path)
    full, parse, cparse = [], [], []
    for rep in range(args.repeat):
        if rep:
            for path in files:  # new text each round, so no cache carries over
                path.write_text(runbook_text(rep * 10_000 + int(path.stem.split("-")[1])))
        tc = time.perf_counter()
        for path in files:
            yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        t0 = time.perf_counter()
        for path in files:
            yaml.safe_load(path.read_text())
        t1 = time.perf_counter()
        for path in files:
            load_runbook(path)
        t2 = time.perf_counter()
        parse.append((t1 - t0) * 1000)
        cparse.append((t0 - tc) * 1000)
        full.append((t2 - t1) * 1000)
    figures = {"runbooks": args.runbooks, "repeat": args.repeat,
               "validate_all_ms": summarize(full), "yaml_safe_load_all_ms": summarize(parse),
               "yaml_csafeloader_all_ms": summarize(cparse)}
    print(f"{args.runbooks} runbooks x {args.repeat} rounds (ms for all {args.runbooks})")
    print(f"  full validation   p50 {figures['validate_all_ms']['p50']:>8}  "
          f"max {figures['validate_all_ms']['max']}")
    print(f"  yaml.safe_load    p50 {figures['yaml_safe_load_all_ms']['p50']:>8}  "
          f"max {figures['yaml_safe_load_all_ms']['max']}")
    print(f"  yaml CSafeLoader  p50 {figures['yaml_csafeloader_all_ms']['p50']:>8}  "
          f"max {figures['yaml_csafeloader_all_ms']['max']}")
    print(f"wrote {write_results('validate', figures)}")


if __name__ == "__main__":
    main()

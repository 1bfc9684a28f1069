"""Serve `run-runbook` as a deployment (poll 1 s): the naive path the intake is compared with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")

from flows.runs.run_runbook import run_runbook

if __name__ == "__main__":
    run_runbook.serve(name="naive", limit=20)

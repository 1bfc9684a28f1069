"""The engine: plain Python, no Prefect. `RunContext` (built once per execution by
`build_context`), `execute_step` (one step, exactly once, through the ledger), `run_dag` (a
runbook's DAG), the guardrails, Slack notices and the page alarm."""

from flows.engine.context import (
    ApprovalGate,
    RunContext,
    ServiceLock,
    build_context,
    refresh_context,
    template_context,
)
from flows.engine.dag import StepRunner, run_dag, summarize
from flows.engine.steps import execute_step, running_here, skip_step

__all__ = ["ApprovalGate", "RunContext", "ServiceLock", "StepRunner", "build_context",
           "execute_step", "refresh_context", "run_dag", "running_here", "skip_step", "summarize",
           "template_context"]

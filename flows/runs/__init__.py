"""Every Prefect `@flow`: `run_runbook` (run-runbook), `approvals` (paused-run approvals and
their Slack requests), `operator` (one deployment per runbook), `outage` (riding out a Prefect
API outage), `report` (timeline-report), `action_items` (remind-action-items), and
`deployments` (prefect.yaml). Submodules are imported where used: importing one imports
Prefect."""

__all__: list[str] = []

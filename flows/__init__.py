"""Every way a runbook starts and runs, one subpackage per job: `engine` (plain Python, no
Prefect), `runs` (the Prefect flows), `respond` (responders and the fast path), `intake` (the
HTTP service), `records` (reports) and `cli` (the `firelane` command)."""

__all__: list[str] = []

"""Every way a runbook starts and runs: the Prefect flows, the engine and the CLI."""

__all__: list[str] = []

"""Remediation actions: `shell.run`, `http.request`, `http.check`, `supervisor.*` and
`release.rollback`. All are typed and documented; the destructive ones report instead of acting
in dry runs, and the engine puts its guardrails (approval, kill switch, maintenance windows,
per-service lock, rate limit) in front of them."""

from integrations.remediation import http, release, shell, supervisor

__all__: list[str] = []

del http, release, shell, supervisor

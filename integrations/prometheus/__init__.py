"""Prometheus: a connection block, a small HTTP API v1 client and the read-only actions
`prometheus.query` and `prometheus.check` (a verification step: a PromQL condition that must
hold for a while)."""

from integrations.prometheus import actions as _actions

__all__: list[str] = []
del _actions

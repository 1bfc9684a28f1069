"""Prometheus: a connection block, a small HTTP API v1 client, the read-only actions
`prometheus.query` and `prometheus.check` (a verification step: a PromQL condition that must
hold for a while), and `prometheus.graph` (a range query drawn as an SVG chart with the
incident's key times, for the report and the war room)."""

from integrations.prometheus import actions as _actions
from integrations.prometheus import graph as _graph

__all__: list[str] = []
del _actions, _graph

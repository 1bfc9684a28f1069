"""Alertmanager: a connection block, a small API v2 client and the destructive actions
`alertmanager.silence` and `alertmanager.expire_silence` (quiet the incident's own alerts while
a remediation settles, and lift the quiet after).

Its own package rather than part of `integrations.prometheus`: it is a different server with
its own URL and credentials (one Alertmanager often serves several Prometheus servers), and
its actions change things (approvals and dry runs apply) where Prometheus' only read."""

from integrations.alertmanager import actions as _actions

__all__: list[str] = []
del _actions

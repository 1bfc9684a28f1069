"""Atlassian Statuspage: a credentials block, a paced Manage API v1 client and the actions
`statuspage.post_update` and `statuspage.set_component_status`."""

from integrations.statuspage import actions as _actions

__all__: list[str] = []
del _actions

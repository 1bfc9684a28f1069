"""Jira: a credentials block, the `jira` client with its retries off, and actions."""

from integrations.jira import actions as _actions

__all__: list[str] = []
del _actions

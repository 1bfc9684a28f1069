"""Jira: a credentials block, the `jira` client with its retries off, and actions."""

from integrations.jira import actions as _actions
from integrations.jira import priority as _priority

__all__: list[str] = []
del _actions, _priority

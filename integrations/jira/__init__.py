"""Jira: a credentials block, the `jira` client with its retries off, and actions."""

from integrations.jira import actions as _actions
from integrations.jira.block import JiraCredentials

__all__ = ["JiraCredentials"]
del _actions

"""Slack: a credentials block, a `slack_sdk` WebClient without its own retries, actions."""

from integrations.slack import actions as _actions
from integrations.slack import broadcast as _broadcast
from integrations.slack.limits import channel_name

__all__ = ["channel_name"]
del _actions, _broadcast

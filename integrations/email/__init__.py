"""E-mail through SMTP: the `SmtpServer` block, a small `smtplib` client and the action
`email.send` (one message per address, never twice after a retry)."""

from integrations.email import actions as _actions

__all__: list[str] = []
del _actions

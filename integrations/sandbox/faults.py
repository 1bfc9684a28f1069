"""Fault injection for the sandbox, per route: what a flaky vendor does on the worst day.

A rule matches requests by method and a path prefix (after the vendor prefix, e.g.
`POST /slack/api/chat.postMessage`) and applies to its next `times` matching requests:

- `status` (429 with `retry_after`, or 500/502/503): answer with that status, no side effect;
- `latency`: wait that many seconds, then behave normally (a client timeout sees a timeout);
- `drop`: start the response and break the connection (the client sees a protocol error);
- `reset`: reset the connection (TCP RST) before answering, no side effect;
- `apply_then_fail`: do the side effect, then answer 500 (the client cannot know it happened);
- `apply_then_reset`: do the side effect, then reset the connection (the answer is lost).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FaultRule", "Faults"]

Kind = Literal["status", "latency", "drop", "reset", "apply_then_fail",
               "apply_then_reset"]


@dataclass
class FaultRule:
    """One injected fault."""

    path: str
    kind: Kind = "status"
    method: str = "*"
    status: int = 503
    retry_after: int | None = None
    latency: float = 0.0
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Still armed and aimed at this request."""
        return (self.times > 0 and (self.method in ("*", method))
                and path.startswith(self.path))


@dataclass
class Faults:
    """The armed rules, checked by the vendor apps on every request."""

    rules: list[FaultRule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **spec: Any) -> FaultRule:
        """Arm a rule (keywords of `FaultRule`)."""
        rule = FaultRule(**spec)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Disarm everything."""
        with self.lock:
            self.rules.clear()

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule for this request, counted as used."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    rule.hits += 1
                    return rule
        return None

"""Refused requests as WARNING lines an operator sees: a misconfigured Grafana (a wrong token,
a signature over the wrong secret, a body over the limit) is otherwise a silent 401 in the
sender's own log.

Each line names the source, the HTTP status, the reason (which names a header, never its
value) and the peer. Lines are rate-limited per (source, status, peer): the first refusal is
logged at once, later ones at most once per `every` seconds with how many were left out, so a
sender retrying every second cannot flood the log. Every refusal is still counted in
`firelane_alerts_rejected`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_REASON", "RejectionLog"]

log = logging.getLogger("firelane.intake")

Key = tuple[str, int, str]
MAX_REASON = 300


def _printable(text: str) -> str:
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return safe if len(safe) <= MAX_REASON else safe[:MAX_REASON] + "..."


class RejectionLog:
    """Rate-limited WARNING lines for refused requests.

    Example:
        >>> rejections = RejectionLog(every=60.0)
        >>> rejections.refused("grafana", 401, "wrong bearer token", "10.0.0.7")
        True
        >>> rejections.refused("grafana", 401, "wrong bearer token", "10.0.0.7")   # in 60 s
        False
    """

    def __init__(self, every: float = 60.0, max_keys: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.max_keys, self.clock = every, max_keys, clock
        self._last: dict[Key, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def refused(self, source: str, status: int, reason: str, peer: str) -> bool:
        """Note one refusal; True when it was logged (False: left out, counted for later).
        The reason can quote the request (a label name), so control characters are escaped
        and it is cut at `MAX_REASON` characters: a request cannot forge a log line."""
        reason = _printable(reason)
        key = (source, status, peer)
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.every:
                self._last[key] = (last[0], last[1] + 1)
                return False
            if len(self._last) >= self.max_keys:
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self.every}
            suppressed = last[1] if last is not None else 0
            self._last[key] = (now, 0)
        more = (f" ({suppressed} more like it in the last {now - last[0]:.0f} s)"
                if last is not None and suppressed else "")
        log.warning("refused a request from %s: source=%s status=%d reason=%s%s", peer,
                    source, status, reason, more,
                    extra={"source": source, "status": status, "reason": reason, "peer": peer})
        return True

"""Reloading a running intake: the intake configuration, the runbooks and the service catalog,
on SIGHUP and when a file changes.

Changes are found by polling each file's modification time and size (`os.stat`, a few
microseconds per file) every `every` seconds: no file-watching library is among the runtime
dependencies (watchdog is in the lock only through MkDocs), and a poll also sees the atomic
renames Kubernetes uses to update a mounted ConfigMap. A reload runs in a thread of its own: a
`{block: ...}` secret reference calls the Prefect API, which must not run in a signal handler or
on the event loop.

A refused file is logged at ERROR (by `LiveConfig` and `Library`), counted
(`firelane_config_refused`) and, when `FIRELANE_PAGE_FAILURE_CHANNEL` names a Slack channel,
posted there with the `default` SlackCredentials block, so a bad merge is seen by people, not
only by a log search.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from firelane.library import Library
from firelane.settings import Settings
from flows.intake.live import LiveConfig

__all__ = ["Reloader", "notify_refusals", "slack_notice"]

log = logging.getLogger("firelane.intake")

SLACK_BLOCK = "default"
NOTICE_MAX = 3500
"""Slack advises message text of at most 4,000 characters
(https://api.slack.com/methods/chat.postMessage#truncating); a long validation report is cut."""


class Reloader:
    """Reloads `live` and `library` together, one reload at a time.

    Example:
        >>> reloader = Reloader(live, library)
        >>> reloader.watch(every=2.0)      # a daemon thread polling the files
        >>> reloader.reload_in_thread()    # what SIGHUP does
    """

    def __init__(self, live: LiveConfig, library: Library | None) -> None:
        self.live, self.library = live, library
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def reload(self) -> None:
        """Re-read the intake configuration, then whatever runbook or catalog changed."""
        with self._lock:
            self.live.reload()
            if self.library is not None:
                self.library.reload()

    def reload_in_thread(self) -> None:
        """`reload()` in a new daemon thread (safe from a signal handler)."""
        threading.Thread(target=self.reload, name="firelane-reload", daemon=True).start()

    def changed(self) -> bool:
        """Whether any watched file moved since its last (re)load."""
        return self.live.changed() or (self.library is not None and self.library.changed())

    def watch(self, every: float) -> threading.Thread:
        """Poll the files every `every` seconds and reload when one changed."""
        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    if self.changed():
                        self.reload()
                except Exception as exc:
                    log.error("reload check failed: %s: %s", type(exc).__name__, exc)

        thread = threading.Thread(target=loop, name="firelane-reload-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the polling thread."""
        self._stop.set()


def slack_notice(settings: Settings) -> Callable[[str], None] | None:
    """A listener posting refusal notices to `settings.page_failure_channel` (None when no
    channel is set). A notice Slack refuses is logged, never raised."""
    channel = settings.page_failure_channel
    if not channel:
        return None
    host = socket.gethostname()

    def post(text: str) -> None:
        from integrations.slack.block import SlackCredentials

        try:
            client = SlackCredentials.load(SLACK_BLOCK).get_client()  # type: ignore[union-attr]
            message = f":warning: Firelane intake on {host}: {text}"
            if len(message) > NOTICE_MAX:
                message = message[:NOTICE_MAX] + " ... (the rest is in the intake's log)"
            client.chat_postMessage(channel=channel, text=message)
        except Exception as exc:
            log.error("could not post the refusal notice to Slack %s: %s: %s", channel,
                      type(exc).__name__, exc)

    return post


def notify_refusals(reloader: Reloader, notice: Callable[[str], None]) -> None:
    """Send `notice` each refusal of the reloader's configuration and library."""
    reloader.live.on_refused(lambda reason: notice(
        f"intake configuration {reloader.live.path} refused (the previous one stays in "
        f"force): {reason}"))
    if reloader.library is not None:
        reloader.library.on_refused(lambda refusal: notice(refusal.message()))
        for refusal in reloader.library.refused:
            threading.Thread(target=notice, args=(refusal.message(),), daemon=True).start()

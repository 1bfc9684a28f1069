"""The intake's nudge to responders: one UDP datagram after it commits a pending execution.

Responders poll the store every few milliseconds anyway; the nudge only saves the wait for the
next poll on the paging path. It carries nothing (the store is the only source of work), so a
lost, duplicated or forged datagram costs at most one extra cheap read. Several responders on
one host share the port (`SO_REUSEPORT`); the kernel wakes one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

__all__ = ["Waker", "listen_for_wakeups"]

log = logging.getLogger("firelane.wake")


class Waker:
    """Sends the nudge (never blocks, never raises)."""

    def __init__(self, address: tuple[str, int] | None) -> None:
        self.address = address
        self.sock: socket.socket | None = None
        if address is not None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setblocking(False)

    def wake(self) -> None:
        """Nudge a responder."""
        if self.sock is not None and self.address is not None:
            with contextlib.suppress(OSError):
                self.sock.sendto(b"w", self.address)


class _Nudged(asyncio.DatagramProtocol):
    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.event.set()


async def listen_for_wakeups(address: tuple[str, int] | None,
                             event: asyncio.Event) -> asyncio.BaseTransport | None:
    """Set `event` on every nudge; None (and polling only) when the port cannot be bound."""
    if address is None:
        return None
    try:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Nudged(event), local_addr=address, reuse_port=True)
    except OSError as exc:
        log.warning("cannot listen for wake-ups on %s:%s (%s); polling only", *address, exc)
        return None
    return transport

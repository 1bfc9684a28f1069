"""What wakes an idle responder: PostgreSQL `NOTIFY` and a local UDP nudge.

On PostgreSQL the transaction that leaves an execution pending or ready notifies at commit and
every responder `LISTEN`s (`firelane.store.notify`). On any store, the intake sends one UDP
datagram to `FIRELANE_WAKE_ADDRESS` after it commits a pending execution, and a paging responder
sends one to `FIRELANE_FLOWS_WAKE_ADDRESS` after it leaves one ready. A nudge carries nothing
(the store is the only source of work), so a lost, duplicated or forged datagram costs at most
one extra cheap read or one fallback poll. Several responders on one host share a port
(`SO_REUSEPORT`); the kernel wakes one of them.

With a wake-up source a responder polls only as a fallback (`FIRELANE_POLL_SECONDS`); with none
it polls fast (`FIRELANE_DEAF_POLL_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

from firelane.settings import Settings
from firelane.store import WORK_CHANNEL, Store, listen_for_work

__all__ = ["WakeSources", "Waker", "listen_for_wakeups", "open_wake_sources"]

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


@dataclass
class WakeSources:
    """The wake-up sources one responder holds open (possibly none)."""

    udp: asyncio.BaseTransport | None
    udp_address: tuple[str, int] | None
    listener: asyncio.Task[None] | None

    @property
    def active(self) -> bool:
        """Is anything but the poll going to wake the responder?"""
        return self.udp is not None or self.listener is not None

    def describe(self) -> str:
        """For the start-up line: what wakes the responder."""
        sources = []
        if self.listener is not None:
            sources.append(f"LISTEN {WORK_CHANNEL}")
        if self.udp is not None and self.udp_address is not None:
            sources.append("UDP {}:{}".format(*self.udp_address))
        return ", ".join(sources) or "nothing (polling only)"

    def close(self) -> None:
        """Stop listening."""
        if self.udp is not None:
            self.udp.close()
        if self.listener is not None:
            self.listener.cancel()


async def open_wake_sources(store: Store, settings: Settings, status: str,
                            event: asyncio.Event, stop: asyncio.Event) -> WakeSources:
    """Start everything that sets `event` when an execution becomes `status` (`pending` or
    `ready`): the UDP port of that status and, on PostgreSQL unless `FIRELANE_LISTEN=false`,
    `LISTEN`."""
    address = settings.wake_address if status == "pending" else settings.flows_wake_address
    udp = await listen_for_wakeups(address, event)
    listener = None
    if store.dialect == "postgresql" and settings.listen:
        listener = asyncio.create_task(listen_for_work(store, status, event, stop))
    return WakeSources(udp, address if udp is not None else None, listener)

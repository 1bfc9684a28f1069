"""A TCP proxy that injects faults in front of a real server (an HTTP endpoint, supervisord's
XML-RPC, sshd): the fault matrix's rows for actions the vendor sandbox does not serve.

Each armed fault applies to the next connection whose first request contains `match` (HTTP) or
to the next connection (`http=False`, for SSH):

- `status`: answer that HTTP status (with `Retry-After` for 429), never reach the server;
- `timeout`: accept and read, then say nothing until the proxy stops;
- `reset`: read the request, then reset the connection (TCP RST);
- `dropped`: start an answer (status line, headers, part of the body), then close;
- `applied_then_500`: let the request reach the server, then answer 500 instead of its answer;
- `applied_then_lost`: let the request reach the server, then reset the client's connection
  instead of relaying the answer (HTTP: once the server answered; SSH: once `applied()` holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["FaultProxy", "ProxyFault", "reset_connection"]

Kind = Literal["status", "timeout", "reset", "dropped", "applied_then_500", "applied_then_lost"]


@dataclass
class ProxyFault:
    """One armed fault."""

    kind: Kind
    status: int = 503
    retry_after: int | None = None
    match: bytes = b""
    applied: Callable[[], bool] | None = None
    times: int = 1
    hits: int = 0


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class FaultProxy:
    """Listen on 127.0.0.1:`port` and forward to 127.0.0.1:`upstream`, in a thread.

    Example:
        with FaultProxy(8080) as proxy:
            proxy.arm(ProxyFault("status", status=429, retry_after=1))
            httpx.post(f"http://127.0.0.1:{proxy.port}/hook")   # → 429
    """

    def __init__(self, upstream: int, http: bool = True) -> None:
        self.upstream, self.http = upstream, http
        self.faults: list[ProxyFault] = []
        self.lock = threading.Lock()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")

    def arm(self, fault: ProxyFault) -> ProxyFault:
        """Apply `fault` to the next matching connection(s)."""
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take(self, request: bytes) -> ProxyFault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match in request:
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one connection; a stop (cancelling it) ends it quietly: asyncio's stream
        callback would log a cancelled handler as an ERROR."""
        with contextlib.suppress(asyncio.CancelledError):
            await self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader) if self.http else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        fault = self._take(request)
        if fault is None or fault.kind.startswith("applied"):
            await self._forward(reader, writer, request, fault)
        elif fault.kind == "status":
            await self._answer(writer, fault.status, fault.retry_after)
        elif fault.kind == "dropped":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                         b"Content-Length: 1000\r\n\r\n<?xml version")
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
        elif fault.kind == "timeout":
            assert self._stopped is not None
            await self._stopped.wait()
            writer.close()
        else:
            reset_connection(writer)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int,
                      retry_after: int | None = None) -> None:
        body = b"injected fault"
        extra = f"Retry-After: {retry_after}\r\n" if retry_after else ""
        writer.write(f"HTTP/1.1 {status} Injected\r\nContent-Type: text/plain\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
                     .encode() + body)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       request: bytes, fault: ProxyFault | None) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            reset_connection(writer)
            return
        up_writer.write(request)
        if fault is None:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        if self.http:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await up_writer.drain()
                await up_reader.read(1)
        else:
            relay = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            assert fault.applied is not None
            while not fault.applied() and not relay.done():
                await asyncio.sleep(0.02)
            relay.cancel()
        if fault.kind == "applied_then_500":
            await self._answer(writer, 500)
        else:
            reset_connection(writer)
        up_writer.close()

    def start(self) -> FaultProxy:
        """Listen; returns once the port is bound."""
        self._thread.start()

        async def listen() -> int:
            self._stopped = asyncio.Event()
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            return int(self._server.sockets[0].getsockname()[1])

        self.port = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        return self

    async def _shutdown(self) -> None:
        assert self._stopped is not None and self._server is not None
        self._stopped.set()
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Release held connections, finish every connection's task and stop the loop."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

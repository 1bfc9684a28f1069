"""A minimal keep-alive HTTP/1.1 client for load generation.

httpx spends about 1.5 ms of CPU per request here, which caps one load-generating process near
700 requests/s, below the intake's target. This client writes the request bytes and reads the
response by Content-Length on one kept-alive connection, nothing more; the benchmark measures
its own ceiling against `/healthz` in the same run.
"""

from __future__ import annotations

import asyncio

__all__ = ["RawClient"]


class RawClient:
    """One connection, one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request; (status, body)."""
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}",
                 f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


class _Trivial(asyncio.Protocol):
    """Answers every request on the connection with a fixed 200 (the ceiling's target)."""

    RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15:].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(self.RESPONSE)  # type: ignore[attr-defined]


async def serve_trivial(port: int) -> None:
    """Serve the trivial endpoint until killed."""
    server = await asyncio.get_running_loop().create_server(_Trivial, "127.0.0.1", port)
    print(f"trivial endpoint on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import sys

    asyncio.run(serve_trivial(int(sys.argv[1])))

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

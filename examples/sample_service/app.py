"""The sample service `make demo` and the remediation tests roll back: a tiny HTTP server whose
release directory decides whether it is healthy (`RELEASE_HEALTH` file: `ok` or `broken`)."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Handler(BaseHTTPRequestHandler):
    """`/healthz`: 200 on a good release, 500 on a bad one; the release name in the body."""

    def do_GET(self) -> None:
        health = (HERE / "RELEASE_HEALTH").read_text().strip()
        status = 200 if health == "ok" else 500
        body = f"{health} {HERE.name}\n".encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

#!/usr/bin/env python3
"""A tiny upstream: answers every request with its version name.

Body (JSON):  {"version": NAME, "x-version-route": <header received or null>,
               "path": ..., "method": ..., "headers": [[name, value], ...]}
Header:       x-served-by: NAME

For tests of what happens to requests (outcome metrics), a request may ask for its answer:
  x-upstream-status: 200..599    answer with this status (same body; none for 204 and 304)
  x-upstream-delay-ms: 0..10000  wait this long before answering
A value that is not a number in range is ignored.

  python3 upstream.py --name canary --port 8080 [--host 0.0.0.0] [--port-file F]

--port 0 picks a free port; --port-file writes the bound port there once listening
(how the demo and the tests find it). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COLOR_HEADER = "x-version-route"


def _knob(value: str | None, low: int, high: int) -> int | None:
    """A request header's number if it is one in [low, high], else None."""
    if value is None or not value.strip().isdigit():
        return None
    n = int(value.strip())
    return n if low <= n <= high else None


def make_handler(name: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's connection pool expects
        # The headers and the body go out in two writes: without TCP_NODELAY, Nagle's algorithm
        # holds the body until Envoy's delayed ACK, about 40 ms on some answers.
        disable_nagle_algorithm = True
        server_version = f"upstream-{name}"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            status = _knob(self.headers.get("x-upstream-status"), 200, 599) or 200
            delay_ms = _knob(self.headers.get("x-upstream-delay-ms"), 0, 10_000) or 0
            if delay_ms:
                time.sleep(delay_ms / 1000)
            received = self.headers.get_all(COLOR_HEADER)
            body = json.dumps({
                "version": name,
                # Several headers of that name would be joined, so a test sees duplicates.
                COLOR_HEADER: ", ".join(received) if received else None,
                "path": self.path,
                "method": self.command,
                "headers": [[k, v] for k, v in self.headers.items()],
            }).encode()
            if status in (204, 304):
                body = b""
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("x-served-by", name)
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

        def log_message(self, fmt: str, *args) -> None:  # one short line per request
            sys.stderr.write(f"[{name}] {self.address_string()} {fmt % args}\n")

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="version name to answer with (stable, canary, ...)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    args = ap.parse_args()

    # As PID 1 in a container, SIGTERM is ignored unless handled: exit promptly instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(args.name))
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)  # atomic: readers never see a partial file
    print(f"upstream {args.name} listening on {args.host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

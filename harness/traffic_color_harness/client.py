"""HTTP requests to the listener under test: exactly the headers given (duplicates and `host`
included), over http.client or as raw bytes on a socket, answers parsed the same way."""

from __future__ import annotations

import http.client
import json
import socket
import re
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    json: dict | None = field(default=None)

    def header(self, name: str) -> str | None:
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return Response(status, headers, body, parsed if isinstance(parsed, dict) else None)


def request(port: int, method: str, path: str, headers: list[list[str]] | list[tuple[str, str]],
            timeout: float = 10.0) -> Response:
    """One request on a fresh connection; headers sent exactly as given (duplicates kept)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        names = {k.lower() for k, _ in headers}
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return _response(r.status, [(k, v) for k, v in r.getheaders()], body)
    finally:
        conn.close()


def raw_request(port: int, raw: bytes, timeout: float = 10.0) -> Response:
    """Send raw bytes (must ask for `connection: close`); parse the HTTP/1.1 response.

    Returns as soon as the body its content-length announces is in: Envoy delays closing a
    connection it answered with an error, so reading to EOF would cost a second.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    return _response(status, headers, body)

"""Test helpers: an independent murmur3, JWT building, HTTP over http.client and raw sockets."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "fixtures" / "routing.json"


# ------------------------------------------------------------------------------ murmur3


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x86_32, written from the reference algorithm (not from the filter)."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed & mask
    n = len(data)
    nblocks = n // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * c1) & mask
        k = rotl(k, 15)
        k = (k * c2) & mask
        h ^= k
        h = rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[4 * nblocks:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & mask
        k = rotl(k, 15)
        k = (k * c2) & mask
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def bucket(key: str, group: str) -> int:
    """The rules' bucket(key, group): Unleash's normalizedValue, 1..100."""
    return murmur3_x86_32(f"{group}:{key}".encode("utf-8"), 0) % 100 + 1


# ---------------------------------------------------------------------------------- jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict) -> str:
    """An `alg: none` JWT (empty signature): only meaningful with jwt trust `unverified`."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    return f"{header}.{payload}."


# --------------------------------------------------------------------------------- http


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
    """Send raw bytes (must ask for `connection: close`); parse the HTTP/1.1 response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip(), v.strip()))
    return _response(status, headers, body)


def load_cases() -> dict:
    return json.loads(CASES.read_text(encoding="utf-8"))

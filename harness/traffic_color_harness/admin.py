"""Reads from an Envoy admin interface on loopback: readiness, the bound listener, counters."""

from __future__ import annotations

import http.client
import json
import re


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET `path` from the admin port: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def is_live(port: int, timeout: float = 2.0) -> bool:
    """/ready says LIVE (initialized, listeners up); False while the port does not answer."""
    try:
        status, body = get(port, "/ready", timeout)
    except OSError:
        return False
    return status == 200 and body.strip() == b"LIVE"


def listener_port(port: int) -> int | None:
    """The port the first listener bound (configs bind port 0), None when there is none yet."""
    _, body = get(port, "/listeners?format=json", timeout=5.0)
    listeners = json.loads(body).get("listener_statuses") or []
    if not listeners:
        return None
    return int(listeners[0]["local_address"]["socket_address"]["port_value"])


def stat(port: int, name: str) -> int | None:
    """The value of the counter or gauge `name`, None if Envoy has no such stat."""
    _, body = get(port, f"/stats?filter=^{re.escape(name)}$&format=json", timeout=5.0)
    for s in json.loads(body).get("stats", []):
        if s.get("name") == name:
            return int(s.get("value", 0))
    return None


def stats_text(port: int, regex: str) -> str:
    """/stats in Envoy's text form (`name: value` lines), filtered by `regex`."""
    _, body = get(port, f"/stats?filter={regex}", timeout=5.0)
    return body.decode()

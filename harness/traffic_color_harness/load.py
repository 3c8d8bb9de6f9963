"""Load on the listener under test while something changes: threads send requests to Envoy on
127.0.0.1 until stopped, and every outcome is kept, so a test can say afterwards that not one
request failed and from when on every answer came from the new config.

Why one generator for the tests that push configs under load (test_config_push.py,
test_cockpit_api.py, test_cockpit_browser.py): what they prove depends on how the client
behaves, and it must be the same client in each. A keep-alive connection stays on the filter
chain (and the filter config) it was opened on until Envoy drains it, a new connection picks up
the new one at once; so every thread is one or the other for its whole life, and each record
says which. A connection the server announces it will close (`connection: close`, as Envoy does
while draining) is not reused: sending on it again would be the client's error, not Envoy's.

Each thread either sends back to back (`pace=None`: as many requests as Envoy answers, the most
chances to catch a failure at the moment of a swap) or at a steady `pace` per second (a test
that counts shares and compares rates needs a known request rate). Requests are bounded by
`timeout`, so `stop()` returns within about that; it fails if a thread is still running then.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One answered request. `color` is the `x-version-route` the upstream saw (from the body
    envoy/upstream.py sends; None when the body is not that JSON, as in Envoy's own replies),
    `upstream` who answered (its `x-served-by` header; None when no upstream did)."""

    started: float  # time.monotonic() before the request was sent
    finished: float  # time.monotonic() once the whole body was read
    status: int
    color: str | None
    upstream: str | None
    keep_alive: bool  # sent on a connection this thread keeps open between requests


@dataclass(frozen=True)
class Failure:
    """A request that got no answer: connection refused or reset, timeout, malformed response."""

    started: float
    error: str


class Load:
    """Threads sending `GET path` with `headers` to 127.0.0.1:`port`, one per entry of
    `keep_alive` (True: requests on a connection kept open; False: a new connection each),
    back to back or `pace` requests per second per thread. Use as a context manager, or
    `start()` then `stop()`."""

    def __init__(self, port: int, *, keep_alive: Sequence[bool] = (True, False),
                 headers: dict[str, str] | None = None, path: str = "/",
                 pace: float | None = None, timeout: float = 5.0):
        if not keep_alive:
            raise ValueError("at least one thread")
        if pace is not None and pace <= 0:
            raise ValueError(f"pace must be positive, not {pace}")
        self.port = port
        self.keep_alive = tuple(keep_alive)
        self.headers = dict(headers or {})
        self.path = path
        self.pace = pace
        self.timeout = timeout
        self._outcomes: list[Outcome] = []
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Load:
        if self._threads:
            raise RuntimeError("this load was started already")
        for i, keep in enumerate(self.keep_alive):
            t = threading.Thread(target=self._run, args=(keep,), name=f"load-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def stop(self) -> None:
        """Stop every thread and wait for it; a thread still running after twice the request
        timeout is an error (the threads are daemons, so it cannot keep the interpreter up)."""
        self._stop.set()
        deadline = time.monotonic() + 2 * self.timeout + 1.0
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"load threads still running after stop: {alive}")

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def outcomes(self) -> list[Outcome]:
        """Every answer so far, in the order they were finished."""
        with self._lock:
            return list(self._outcomes)

    @property
    def failures(self) -> list[Failure]:
        with self._lock:
            return list(self._failures)

    def since(self, t: float) -> list[Outcome]:
        """The answers to requests started at or after `t` (time.monotonic())."""
        with self._lock:
            return [o for o in self._outcomes if o.started >= t]

    def _run(self, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                    conn.request("GET", self.path, headers=self.headers)
                    r = conn.getresponse()
                    body = r.read()
                    outcome = Outcome(t0, time.monotonic(), r.status, _color(body),
                                      r.getheader("x-served-by"), keep_alive)
                    with self._lock:
                        self._outcomes.append(outcome)
                    if not keep_alive or (r.getheader("connection") or "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    with self._lock:
                        self._failures.append(Failure(t0, f"{type(e).__name__}: {e}"))
                    if conn is not None:
                        conn.close()
                    conn = None
                if self.pace is not None:
                    next_at += 1.0 / self.pace
                    self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            if conn is not None:
                conn.close()


def _color(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc.get("x-version-route") if isinstance(doc, dict) else None


"""The test upstreams: envoy/upstream.py (the script docker-compose runs too), one process per
version, each on a free loopback port it reports in a file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .process import Process, poll
from .repo import UPSTREAM_SCRIPT


class Upstreams:
    """Running upstreams: `ports` maps each name to its port on 127.0.0.1."""

    def __init__(self) -> None:
        self.processes: list[Process] = []
        self.ports: dict[str, int] = {}

    def stop(self) -> None:
        for p in self.processes:
            p.stop()


def start_upstream(name: str, run_dir: Path, timeout: float = 10.0) -> tuple[Process, int]:
    """Start envoy/upstream.py answering as `name` on a free loopback port."""
    run_dir = Path(run_dir)
    port_file = run_dir / f"upstream-{name}.port"
    port_file.unlink(missing_ok=True)
    proc = Process(f"upstream {name}",
                   [sys.executable, "-u", UPSTREAM_SCRIPT, "--name", name, "--host", "127.0.0.1",
                    "--port", "0", "--port-file", port_file],
                   run_dir / f"upstream-{name}.log")
    try:
        for _ in poll(timeout, f"starting upstream {name}", proc):
            if port_file.exists():
                return proc, int(port_file.read_text().strip())
    except BaseException:
        proc.stop()
        raise
    raise AssertionError("unreachable")


def start_upstreams(names: list[str], run_dir: Path) -> Upstreams:
    """One upstream per name; all stopped again if any fails to start."""
    ups = Upstreams()
    try:
        for n in names:
            p, port = start_upstream(n, run_dir)
            ups.processes.append(p)
            ups.ports[n] = port
    except BaseException:
        ups.stop()
        raise
    return ups

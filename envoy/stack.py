"""Start and stop the local stack (upstreams + Envoy) for the demo and the e2e tests.

Every process runs in its own process group and is stopped by killing that group; every
wait is bounded; every process logs to a file so its log can be shown on failure.
Ports are never guessed: upstreams bind port 0 and report it in a file, Envoy binds
port 0 for the listener and the admin interface and we read both back
(--admin-address-path, then the admin API's /listeners).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import envoy_config

HERE = Path(__file__).resolve().parent
UPSTREAM_PY = HERE / "upstream.py"


class StackError(Exception):
    pass


class Process:
    """A child process in its own process group, output to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it if still there after `timeout`."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            if self.wait(timeout) is None:
                self._signal_group(signal.SIGKILL)
                self.wait(timeout)
        else:
            # The leader exited; make sure nothing it started lingers.
            self._signal_group(signal.SIGKILL)
        if not self._log.closed:
            self._log.close()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # our own group: start_new_session=True
        except ProcessLookupError:
            pass

    def log(self, tail_bytes: int | None = None) -> str:
        try:
            self._log.flush()
        except ValueError:
            pass
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        if tail_bytes is not None and len(data) > tail_bytes:
            data = b"...\n" + data[-tail_bytes:]
        return data.decode("utf-8", "replace")


def _deadline_loop(timeout: float, what: str, proc: Process, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        yield
        if not proc.alive():
            raise StackError(f"{what}: {proc.name} exited with code {proc.popen.returncode}\n"
                             f"--- {proc.name} log ---\n{proc.log(8000)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what}: timed out after {timeout:.0f}s\n"
                             f"--- {proc.name} log ---\n{proc.log(8000)}")
        time.sleep(step)


# ---------------------------------------------------------------------------- upstreams


def start_upstream(name: str, run_dir: Path, timeout: float = 10.0) -> tuple[Process, int]:
    """Start envoy/upstream.py answering as `name` on a free loopback port."""
    run_dir = Path(run_dir)
    port_file = run_dir / f"upstream-{name}.port"
    port_file.unlink(missing_ok=True)
    proc = Process(f"upstream {name}",
                   [sys.executable, "-u", UPSTREAM_PY, "--name", name, "--host", "127.0.0.1",
                    "--port", "0", "--port-file", port_file],
                   run_dir / f"upstream-{name}.log")
    try:
        for _ in _deadline_loop(timeout, f"starting upstream {name}", proc):
            if port_file.exists():
                return proc, int(port_file.read_text().strip())
    except BaseException:
        proc.stop()
        raise
    raise AssertionError("unreachable")


def start_upstreams(names: list[str], run_dir: Path) -> tuple[list[Process], dict[str, int]]:
    procs, ports = [], {}
    try:
        for n in names:
            p, port = start_upstream(n, run_dir)
            procs.append(p)
            ports[n] = port
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return procs, ports


# -------------------------------------------------------------------------------- envoy


def admin_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET from an Envoy admin port on loopback: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Envoy:
    def __init__(self, proc: Process, config_path: Path, admin_port: int, listen_port: int):
        self.proc = proc
        self.config_path = config_path
        self.admin_port = admin_port
        self.port = listen_port

    def log(self, tail_bytes: int | None = None) -> str:
        return self.proc.log(tail_bytes)

    def stop(self) -> None:
        self.proc.stop()

    def admin(self, path: str) -> tuple[int, bytes]:
        return admin_get(self.admin_port, path)


def envoy_argv(config_path: Path, envoy_bin: str | None = None) -> list[str]:
    return [envoy_bin or envoy_config.find_envoy(), "-c", str(config_path),
            "--use-dynamic-base-id", "--concurrency", "2",
            # warnings and errors, plus what the filter logs at info and above
            "--log-level", "warning", "--component-log-level", "wasm:info"]


def start_envoy(cfg: dict[str, Any], run_dir: Path, name: str = "envoy",
                timeout: float = 30.0, envoy_bin: str | None = None) -> Envoy:
    """Run Envoy on a rendered config; return once /ready says LIVE and the listener is up."""
    run_dir = Path(run_dir)
    config_path = envoy_config.write(cfg, run_dir / f"{name}.json")
    admin_file = run_dir / f"{name}.admin-address"
    admin_file.unlink(missing_ok=True)
    proc = Process(name, envoy_argv(config_path, envoy_bin) + ["--admin-address-path", admin_file],
                   run_dir / f"{name}.log")
    try:
        admin_port = None
        for _ in _deadline_loop(timeout, f"starting {name}", proc):
            if admin_port is None:
                text = admin_file.read_text().strip() if admin_file.exists() else ""
                if text:
                    admin_port = int(text.rsplit(":", 1)[1])
                continue
            try:
                status, body = admin_get(admin_port, "/ready")
            except OSError:
                continue
            if status == 200 and body.strip() == b"LIVE":
                break
        status, body = admin_get(admin_port, "/listeners?format=json")
        listeners = json.loads(body)["listener_statuses"]
        listen_port = int(listeners[0]["local_address"]["socket_address"]["port_value"])
        return Envoy(proc, config_path, admin_port, listen_port)
    except BaseException:
        proc.stop()
        raise


def run_envoy_to_exit(cfg: dict[str, Any] | None, run_dir: Path, name: str, timeout: float = 30.0,
                      envoy_bin: str | None = None, config_path: Path | None = None,
                      extra_args: tuple[str, ...] = ()) -> tuple[int | None, str]:
    """Run Envoy expecting it to exit by itself (bad config, --mode validate).

    Returns (exit code, log); the exit code is None if it was still running after
    `timeout` (it is then killed).
    """
    run_dir = Path(run_dir)
    if config_path is None:
        config_path = envoy_config.write(cfg, run_dir / f"{name}.json")
    proc = Process(name, envoy_argv(config_path, envoy_bin) + list(extra_args), run_dir / f"{name}.log")
    try:
        rc = proc.wait(timeout)
    finally:
        proc.stop()
    return rc, proc.log()

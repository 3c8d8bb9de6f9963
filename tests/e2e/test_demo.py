"""`make demo`'s tour (DEMO_EXIT=1): every request reaches the expected version, the cockpit
starts on the demo's Envoy, and the demo exits 0 only then."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from traffic_color_harness.repo import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_tour_passes(wasm, cli, tmp_path):
    env = dict(os.environ, DEMO_EXIT="1", DEMO_PORT=str(free_port()), COCKPIT_PORT=str(free_port()))
    p = subprocess.Popen([sys.executable, "-m", "traffic_color_harness.demo", "--wasm", str(wasm),
                          "--run-dir", str(tmp_path), "--cli", str(cli)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                         start_new_session=True, cwd=REPO)
    try:
        out, _ = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)  # the demo stops its own children on SIGTERM
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        raise AssertionError(f"demo did not finish within 90 s:\n{out}")
    logs = "\n".join(f"--- {f.name} ---\n{f.read_text(errors='replace')[-4000:]}"
                     for f in sorted(tmp_path.glob("*.log")))
    assert p.returncode == 0, f"demo exited {p.returncode}:\n{out}\n{logs}"
    assert "All requests reached the expected version." in out, out
    assert out.count("[ok]") == 8, out
    # The cockpit started on the demo's Envoy: its URL printed, its page served, the config it
    # shows the one in force (the demo checks both before exiting 0).
    assert f"The release cockpit: http://127.0.0.1:{env['COCKPIT_PORT']}/" in out, out
    assert "The cockpit serves its page and shows the config in force." in out, out

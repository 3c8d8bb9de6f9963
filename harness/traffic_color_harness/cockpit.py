"""envoy/envoy-cockpit.yaml on loopback: Envoy whose traffic-color filter config arrives by ECDS
from a file (`path_config_source` with a watched directory), plus the two upstreams, so
`traffic-color cockpit --envoy-admin ... --ecds FILE` can push to it.

The committed resource (envoy/ecds/traffic-color.json) names the container's .wasm path; the
local copy written here names the built module instead. A push replaces the file the way
Envoy's docs say: a new file in the same directory, renamed over the watched path.

  python -m traffic_color_harness.cockpit --wasm target/traffic_color.wasm   # prints the ports
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import envoy_config
from .lds import free_port
from .process import Process, poll
from .envoy import Envoy, start_envoy
from .repo import ENVOY_DIR
from .upstream import Upstreams, start_upstreams

COCKPIT_YAML = ENVOY_DIR / "envoy-cockpit.yaml"
ECDS_RESOURCE = ENVOY_DIR / "ecds" / "traffic-color.json"
# The http filter in envoy-cockpit.yaml whose config comes by ECDS (also the resource name).
FILTER_NAME = "traffic_color"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def ecds_filter(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `config_discovery` http filter entry of a loaded envoy-cockpit.yaml."""
    found = [f for f in envoy_config.http_filters(cfg) if f.get("name") == FILTER_NAME]
    if len(found) != 1 or "config_discovery" not in found[0]:
        raise envoy_config.ConfigError(f"expected one http filter {FILTER_NAME} with config_discovery")
    return found[0]


def resource(wasm: Path | str, config: dict[str, Any] | None = None, version: int = 1) -> dict[str, Any]:
    """The ECDS resource file (a DiscoveryResponse) from the committed one, with the local .wasm
    path and, if given, this traffic-color config instead of the committed one."""
    doc = json.loads(ECDS_RESOURCE.read_text(encoding="utf-8"))
    doc["version_info"] = str(version)
    wasm_cfg = doc["resources"][0]["typed_config"]["config"]
    wasm_cfg["vm_config"]["code"]["local"]["filename"] = str(Path(wasm).resolve())
    if config is not None:
        wasm_cfg["configuration"]["value"] = json.dumps(config)
    return doc


def filter_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The traffic-color config object inside a resource file."""
    return json.loads(doc["resources"][0]["typed_config"]["config"]["configuration"]["value"])


def write_resource(path: Path, doc: dict[str, Any]) -> None:
    """A new file beside `path`, renamed over it: the move the directory watch reports."""
    fd, tmp = tempfile.mkstemp(prefix=".ecds-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)


def render(*, upstream_ports: dict[str, int], ecds_path: Path, listen_port: int = 0,
           admin_port: int = 0) -> dict[str, Any]:
    """envoy-cockpit.yaml for loopback: free ports, upstreams on 127.0.0.1, the ECDS file at
    `ecds_path` (watching its directory)."""
    base = envoy_config.load(COCKPIT_YAML)
    # with_filter=False: render_local only knows the inline Wasm filter, which this file lacks;
    # the ECDS entry (another name) is kept and pointed at the local file here.
    cfg = envoy_config.render_local(wasm=None, upstream_ports=upstream_ports, listen_port=listen_port,
                                    admin_port=admin_port, with_filter=False, base=base)
    src = ecds_filter(cfg)["config_discovery"]["config_source"]["path_config_source"]
    src["path"] = str(ecds_path.resolve())
    src["watched_directory"] = {"path": str(ecds_path.resolve().parent)}
    return cfg


class CockpitEnvoy:
    """Envoy on envoy-cockpit.yaml and its ECDS file `<run_dir>/ecds/traffic-color.json`."""

    def __init__(self, run_dir: Path, wasm: Path, upstream_ports: dict[str, int],
                 config: dict[str, Any] | None = None, name: str = "cockpit-envoy",
                 concurrency: int = 2, listen_port: int = 0):
        self.run_dir = Path(run_dir)
        self.ecds_dir = self.run_dir / f"{name}-ecds"
        self.ecds_dir.mkdir(parents=True, exist_ok=True)
        self.ecds_path = self.ecds_dir / "traffic-color.json"
        self.wasm = Path(wasm)
        write_resource(self.ecds_path, resource(wasm, config))
        # A fixed admin port, so a restarted Envoy is found where the cockpit looks.
        self.cfg = render(upstream_ports=upstream_ports, ecds_path=self.ecds_path,
                          admin_port=free_port(), listen_port=listen_port)
        self.name, self.concurrency = name, concurrency
        self.envoy: Envoy = start_envoy(self.cfg, self.run_dir, name, concurrency=concurrency)

    def restart(self) -> None:
        """Start Envoy again (after stop()) on the same config, admin port and ECDS file."""
        self.envoy.stop()
        self.cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = self.port
        self.envoy = start_envoy(self.cfg, self.run_dir, self.name, concurrency=self.concurrency)

    @property
    def port(self) -> int:
        return self.envoy.port

    @property
    def admin_port(self) -> int:
        return self.envoy.admin_port

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.envoy.admin_port}"

    def config(self) -> dict[str, Any]:
        """The traffic-color config in the resource file now."""
        return filter_config(json.loads(self.ecds_path.read_text(encoding="utf-8")))

    def ecds_stats(self) -> dict[str, int]:
        """extension_config_discovery.* counters (config_reload, config_fail, ...)."""
        _, body = self.envoy.admin("/stats?filter=^extension_config_discovery\\.")
        out = {}
        for ln in body.decode().splitlines():
            k, _, v = ln.partition(": ")
            if v.strip().isdigit():
                out[k.rsplit(".", 1)[-1]] = int(v)
        return out

    def stop(self) -> None:
        self.envoy.stop()


class CockpitServer:
    """`traffic-color cockpit` as a child process on a free loopback port, and its API."""

    def __init__(self, cli: Path | str, run_dir: Path, args: list[str], *, name: str = "cockpit",
                 env: dict[str, str] | None = None, timeout: float = 15.0,
                 port: int | None = None):
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        argv = [cli, "cockpit", "--listen", self.host, *args]
        self.proc = Process(name, argv, Path(run_dir) / f"{name}-{self.port}.log",
                            env={**os.environ, **(env or {})})
        for _ in poll(timeout, f"starting {name}", self.proc, step=0.1):
            try:
                if self.request("GET", "/api/state")[0] == 200:
                    break
            except OSError:
                pass

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, Any]:
        """(status, parsed JSON or raw bytes). A body is sent as JSON with its content type
        unless `headers` says otherwise."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {} if body is None else {"Content-Type": "application/json"}
            hdrs.update(headers or {})
            data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            conn.close()

    def post(self, path: str, body: Any = None, **kw) -> tuple[int, Any]:
        return self.request("POST", path, {} if body is None else body, **kw)

    def state(self) -> dict[str, Any]:
        status, body = self.request("GET", "/api/state")
        assert status == 200, body
        return body

    def events(self, timeout: float = 30.0):
        """Yields (event, data) from /api/events until `timeout` seconds have passed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/api/events")
            r = conn.getresponse()
            assert r.status == 200 and r.getheader("content-type") == "text/event-stream"
            deadline = time.monotonic() + timeout
            event, data = None, []
            while time.monotonic() < deadline:
                line = r.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and event is not None:
                    yield event, json.loads("\n".join(data))
                    event, data = None, []
        finally:
            conn.close()

    def wait_stats(self, ready, timeout: float = 20.0) -> dict[str, Any]:
        """The first `stats` event for which `ready(stats)` holds; fails after `timeout`."""
        last = None
        for event, data in self.events(timeout):
            if event == "stats":
                last = data
                if ready(data):
                    return data
        raise AssertionError(f"no matching stats event within {timeout}s; last: {last}\n{self.log(3000)}")

    def log(self, tail_bytes: int | None = None) -> str:
        return self.proc.log(tail_bytes)

    def stop(self) -> None:
        self.proc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", required=True, type=Path)
    ap.add_argument("--run-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="traffic-color-cockpit-"))
    # A background job ignores SIGINT: stop cleanly on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ups: Upstreams = start_upstreams(sorted(envoy_config.clusters(envoy_config.load(COCKPIT_YAML))), run_dir)
    env = None
    try:
        env = CockpitEnvoy(run_dir, args.wasm, ups.ports)
        print(f"listener http://127.0.0.1:{env.port}\nadmin    {env.admin_url}\necds     {env.ecds_path}",
              flush=True)
        while env.envoy.proc.alive():
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if env is not None:
            env.stop()
        ups.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

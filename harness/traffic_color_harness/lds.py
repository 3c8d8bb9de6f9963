"""An Envoy whose only listener comes from a file (LDS over `path_config_source` with a watched
directory), so a test can push new filter configs to a running proxy the way a control plane
does: the listener file is replaced by writing a new file next to it and renaming it over the
watched path (an atomic move, which the directory watch sees), as Envoy's docs say.
"""

from __future__ import annotations

import json
import os
import socket
import time

from . import envoy_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LdsEnvoy:
    """Envoy whose only listener comes from `<dir>/lds.json`, replaced by `push()`."""

    def __init__(self, envoys, name: str, first_config: dict):
        self.dir = envoys.run_dir / f"{name}-lds"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "lds.json"
        self.version = 0
        self.port = free_port()
        cfg = envoys.render(config=first_config, listen_port=self.port)
        self.listener = cfg["static_resources"].pop("listeners")[0]
        cfg["node"] = {"id": name, "cluster": "traffic-color-test"}  # required with LDS
        cfg["dynamic_resources"] = {"lds_config": {
            "resource_api_version": "V3",
            "path_config_source": {"path": str(self.path), "watched_directory": {"path": str(self.dir)}},
        }}
        self.push(first_config)
        # A short drain time, so keep-alive connections move to a new filter chain within
        # seconds (Envoy's default is 600 s).
        self.envoy = envoys.start_rendered(cfg, name, extra_args=("--drain-time-s", "2"))

    def push(self, config: dict | None = None, raw: str | None = None) -> float:
        """Replace the listener with one whose filter config is `config` (or the exact string
        `raw`); returns the time.monotonic() of the move."""
        listener = json.loads(json.dumps(self.listener))
        wasm = next(f for ch in listener["filter_chains"] for f in ch["filters"]
                    if f["name"] == envoy_config.HCM)["typed_config"]["http_filters"][0]
        assert wasm["name"] == envoy_config.WASM_FILTER
        wasm["typed_config"]["config"]["configuration"]["value"] = (
            raw if raw is not None else json.dumps(config))
        self.version += 1
        doc = {"version_info": str(self.version), "resources": [
            {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **listener}]}
        tmp = self.dir / f".lds-{self.version}.json"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)
        return time.monotonic()

    def stats(self) -> dict[str, int]:
        status, body = self.envoy.admin("/stats?filter=^listener_manager\\.lds\\.")
        assert status == 200
        out = {}
        for ln in body.decode().splitlines():
            k, _, v = ln.partition(": ")
            if v.strip().isdigit():
                out[k] = int(v)
        return out

    def wait_stat(self, name: str, above: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.stats().get(name, 0)
            if v > above:
                return v
            time.sleep(0.05)
        raise AssertionError(f"{name} did not go above {above} within {timeout}s: {self.stats()}\n"
                             f"{self.envoy.log(4000)}")

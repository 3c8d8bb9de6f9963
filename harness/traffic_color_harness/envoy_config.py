"""Load envoy/envoy.yaml and derive the local variants the demo, the tests and the soak run.

envoy.yaml is the single source of truth. The local variants change only what must change
to run on one machine without Docker:

* listener and admin bind 127.0.0.1 (port 0 = the kernel picks a free port, read back from
  the admin API), instead of 0.0.0.0:10000 / 0.0.0.0:9901;
* each upstream cluster points at 127.0.0.1:<port> instead of the compose host name;
* the Wasm filter loads the local .wasm instead of /etc/envoy/traffic_color.wasm;
* optionally, the filter configuration is replaced (tests) or the filter removed (baseline).

Everything else -- routes, filter order, the filter configuration -- is taken as is.
Rendered configs are JSON, which Envoy reads (a `.json` path selects its JSON parser).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .repo import ENVOY_YAML

WASM_FILTER = "envoy.filters.http.wasm"
HCM = "envoy.filters.network.http_connection_manager"
CONTAINER_WASM = "/etc/envoy/traffic_color.wasm"


class ConfigError(Exception):
    """envoy.yaml does not have the shape this module expects."""


def load(path: Path | str = ENVOY_YAML) -> dict[str, Any]:
    """Parse envoy.yaml into plain dicts/lists."""
    text = Path(path).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


# ---------------------------------------------------------------------------- navigation


def hcm(cfg: dict[str, Any]) -> dict[str, Any]:
    """The typed_config of the one listener's HTTP connection manager (edit it in place)."""
    listeners = cfg.get("static_resources", {}).get("listeners", [])
    if len(listeners) != 1:
        raise ConfigError(f"expected exactly one listener, found {len(listeners)}")
    for chain in listeners[0].get("filter_chains", []):
        for f in chain.get("filters", []):
            if f.get("name") == HCM:
                return f["typed_config"]
    raise ConfigError(f"no {HCM} in the listener")


def listener(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["static_resources"]["listeners"][0]


def wasm_filter(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `envoy.filters.http.wasm` entry of http_filters."""
    found = [f for f in hcm(cfg).get("http_filters", []) if f.get("name") == WASM_FILTER]
    if len(found) != 1:
        raise ConfigError(f"expected exactly one {WASM_FILTER} http filter, found {len(found)}")
    return found[0]


def filter_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The traffic-color configuration object (parsed from its StringValue JSON)."""
    value = wasm_filter(cfg)["typed_config"]["config"]["configuration"]["value"]
    return json.loads(value)


def rules(cfg: dict[str, Any]) -> str:
    return filter_config(cfg)["rules"]


def http_filters(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The HTTP connection manager's http_filters list (edit it in place)."""
    return hcm(cfg)["http_filters"]


def routes(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    vhosts = hcm(cfg)["route_config"]["virtual_hosts"]
    if len(vhosts) != 1:
        raise ConfigError(f"expected exactly one virtual host, found {len(vhosts)}")
    return vhosts[0]["routes"]


def cluster_for(cfg: dict[str, Any], color: str | None, header: str = "x-version-route") -> str:
    """The cluster the routes in `cfg` choose for a request whose color header is `color`.

    Supports exactly what envoy.yaml uses: prefix "/" plus optional exact header matches.
    """
    for route in routes(cfg):
        match = route["match"]
        if match.get("prefix") != "/" or set(match) - {"prefix", "headers"}:
            raise ConfigError(f"unsupported route match for cluster_for(): {match}")
        ok = True
        for hm in match.get("headers", []):
            exact = hm.get("string_match", {}).get("exact")
            if hm.get("name", "").lower() != header or exact is None or set(hm) != {"name", "string_match"}:
                raise ConfigError(f"unsupported header match for cluster_for(): {hm}")
            ok = ok and color == exact
        if ok:
            return route["route"]["cluster"]
    raise ConfigError(f"no route matches color {color!r}")


def clusters(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in cfg["static_resources"]["clusters"]}


def upstream_hosts(cfg: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """cluster name -> (host, port) of its single endpoint (as written in envoy.yaml)."""
    out = {}
    for name, c in clusters(cfg).items():
        eps = [lb["endpoint"]["address"]["socket_address"]
               for e in c["load_assignment"]["endpoints"] for lb in e["lb_endpoints"]]
        if len(eps) != 1:
            raise ConfigError(f"cluster {name}: expected one endpoint, found {len(eps)}")
        out[name] = (eps[0]["address"], int(eps[0]["port_value"]))
    return out


# ----------------------------------------------------------------------------- rendering


def render_local(
    *,
    wasm: Path | str | None,
    upstream_ports: dict[str, int],
    listen_port: int = 0,
    admin_port: int = 0,
    config: dict[str, Any] | None = None,
    raw_config: str | None = None,
    with_filter: bool = True,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A loopback variant of envoy.yaml.

    wasm:           local path of the filter (required when with_filter).
    upstream_ports: cluster name -> port on 127.0.0.1; must name every cluster.
    config:         replaces the filter configuration object (serialized as JSON);
    raw_config:     replaces it with this exact string (for invalid-JSON tests).
    with_filter:    False removes the Wasm filter (the no-filter baseline).
    """
    cfg = copy.deepcopy(base if base is not None else load())

    lst = listener(cfg)
    lst["address"] = {"socket_address": {"address": "127.0.0.1", "port_value": int(listen_port)}}
    cfg["admin"]["address"] = {"socket_address": {"address": "127.0.0.1", "port_value": int(admin_port)}}

    cl = clusters(cfg)
    if set(upstream_ports) != set(cl):
        raise ConfigError(f"upstream ports given for {sorted(upstream_ports)}, clusters are {sorted(cl)}")
    for name, c in cl.items():
        for e in c["load_assignment"]["endpoints"]:
            for lb in e["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"] = {
                    "address": "127.0.0.1", "port_value": int(upstream_ports[name])}

    manager = hcm(cfg)
    if with_filter:
        if wasm is None:
            raise ValueError("wasm path required when with_filter=True")
        wf = wasm_filter(cfg)["typed_config"]["config"]
        wf["vm_config"]["code"]["local"]["filename"] = str(Path(wasm).resolve())
        if raw_config is not None:
            wf["configuration"]["value"] = raw_config
        elif config is not None:
            wf["configuration"]["value"] = json.dumps(config)
    else:
        manager["http_filters"] = [f for f in manager["http_filters"] if f.get("name") != WASM_FILTER]
    return cfg


def with_filters_before_wasm(base: dict[str, Any], *new: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` (loaded envoy.yaml) with the http filters `new` right before the Wasm
    filter, so, e.g., jwt_authn has verified the token and stored its payload in the dynamic
    metadata when traffic-color evaluates its rules."""
    cfg = copy.deepcopy(base)
    filters = http_filters(cfg)
    at = [i for i, f in enumerate(filters) if f.get("name") == WASM_FILTER]
    if len(at) != 1:
        raise ConfigError(f"expected one {WASM_FILTER}, found {len(at)}")
    filters[at[0]:at[0]] = list(new)
    return cfg


def set_metadata_filter(namespace: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An `envoy.filters.http.set_metadata` http filter that writes `fields` into
    `filter_metadata[namespace]` on every request (a stand-in for another authn filter)."""
    return {"name": "envoy.filters.http.set_metadata", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
        "metadata": [{"metadata_namespace": namespace, "value": fields}]}}


def write(cfg: dict[str, Any], path: Path | str) -> Path:
    """Write a rendered config as JSON (give it a .json name so Envoy parses JSON)."""
    path = Path(path)
    if path.suffix != ".json":
        raise ValueError("rendered configs are JSON: use a .json file name")
    path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return path


# -------------------------------------------------------------------- the readable copy


def documented_rules(path: Path | str = ENVOY_YAML) -> str:
    """The readable copy of the rules in envoy.yaml's comments (lines `#   | ...`)."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*#   \| ?(.*)$", line)
        if m:
            lines.append(m.group(1))
    return "\n".join(lines) + "\n" if lines else ""


def rule_sources(program: str) -> list[str]:
    """The source line of each rule, in order (index 0 = rule 1); the default rule last.

    Assumes one rule per line (true for envoy.yaml): a rule starts with `match` or `default`.
    """
    return [ln.strip() for ln in program.splitlines() if re.match(r"^\s*(match|default)\b", ln)]


def rule_source(program: str, debug_value: str | None) -> str | None:
    """The source line of the rule a debug header value (`rule 3`, `default`, `none`) names."""
    srcs = rule_sources(program)
    if debug_value is None or debug_value == "none":
        return None
    if debug_value == "default":
        return next((s for s in srcs if s.startswith("default")), None)
    index = debug_value.removeprefix("rule ")
    if index.isdigit():
        matches = [s for s in srcs if s.startswith("match")]
        i = int(index)
        return matches[i - 1] if 1 <= i <= len(matches) else None
    return None

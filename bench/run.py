#!/usr/bin/env python3
"""The benchmark behind BENCHMARKS.md (`make bench`): the real Envoy, one core, four variants.

  A  no filter                       (Envoy's own cost: HTTP/1 parsing, routing, direct_response)
  B  Envoy Lua filter                (bench/rules.lua: the 20 rules of bench/rules.tc by hand)
  C  traffic-color, 20 rules         (bench/rules.tc, jwt.trust = unverified)
  D  traffic-color, 1 rule + default (the floor of a Wasm filter: same host calls as C)
  E  traffic-color, 1 rule + default on user-agent, a header every request carries
  C raw: C with cargo's module before `make wasm` runs it through `wasm-opt -O3`

Every variant is its own Envoy (`--concurrency 1`, pinned to CPU 0 with taskset) answering
with `direct_response`, so no upstream hides the filter's cost; the route echoes the color the
filter set (`x-color: %REQ(x-version-route)%`). The load generators run pinned to CPU 1:

  * saturation: wrk, 1 thread, a fixed number of connections, cycling through bench/mix.json;
    Envoy CPU time (utime+stime of the whole process, /proc/<pid>/stat) over the requests it
    served (its own `downstream_rq_total` counter) gives CPU µs per request;
  * fixed rate: oha, one process per request of the mix, each holding rate/len(mix) with
    `--latency-correction` (so a stall is not hidden by the generator waiting), every request's
    latency collected from oha's CSV output and merged: p50/p99 of the whole mix.

Variants run in alternation, A B C D E [C raw] A B C D E ..., for BENCH_ROUNDS rounds; the
tables report the median over rounds (and the spread). Before measuring, every request of the
mix is sent once to each Envoy and the colors are checked: B and C must agree with each other
and with the `expect` of mix.json, else the run fails and writes nothing.

Environment (all optional):
  BENCH_QUICK=1        short runs (3 rounds of 3 s), for trying the harness out
  BENCH_ROUNDS         rounds (default 3; at least 3 is what BENCHMARKS.md should show)
  BENCH_DURATION       seconds of each measured wrk run (default 8; quick 3)
  BENCH_WARMUP         seconds of wrk before each measured run (default 2; quick 1)
  BENCH_RATE           the fixed rate, requests/s, for latency (default 5000)
  BENCH_RATE_DURATION  seconds of each fixed-rate run (default 8; quick 3)
  BENCH_CONNECTIONS    wrk connections (default 64)
  BENCH_OUT            where to write the results (default BENCHMARKS.md; `-` = stdout only)
  ENVOY_BIN, WRK, OHA, WASM_OPT   the binaries (defaults: the venv's Envoy, PATH, ~/.cargo/bin)
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "envoy"))

import envoy_config  # noqa: E402  (envoy/: find_envoy)
from stack import Process, StackError, admin_get  # noqa: E402  (envoy/: child processes we own)

RULES_TC = BENCH / "rules.tc"
RULES_LUA = BENCH / "rules.lua"
MIX_JSON = BENCH / "mix.json"
ONE_RULE = 'match { header["x-canary"] == "true" } -> "canary"\ndefault -> "stable"\n'
# One rule on a header every request of the mix carries: Envoy then hands a value to the module
# on every request (a call into the VM to allocate it), as it must for any rule set that reads
# request data; D's header is absent from 24 of the 25 requests, so D almost never pays that.
ONE_RULE_PRESENT = 'match { header["user-agent"] starts_with "ShopApp/" } -> "canary"\ndefault -> "stable"\n'
COLOR = "x-version-route"
ECHO = "x-color"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
WASM_OPT_FLAGS = ["--enable-bulk-memory", "--enable-bulk-memory-opt", "--enable-sign-ext",
                  "--enable-nontrapping-float-to-int", "--enable-mutable-globals"]


def env_num(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------ the mix


def fake_jwt(claims: dict[str, Any]) -> str:
    """An RS256-shaped compact JWS with a fake 256-byte signature (nobody verifies it here),
    issued a minute ago and valid for a day (both filters ignore expired tokens)."""
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    claims = {**claims, "iat": now - 60, "exp": now + 86400}
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench-2026-11"}
    sig = bytes((i * 73 + 11) % 256 for i in range(256))
    return ".".join([b64(json.dumps(header, separators=(",", ":")).encode()),
                     b64(json.dumps(claims, separators=(",", ":")).encode()), b64(sig)])


def load_mix() -> list[dict[str, Any]]:
    """The requests: name, method, path, headers (lower-case names, `host` included), expect."""
    doc = json.loads(MIX_JSON.read_text(encoding="utf-8"))
    out = []
    for r in doc["requests"]:
        headers = dict(doc["common_headers"])
        headers.update(r.get("headers", {}))
        if "claims" in r:
            headers["authorization"] = "Bearer " + fake_jwt(r["claims"])
        out.append({"name": r["name"], "method": r["method"], "path": r["path"],
                    "headers": headers, "expect": r["expect"]})
    return out


def wrk_script(mix: list[dict[str, Any]]) -> str:
    """wrk Lua: cycle through the mix; print the summary as one JSON line at the end."""
    def lua_str(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    items = []
    for r in mix:
        hs = ", ".join(f"[{lua_str('Host' if k == 'host' else k)}] = {lua_str(v)}"
                       for k, v in r["headers"].items())
        items.append(f"  wrk.format({lua_str(r['method'])}, {lua_str(r['path'])}, {{{hs}}}),")
    return "\n".join([
        "-- generated by bench/run.py from bench/mix.json",
        "local reqs = {", *items, "}",
        "local n, i = #reqs, 0",
        "function request()",
        "  i = i % n + 1",
        "  return reqs[i]",
        "end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format(\'BENCH-JSON {"requests":%d,"duration_us":%d,'
        '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
        '"p50_us":%d,"p99_us":%d}\\n\', summary.requests, summary.duration, e.connect, e.read,'
        " e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))",
        "end",
        "",
    ])


# --------------------------------------------------------------------------- Envoy configs


def envoy_config_for(filters: list[dict[str, Any]]) -> dict[str, Any]:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {"name": "bench", "virtual_hosts": [{
            "name": "all", "domains": ["*"],
            "routes": [{
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
                # The color the filter set, echoed back: how the harness checks B against C.
                "response_headers_to_add": [
                    {"header": {"key": ECHO, "value": f"%REQ({COLOR})%"}}],
            }],
        }]},
        "http_filters": filters + [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    return {
        "static_resources": {"listeners": [{
            "name": "bench",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
        }]},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    }


def lua_filter() -> dict[str, Any]:
    return {"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": RULES_LUA.read_text(encoding="utf-8")}}}


def filter_config(rules: str) -> dict[str, Any]:
    return {"rules": rules, "header": COLOR, "jwt": {"trust": "unverified"}}


def wasm_filter(wasm: Path, rules: str, vm_id: str) -> dict[str, Any]:
    config = filter_config(rules)
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "traffic_color",
            "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": str(wasm.resolve())}}},
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": json.dumps(config)},
        }}}


# ------------------------------------------------------------------------------ processes


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv


class BenchEnvoy:
    def __init__(self, key: str, label: str, cfg: dict[str, Any], run_dir: Path, envoy_bin: str,
                 cpu: int | None):
        self.key, self.label = key, label
        path = run_dir / f"envoy-{key}.json"
        path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
        admin_file = run_dir / f"envoy-{key}.admin"
        admin_file.unlink(missing_ok=True)
        argv = pinned(cpu, [envoy_bin, "-c", str(path), "--concurrency", "1",
                            "--use-dynamic-base-id", "--log-level", "warning",
                            "--admin-address-path", str(admin_file)])
        self.proc = Process(f"envoy {key}", argv, run_dir / f"envoy-{key}.log")
        try:
            self.admin_port = self._wait_ready(admin_file)
            _, body = admin_get(self.admin_port, "/listeners?format=json", timeout=5.0)
            sa = json.loads(body)["listener_statuses"][0]["local_address"]["socket_address"]
            self.port = int(sa["port_value"])
        except BaseException:
            self.proc.stop()
            raise

    def _wait_ready(self, admin_file: Path, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise StackError(f"envoy {self.key} exited ({self.proc.popen.returncode}):\n"
                                 f"{self.proc.log(6000)}")
            if port is None:
                text = admin_file.read_text().strip() if admin_file.exists() else ""
                if text:
                    port = int(text.rsplit(":", 1)[1])
            else:
                try:
                    status, body = admin_get(port, "/ready", timeout=1.0)
                    if status == 200 and body.strip() == b"LIVE":
                        return port
                except OSError:
                    pass
            time.sleep(0.05)
        raise StackError(f"envoy {self.key} not ready after {timeout:.0f}s:\n{self.proc.log(6000)}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all threads), in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stat(self, name: str) -> int:
        _, body = admin_get(self.admin_port, f"/stats?filter=^{re.escape(name)}$&format=json", timeout=5.0)
        for s in json.loads(body).get("stats", []):
            if s.get("name") == name:
                return int(s.get("value", 0))
        return 0

    def requests_served(self) -> int:
        return self.stat("http.bench.downstream_rq_total")

    def stats_text(self, filt: str) -> str:
        _, body = admin_get(self.admin_port, f"/stats?filter={filt}", timeout=5.0)
        return body.decode()

    def stop(self) -> None:
        self.proc.stop()


def send(port: int, req: dict[str, Any]) -> tuple[int, str | None]:
    """One request of the mix, headers exactly as in mix.json; returns (status, echoed color)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(req["method"], req["path"], skip_host=True, skip_accept_encoding=True)
        for k, v in req["headers"].items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader(ECHO)
    finally:
        conn.close()


# ------------------------------------------------------------------------------ measuring


def cpu_times(cpu: int | None) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU (or all) from /proc/stat."""
    name = f"cpu{cpu}" if cpu is not None else "cpu"
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f and f[0] == name:
            v = [int(x) for x in f[1:9]]  # user nice system idle iowait irq softirq steal
            return sum(v) - v[3] - v[4], sum(v)
    return 0, 1


def run_wrk(wrk: str, cpu: int | None, port: int, script: Path, seconds: float, conns: int,
            log_path: Path) -> dict[str, Any]:
    argv = pinned(cpu, [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                        "-s", str(script), f"http://127.0.0.1:{port}/"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    log_path.write_text(out.stdout + out.stderr)
    m = re.search(r"^BENCH-JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(m.group(1))


def saturation(env: BenchEnvoy, tools: dict[str, Any], script: Path, cfg: dict[str, Any],
               run_dir: Path, tag: str) -> dict[str, Any]:
    if cfg["warmup"] > 0:
        run_wrk(tools["wrk"], tools["load_cpu"], env.port, script, cfg["warmup"], cfg["conns"],
                run_dir / f"wrk-warmup-{tag}.log")
    rq0, cpu0, t0 = env.requests_served(), env.cpu_seconds(), time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core0 = cpu_times(tools["envoy_cpu"])
    res = run_wrk(tools["wrk"], tools["load_cpu"], env.port, script, cfg["duration"], cfg["conns"],
                  run_dir / f"wrk-{tag}.log")
    cpu1, t1 = env.cpu_seconds(), time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core1 = cpu_times(tools["envoy_cpu"])
    rq1 = env.requests_served()
    wrk_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    served = rq1 - rq0
    errors = sum(res[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "cpu_us_per_rq": (cpu1 - cpu0) * 1e6 / max(served, 1),
        "rps": res["requests"] / (res["duration_us"] / 1e6),
        "busy": (cpu1 - cpu0) / (t1 - t0),
        "wrk_busy": wrk_cpu / (t1 - t0),
        "core_busy": (core1[0] - core0[0]) / max(core1[1] - core0[1], 1),
        "served": served,
        "errors": errors,
        "wrk_p50_us": res["p50_us"],
        "wrk_p99_us": res["p99_us"],
    }


def fixed_rate(env: BenchEnvoy, tools: dict[str, Any], mix: list[dict[str, Any]],
               cfg: dict[str, Any], run_dir: Path, tag: str) -> dict[str, Any]:
    """One oha per request of the mix, each at rate/len(mix); latencies merged."""
    per = cfg["rate"] / len(mix)
    skip = 1.0  # seconds of each oha's start (connections opening) left out
    seconds = cfg["rate_duration"] + skip
    procs = []
    rq0, cpu0 = env.requests_served(), env.cpu_seconds()
    try:
        for i, r in enumerate(mix):
            argv = [tools["oha"], "--no-tui", "-z", f"{seconds}s", "-q", f"{per:.3f}",
                    "--latency-correction", "-w", "-c", "4", "--worker-threads", "1",
                    "--output-format", "csv", "-o", str(run_dir / f"oha-{tag}-{i}.csv"),
                    "-m", r["method"]]
            for k, v in r["headers"].items():
                argv += ["-H", f"{k}: {v}"]
            argv.append(f"http://127.0.0.1:{env.port}{r['path']}")
            procs.append(Process(f"oha {tag} {i}", pinned(tools["load_cpu"], argv),
                                 run_dir / f"oha-{tag}-{i}.log"))
        deadline = time.monotonic() + seconds + 60
        for p in procs:
            rc = p.wait(max(1.0, deadline - time.monotonic()))
            if rc != 0:
                raise RuntimeError(f"{p.name} exited {rc}:\n{p.log(3000)}")
    finally:
        for p in procs:
            p.stop()
    cpu1, rq1 = env.cpu_seconds(), env.requests_served()
    lat, bad = [], 0
    for i in range(len(mix)):
        with open(run_dir / f"oha-{tag}-{i}.csv", newline="") as f:
            for row in csv.DictReader(f):
                if float(row["request-start"]) < skip:
                    continue
                if row["status"] != "200":
                    bad += 1
                    continue
                lat.append(float(row["request-duration"]) * 1e6)
    if not lat:
        raise RuntimeError(f"oha recorded no requests for {tag}")
    lat.sort()
    achieved = len(lat) / cfg["rate_duration"]
    return {
        "p50_us": percentile(lat, 50), "p99_us": percentile(lat, 99),
        "n": len(lat), "errors": bad, "achieved_rps": achieved,
        "cpu_us_per_rq": (cpu1 - cpu0) * 1e6 / max(rq1 - rq0, 1),
    }


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


# ----------------------------------------------------------------- criterion (benches/rules.rs)

MICRO_ENV = {"CARGO_PROFILE_BENCH_PANIC": "unwind"}  # [profile.release] has panic = "abort"


def node_run(wasm: Path, mix: list[dict[str, Any]], expect: dict[str, list[str]],
             configs: dict[str, str], cpu: int | None, run_dir: Path,
             repeats: int = 5) -> dict[str, dict[str, float]] | None:
    """bench/node_host.js: the module's own work per request in Node's V8, no Envoy; the median
    of `repeats` runs per variant. None when node is missing."""
    node = shutil.which("node")
    if not node:
        return None
    requests = []
    for req in mix:
        h = req["headers"]
        pairs = [[":method", req["method"]], [":path", req["path"]], [":authority", h.get("host", "")]]
        pairs += [[k, v] for k, v in h.items() if k != "host"]
        requests.append({"name": req["name"], "headers": pairs})
    spec = {"iterations": 100_000, "requests": requests,
            "variants": {k: {"config": configs[k], "expect": expect[k]} for k in configs}}
    path = run_dir / "node-host.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    for _ in range(repeats):
        # --no-liftoff: straight to the optimizing compiler, as Envoy configures V8.
        r = subprocess.run(pinned(cpu, [node, "--no-liftoff", str(BENCH / "node_host.js"), str(wasm),
                                        str(path)]),
                           capture_output=True, text=True, timeout=300)
        (run_dir / "node-host.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"node_host.js failed:\n{r.stdout}\n{r.stderr[-2000:]}")
        for line in r.stdout.splitlines():
            row = json.loads(line)
            runs[row["variant"]].append(row)
    return {k: {"us": med([x["us_per_request"] for x in v]),
                "calls": med([x["host_calls_per_request"] for x in v])} for k, v in runs.items()}


def micro_build(run_dir: Path) -> bool:
    r = subprocess.run(["cargo", "bench", "--bench", "rules", "--no-run"], cwd=ROOT,
                       env={**os.environ, **MICRO_ENV}, capture_output=True, text=True)
    (run_dir / "criterion-build.log").write_text(r.stdout + r.stderr)
    return r.returncode == 0


def micro_run(quick: bool, cpu: int | None, run_dir: Path) -> list[dict[str, Any]]:
    """Run the criterion benchmarks (pinned like Envoy was); the median time of each, from
    criterion's own target/criterion/**/new/estimates.json."""
    argv = pinned(cpu, ["cargo", "bench", "--bench", "rules", "--", *(["--quick"] if quick else [])])
    started = time.time()
    r = subprocess.run(argv, cwd=ROOT, env={**os.environ, **MICRO_ENV}, capture_output=True,
                       text=True, timeout=1200)
    (run_dir / "criterion.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"cargo bench failed:\n{r.stderr[-3000:]}")
    out = []
    crit = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
    for bj in crit.glob("**/new/benchmark.json"):
        est = bj.with_name("estimates.json")
        if not est.exists() or est.stat().st_mtime < started:
            continue  # an older run's benchmark
        e = json.loads(est.read_text())["median"]
        ci = e["confidence_interval"]
        out.append({"name": json.loads(bj.read_text())["full_id"], "ns": e["point_estimate"],
                    "lo": ci["lower_bound"], "hi": ci["upper_bound"], "t": est.stat().st_mtime})
    out.sort(key=lambda m: m["t"])
    return out


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


# --------------------------------------------------------------------------------- report


def sh(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def virt() -> str:
    """`virtual machine (KVM)` when lscpu names a hypervisor."""
    m = re.search(r"^Hypervisor vendor:\s*(.+)$", sh(["lscpu"]), re.M)
    return f"virtual machine ({m.group(1).strip()})" if m else ""


def machine_info(tools: dict[str, Any], envoy_bin: str) -> dict[str, str]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    envoy_v = sh([envoy_bin, "--version"])
    m = re.search(r"version: \S+?/([\d.]+)/\S+/(\S+)/(\S+)", envoy_v)
    git = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu": cpu_model,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "virt": virt(),
        "load": tools.get("load_at_start", ""),
        "envoy": f"{m.group(1)} ({m.group(2)}, {m.group(3)})" if m else envoy_v,
        "rustc": sh(["rustc", "--version"]),
        "wrk": sh([tools["wrk"], "-v"]).splitlines()[0].split(" Copyright")[0] if tools["wrk"] else "",
        "oha": sh([tools["oha"], "--version"]),
        "wasm_opt": sh([tools["wasm_opt"], "--version"]) if tools["wasm_opt"] else "not installed",
        "git": git + (" (with uncommitted changes)" if dirty else ""),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_spread(xs: list[float], nd: int = 1) -> str:
    return f"{med(xs):.{nd}f} ({min(xs):.{nd}f}–{max(xs):.{nd}f})"


def render(results: dict[str, Any]) -> str:
    v = results["variants"]
    keys = [k for k in ("A", "B", "C", "D", "E", "Craw") if k in v]
    sizes = results["sizes"]
    cfg = results["config"]
    mi = results["machine"]

    def col(k: str, metric: str, part: str) -> list[float]:
        return [r[part][metric] for r in v[k]["rounds"]]

    lines = [BEGIN, "",
             f"_Written by `bench/run.py` on {mi['date']} — {results['command']}; "
             f"{cfg['rounds']} rounds{' (quick mode)' if cfg['quick'] else ''}._", "",
             "### Machine", "",
             "| | |", "|---|---|",
             f"| CPU | {mi['cpu']}, {mi['cores']} cores{', ' + mi['virt'] if mi['virt'] else ''} |",
             f"| kernel | {mi['kernel']} |",
             f"| load average at start | {mi['load']} |",
             f"| Envoy | {mi['envoy']}, `--concurrency 1`, {results['pinning']} |",
             f"| rustc | {mi['rustc']} |",
             f"| wrk | {mi['wrk']} |", f"| oha | {mi['oha']} |",
             f"| wasm-opt | {mi['wasm_opt']} |",
             f"| traffic-color | commit {mi['git']} |", "",
             "### Results", "",
             f"Median of {cfg['rounds']} rounds, (min–max) over rounds. Saturation: wrk, 1 thread, "
             f"{cfg['conns']} connections, {cfg['duration']:g} s per run after {cfg['warmup']:g} s of "
             f"warm-up. Fixed rate: {cfg['rate']:g} requests/s in all, oha with latency correction, "
             f"{cfg['rate_duration']:g} s per run.", "",
             "| variant | Envoy CPU µs/request (saturation) | requests/s (saturation) "
             "| Envoy busy | p50 µs @ fixed rate | p99 µs @ fixed rate "
             "| Envoy CPU µs/request @ fixed rate | Envoy RSS MiB | .wasm bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k in keys:
        wasm = {"C": sizes["wasm"], "D": sizes["wasm"], "E": sizes["wasm"],
                "Craw": sizes.get("cargo")}.get(k)
        lines.append(
            f"| {v[k]['label']} | {fmt_spread(col(k, 'cpu_us_per_rq', 'sat'), 2)} "
            f"| {fmt_spread(col(k, 'rps', 'sat'), 0)} "
            f"| {med(col(k, 'busy', 'sat')) * 100:.0f}% "
            f"| {fmt_spread(col(k, 'p50_us', 'lat'), 0)} | {fmt_spread(col(k, 'p99_us', 'lat'), 0)} "
            f"| {fmt_spread(col(k, 'cpu_us_per_rq', 'lat'), 1)} "
            f"| {med([r['rss'] for r in v[k]['rounds']]) / 2**20:.1f} "
            f"| {f'{wasm:,}' if wasm else '—'} |")
    a, b, c, d = (med(col(k, "cpu_us_per_rq", "sat")) for k in ("A", "B", "C", "D"))
    added_c, added_d, added_b = c - a, d - a, b - a
    e = med(col("E", "cpu_us_per_rq", "sat"))
    added_e = e - a
    r = results["ratios"] = {
        "C/A": c / a, "C/B": c / b, "C/D": c / d,
        "added C over A / added D over A": added_c / added_d if added_d > 0 else float("nan"),
        "added C over A / added E over A": added_c / added_e if added_e > 0 else float("nan"),
        "added C over A / added B over A": added_c / added_b if added_b > 0 else float("nan"),
    }
    kib = sizes["wasm"] / 1024
    t1 = c <= b
    t2 = r["added C over A / added D over A"] <= 1.25
    t3 = sizes["wasm"] < 400 * 1024
    mark = {True: "**reached**", False: "**not reached**"}
    lines += ["", "### Ratios (Envoy CPU µs per request at saturation, medians)", "",
              "| ratio | value |", "|---|---|",
              f"| C / A | {r['C/A']:.2f} |", f"| C / B | {r['C/B']:.2f} |",
              f"| C / D | {r['C/D']:.2f} |",
              f"| (C − A) / (D − A): what 20 rules add over no filter, per what the 1-rule filter adds "
              f"| {r['added C over A / added D over A']:.2f} |",
              f"| (C − A) / (E − A): the same, per what 1 rule on a header every request carries adds "
              f"| {r['added C over A / added E over A']:.2f} |",
              f"| (C − A) / (B − A): traffic-color's added cost per Lua's | "
              f"{r['added C over A / added B over A']:.2f} |",
              "", "Added over A, µs per request: "
              f"B (Lua) {added_b:+.2f}, C (traffic-color, 20 rules) {added_c:+.2f}, "
              f"D (traffic-color, 1 rule) {added_d:+.2f}, "
              f"E (traffic-color, 1 rule on user-agent) {added_e:+.2f}.", "",
              "### Targets", "",
              "| target | measured | |", "|---|---|---|",
              f"| C costs no more Envoy CPU per request than B | C {c:.2f} µs vs B {b:.2f} µs "
              f"| {mark[t1]} |",
              f"| C adds at most 1.25× what D adds over A | (C − A) / (D − A) = "
              f"{r['added C over A / added D over A']:.2f} | {mark[t2]} |",
              f"| the .wasm stays under 400 KiB | {sizes['wasm']:,} bytes = {kib:.1f} KiB "
              f"| {mark[t3]} |", "",
              "### The .wasm", "", "| module | bytes | KiB |", "|---|---|---|",
              f"| `target/traffic_color.wasm`, as `make wasm` ships it (cargo, then `wasm-opt -O3`) "
              f"| {sizes['wasm']:,} | {sizes['wasm'] / 1024:.1f} |"]
    for key, label in (("cargo", "cargo's module, before wasm-opt"),
                       ("cargo_Oz", "cargo's module after `wasm-opt -Oz` instead")):
        if sizes.get(key):
            lines.append(f"| {label} | {sizes[key]:,} | {sizes[key] / 1024:.1f} |")
    if "Craw" in v:
        co = med(col("Craw", "cpu_us_per_rq", "sat"))
        lines += ["", f"C with cargo's module before wasm-opt: {co:.2f} µs per request against C's "
                      f"{c:.2f} µs ({(co - c) / c * 100:+.1f}%)."]
    lines += ["", "### The request mix", "",
              f"{len(results['mix'])} requests (bench/mix.json), sent in turn. Before measuring, each was sent "
              "once to every Envoy: B and C gave every request the same color, the one mix.json "
              "expects. The rule of bench/rules.tc that decided each (from traffic-color's own "
              "`rule_hits_total` counters):", "",
              "| request | color | decided by |", "|---|---|---|"]
    for m in results["mix"]:
        lines.append(f"| {m['name']} | {m['color']} | {m['rule']} |")
    lines += ["", f"{results['distinct_rules']} of the 20 rules, and the default, decide at least one "
                  "request of the mix.", "",
              "### Every round", "",
              "| round | variant | CPU µs/rq (sat.) | req/s (sat.) | Envoy busy | CPU 0 busy | wrk busy "
              "| p50 µs | p99 µs | CPU µs/rq (fixed) | fixed-rate requests | wrk errors | oha non-200 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i in range(cfg["rounds"]):
        for k in keys:
            rr = v[k]["rounds"][i]
            lines.append(
                f"| {i + 1} | {k} | {rr['sat']['cpu_us_per_rq']:.2f} | {rr['sat']['rps']:.0f} "
                f"| {rr['sat']['busy'] * 100:.0f}% | {rr['sat']['core_busy'] * 100:.0f}% "
                f"| {rr['sat']['wrk_busy'] * 100:.0f}% "
                f"| {rr['lat']['p50_us']:.0f} "
                f"| {rr['lat']['p99_us']:.0f} | {rr['lat']['cpu_us_per_rq']:.1f} | {rr['lat']['n']} "
                f"| {rr['sat']['errors']} | {rr['lat']['errors']} |")
    node = results.get("node")
    if node:
        nc, nd, ne = (node[k]["us"] for k in ("C", "D", "E"))
        lines += ["", "### The module alone, in Node's V8 (no Envoy)", "",
                  "`bench/node_host.js` drives the same module through the calls Envoy makes for "
                  "each request of the mix (context create, request and response headers, log, "
                  "done, delete) and answers its host calls from plain data, in Node "
                  f"{sh(['node', '--version'])} with `--no-liftoff` (V8's optimizing compiler only, "
                  "as Envoy sets it): the engine Envoy embeds, without Envoy. Median of 5 runs of "
                  "100,000 requests; the times include the JavaScript host stubs, and handing a "
                  "value to the module (E, and C's header map) includes their copy into it.", "",
                  "| variant | µs per request | host calls per request |", "|---|---|---|"]
        for k, label in (("C", "C: 20 rules"), ("D", "D: 1 rule"), ("E", "E: 1 rule on user-agent")):
            lines.append(f"| {label} | {node[k]['us']:.2f} | {node[k]['calls']:.1f} |")
        lines += ["", f"Here C − E = {nc - ne:+.2f} µs and E − D = {ne - nd:+.2f} µs per request; in "
                      f"Envoy above, C − E = {c - e:+.2f} µs and E − D = {e - d:+.2f} µs. C − E is "
                      "what evaluating 20 rules costs beyond one rule that reads a value; E − D is "
                      "what it costs the host to hand the module one value at all."]
    micro = results.get("micro")
    if micro:
        lines += ["", "### Native micro-benchmarks (criterion, `benches/rules.rs`)", "",
                  "The rules engine alone, natively (x86_64, release), no proxy and no Wasm: "
                  "`RequestFacts` over a `SimpleRequest` plus `Program::decide`, so decoding the "
                  "query, cookies and token is included; and compiling programs.", "",
                  "| benchmark | median time per iteration | 95% interval | per item |",
                  "|---|---|---|---|"]
        for m in micro:
            per = ""
            mm = re.search(r"whole mix \((\d+) requests\)", m["name"])
            if mm:
                per = f"{fmt_ns(m['ns'] / int(mm.group(1)))} per request"
            elif m["name"].endswith("1000 rules"):
                per = f"{fmt_ns(m['ns'] / 1000)} per rule"
            lines.append(f"| `{m['name']}` | {fmt_ns(m['ns'])} "
                         f"| {fmt_ns(m['lo'])} – {fmt_ns(m['hi'])} | {per} |")
    warn = results["warnings"]
    if warn:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in warn]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write_report(out: str, block: str) -> None:
    if out == "-":
        print(block)
        return
    path = Path(out)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "# Benchmarks\n\n") + block
    path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------ main


def find_tool(env_name: str, name: str, extra: list[Path] = ()) -> str | None:
    v = os.environ.get(env_name)
    if v:
        return v
    found = shutil.which(name)
    if found:
        return found
    for p in extra:
        if os.access(p, os.X_OK):
            return str(p)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", default=str(ROOT / "target/traffic_color.wasm"),
                    help="the filter as shipped (make wasm)")
    ap.add_argument("--cargo-wasm", default=str(ROOT / "target/wasm32-wasip1/release/traffic_color.wasm"),
                    help="cargo's module before wasm-opt (variant C raw; skipped if missing)")
    ap.add_argument("--run-dir", default=str(ROOT / "target/bench"))
    ap.add_argument("--no-micro", action="store_true",
                    help="skip the criterion micro-benchmarks (also BENCH_MICRO=0)")
    args = ap.parse_args()
    do_micro = not args.no_micro and os.environ.get("BENCH_MICRO", "1") not in ("0", "")

    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cfg = {
        "quick": quick,
        "rounds": int(env_num("BENCH_ROUNDS", 3)),
        "duration": env_num("BENCH_DURATION", 3 if quick else 8),
        "warmup": env_num("BENCH_WARMUP", 1 if quick else 2),
        "rate": env_num("BENCH_RATE", 5000),
        "rate_duration": env_num("BENCH_RATE_DURATION", 3 if quick else 8),
        "conns": int(env_num("BENCH_CONNECTIONS", 64)),
    }
    out = os.environ.get("BENCH_OUT", str(ROOT / "BENCHMARKS.md"))
    warnings: list[str] = []

    wasm = Path(args.wasm)
    if not wasm.is_file():
        print(f"no {wasm}: run `make wasm` first", file=sys.stderr)
        return 2
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    tools: dict[str, Any] = {
        "wrk": find_tool("WRK", "wrk"),
        "oha": find_tool("OHA", "oha", [cargo_bin / "oha"]),
        "wasm_opt": find_tool("WASM_OPT", "wasm-opt"),
    }
    for t in ("wrk", "oha"):
        if not tools[t]:
            print(f"{t} not found: `make bench` installs it", file=sys.stderr)
            return 2
    envoy_bin = envoy_config.find_envoy()
    ncpu = os.cpu_count() or 1
    if shutil.which("taskset") and ncpu >= 2:
        envoy_cpu, tools["load_cpu"] = 0, 1
        tools["envoy_cpu"] = envoy_cpu
        pinning = "pinned to CPU 0 (`taskset -c 0`); load generators on CPU 1"
    else:
        envoy_cpu, tools["load_cpu"] = None, None
        tools["envoy_cpu"] = None
        pinning = "not pinned (no taskset or a single CPU)"
        warnings.append("Envoy and the load generators were not pinned to separate CPUs.")
    load_at_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    load1 = float(load_at_start.split()[0])
    if load1 > 0.5:
        warnings.append(f"The machine was not idle: load average {load1:.2f} at the start "
                        "(other work shares these cores; the figures are noisy).")

    tools["load_at_start"] = load_at_start
    run_dir = Path(args.run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)

    # The module sizes: as shipped, cargo's before wasm-opt, and that one with -Oz for comparison.
    sizes: dict[str, int] = {"wasm": wasm.stat().st_size}
    raw_wasm = Path(args.cargo_wasm)
    if not raw_wasm.is_file():
        raw_wasm = None
    else:
        sizes["cargo"] = raw_wasm.stat().st_size
        if tools["wasm_opt"]:
            dst = run_dir / "traffic_color.Oz.wasm"
            r = subprocess.run([tools["wasm_opt"], "-Oz", *WASM_OPT_FLAGS, str(raw_wasm),
                                "-o", str(dst)], capture_output=True, text=True)
            if r.returncode == 0:
                sizes["cargo_Oz"] = dst.stat().st_size
            else:
                warnings.append(f"wasm-opt -Oz failed: {r.stderr.strip()[:300]}")

    rules = RULES_TC.read_text(encoding="utf-8")
    variants: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("A", "A: no filter", []),
        ("B", "B: Lua filter, the 20 rules by hand", [lua_filter()]),
        ("C", "C: traffic-color, 20 rules", [wasm_filter(wasm, rules, "bench_c")]),
        ("D", "D: traffic-color, 1 rule", [wasm_filter(wasm, ONE_RULE, "bench_d")]),
        ("E", "E: traffic-color, 1 rule on user-agent",
         [wasm_filter(wasm, ONE_RULE_PRESENT, "bench_e")]),
    ]
    if raw_wasm:
        variants.append(("Craw", "C with cargo's module, before wasm-opt",
                         [wasm_filter(raw_wasm, rules, "bench_craw")]))

    if do_micro:
        log("building the criterion benchmarks (benches/rules.rs)")
        if not micro_build(run_dir):
            print(f"cargo bench --no-run failed: see {run_dir / 'criterion-build.log'}",
                  file=sys.stderr)
            return 1

    mix = load_mix()
    script = run_dir / "mix.lua"
    script.write_text(wrk_script(mix), encoding="utf-8")

    envoys: dict[str, BenchEnvoy] = {}
    try:
        log(f"starting {len(variants)} Envoys ({pinning})")
        for key, label, filters in variants:
            envoys[key] = BenchEnvoy(key, label, envoy_config_for(filters), run_dir, envoy_bin,
                                     envoy_cpu)

        # ---- colors: B and C must agree with each other and with mix.json
        log(f"checking the colors of the {len(mix)} requests of the mix on every Envoy")
        mismatches, mix_report = [], []
        node_expect: dict[str, list[str]] = {"C": [], "D": [], "E": []}
        hits_before = envoys["C"].stats_text("rule_hits_total")
        for req in mix:
            seen = {}
            for key in envoys:
                status, color = send(envoys[key].port, req)
                if status != 200:
                    mismatches.append(f"{key}: {req['name']}: HTTP {status}")
                seen[key] = color
            want_d = "canary" if req["headers"].get("x-canary") == "true" else "stable"
            if not (seen["B"] == seen["C"] == req["expect"]):
                mismatches.append(f"{req['name']}: expect {req['expect']}, Lua (B) {seen['B']}, "
                                  f"traffic-color (C) {seen['C']}")
            if seen["D"] != want_d:
                mismatches.append(f"{req['name']}: D gave {seen['D']}, expected {want_d}")
            ua = req["headers"].get("user-agent", "")
            want_e = "canary" if ua.startswith("ShopApp/") else "stable"
            if seen["E"] != want_e:
                mismatches.append(f"{req['name']}: E gave {seen['E']}, expected {want_e}")
            for key, want in (("C", req["expect"]), ("D", want_d), ("E", want_e)):
                node_expect[key].append(want)
            if "Craw" in seen and seen["Craw"] != seen["C"]:
                mismatches.append(f"{req['name']}: C raw gave {seen['Craw']}, C {seen['C']}")
            # The rule that decided, from the counters (one request at a time).
            hits_after = envoys["C"].stats_text("rule_hits_total")
            mix_report.append({"name": req["name"], "color": seen["C"],
                               "rule": decided_rule(hits_before, hits_after)})
            hits_before = hits_after
        if mismatches:
            print("colors differ, not measuring:\n  " + "\n  ".join(mismatches), file=sys.stderr)
            return 1
        distinct = len({m["rule"] for m in mix_report if m["rule"] != "default"})
        log(f"colors agree; the mix is decided by {distinct} distinct rules and the default")

        # ---- rounds, in alternation
        data: dict[str, Any] = {k: {"label": lbl, "rounds": []} for k, lbl, _ in variants}
        t_start = time.monotonic()
        for rnd in range(cfg["rounds"]):
            for key, _, _ in variants:
                env = envoys[key]
                tag = f"r{rnd + 1}-{key}"
                sat = saturation(env, tools, script, cfg, run_dir, tag)
                lat = fixed_rate(env, tools, mix, cfg, run_dir, tag)
                rss = env.rss_bytes()
                data[key]["rounds"].append({"sat": sat, "lat": lat, "rss": rss})
                log(f"round {rnd + 1} {key:>4}: {sat['cpu_us_per_rq']:6.2f} µs/rq, "
                    f"{sat['rps']:8.0f} rq/s, busy {sat['busy'] * 100:3.0f}%, "
                    f"p50 {lat['p50_us']:6.0f} µs, p99 {lat['p99_us']:7.0f} µs "
                    f"({lat['achieved_rps']:.0f} rq/s), RSS {rss / 2**20:.1f} MiB")
                if sat["errors"] or lat["errors"]:
                    warnings.append(f"round {rnd + 1} {key}: {sat['errors']} wrk errors, "
                                    f"{lat['errors']} non-200 at the fixed rate")
                if sat["core_busy"] < 0.9:
                    warnings.append(f"round {rnd + 1} {key}: Envoy's CPU was busy only "
                                    f"{sat['core_busy'] * 100:.0f}% of the time under wrk (wrk "
                                    f"{sat['wrk_busy'] * 100:.0f}% of its CPU): requests/s is not "
                                    "Envoy's limit there")
                elif sat["busy"] < 0.85:
                    warnings.append(f"round {rnd + 1} {key}: Envoy had only "
                                    f"{sat['busy'] * 100:.0f}% of its CPU under wrk: other "
                                    "processes took the rest, requests/s is low there")
                if lat["achieved_rps"] < 0.95 * cfg["rate"]:
                    warnings.append(f"round {rnd + 1} {key}: the fixed rate reached only "
                                    f"{lat['achieved_rps']:.0f} of {cfg['rate']:g} requests/s")
        log(f"measured in {time.monotonic() - t_start:.0f} s")
    finally:
        for e in envoys.values():
            e.stop()

    log("timing the module alone in Node's V8 (bench/node_host.js)")
    node = node_run(wasm, mix, node_expect, {
        "C": json.dumps(filter_config(rules)), "D": json.dumps(filter_config(ONE_RULE)),
        "E": json.dumps(filter_config(ONE_RULE_PRESENT))}, envoy_cpu, run_dir)

    micro = None
    if do_micro:
        log("running the criterion benchmarks")
        micro = micro_run(quick, envoy_cpu, run_dir)

    knobs = [f"{k}={os.environ[k]}" for k in sorted(os.environ)
             if k.startswith("BENCH_") and k not in ("BENCH_COMMAND", "BENCH_OUT") and os.environ[k]]
    command = "`" + " ".join(knobs + [os.environ.get("BENCH_COMMAND") or "python3 bench/run.py"]) + "`"
    results = {"variants": data, "sizes": sizes, "config": cfg, "pinning": pinning,
               "machine": machine_info(tools, envoy_bin), "mix": mix_report,
               "distinct_rules": distinct, "warnings": warnings, "command": command,
               "micro": micro, "node": node}
    block = render(results)
    (run_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    write_report(out, block)
    print(block)
    log(f"results written to {out} (raw data: {run_dir / 'results.json'})")
    return 0


def decided_rule(before: str, after: str) -> str:
    """Which rule_hits counter went up between two /stats snapshots of variant C."""
    def parse(text: str) -> dict[str, int]:
        out = {}
        for line in text.splitlines():
            name, _, val = line.partition(": ")
            if "rule_hits_total" in name and val.strip().isdigit():
                out[name.strip()] = int(val)
        return out
    b, a = parse(before), parse(after)
    up = [n for n in a if a[n] > b.get(n, 0)]
    if len(up) != 1:
        return "?"
    m = re.search(r"rule_hits_total\.rule\.([^.]+)(?:\.name\.(.+))?$", up[0])
    if not m:
        return up[0]
    return "default" if m.group(1) == "default" else f"rule {m.group(1)} ({m.group(2) or ''})"


if __name__ == "__main__":
    sys.exit(main())

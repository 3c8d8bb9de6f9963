"""How the benchmark drives and measures: Envoys pinned to one CPU, wrk at saturation, oha at
a fixed rate, the module alone under Node (bench/node_host.js), and criterion."""

from __future__ import annotations

import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import workload
from traffic_color_harness import admin
from traffic_color_harness.envoy import Envoy, start_envoy
from traffic_color_harness.process import Process
from traffic_color_harness.repo import REPO

BENCH = Path(__file__).resolve().parent


def find_tool(env_name: str, name: str, extra: list[Path] = ()) -> str | None:
    """$`env_name`, else `name` on PATH, else the first executable of `extra`."""
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


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv


# ---------------------------------------------------------------------------------- Envoy


def start_bench_envoy(key: str, cfg: dict[str, Any], run_dir: Path, envoy_bin: str,
                      cpu: int | None) -> Envoy:
    """One variant's Envoy: one worker (`--concurrency 1`), pinned to `cpu`, warnings only."""
    return start_envoy(cfg, run_dir, f"envoy-{key}", timeout=60.0, envoy_bin=envoy_bin,
                       concurrency=1, component_log_level=None,
                       argv_prefix=tuple(pinned(cpu, [])))


def memory(env: Envoy) -> dict[str, int]:
    """Where an Envoy's memory is, in bytes: `rss`, its anonymous and file-backed parts
    (/proc/<pid>/status), and tcmalloc's view of the heap from the admin `/memory` endpoint:
    `heap_allocated` (in use), `heap_free` (freed but kept: the page heap's free pages and
    the threads' caches), plus the number of Wasm VMs (`wasm.wasm_vm_count`)."""
    out: dict[str, int] = {}
    try:
        status = Path(f"/proc/{env.proc.pid}/status").read_text()
    except OSError:
        return out
    for line in status.splitlines():
        name, _, val = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile") and val.split():
            out[{"VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file"}[name]] = int(val.split()[0]) * 1024
    code, body = admin.get(env.admin_port, "/memory")
    if code == 200:
        m = {k: int(v) for k, v in json.loads(body).items() if str(v).isdigit()}
        out["heap_allocated"] = m.get("allocated", 0)
        out["heap_free"] = m.get("pageheap_free", 0) + m.get("total_thread_cache", 0)
        out["heap_physical"] = m.get("total_physical_bytes", 0)
    out["wasm_vms"] = env.stat("wasm.wasm_vm_count") or 0
    out.update(smaps(env.proc.pid))
    return out


def smaps(pid: int) -> dict[str, int]:
    """Two parts of an Envoy's anonymous memory, from /proc/<pid>/smaps (bytes resident):
    `jit_code`, the executable anonymous mappings (V8's compiled code), and `wasm_memory`, the
    Wasm linear memories: V8 reserves each with its guard region as one large inaccessible
    mapping and opens the pages in use at its start, which /proc shows as a writable mapping
    right before a `---p` one of 4 GiB or more."""
    out = {"jit_code": 0, "wasm_memory": 0}
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return out
    maps: list[list] = []  # [start, end, perms, anonymous, rss bytes]
    for line in lines:
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", f[0]):
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            maps.append([lo, hi, f[1], len(f) == 5, 0])
        elif maps and f and f[0] == "Rss:":
            maps[-1][4] = int(f[1]) * 1024
    for prev, cur in zip(maps, maps[1:]):
        if (prev[3] and "w" in prev[2] and cur[3] and cur[2] == "---p" and cur[0] == prev[1]
                and cur[1] - cur[0] >= 4 << 30):
            out["wasm_memory"] += prev[4]
    out["jit_code"] = sum(m[4] for m in maps if m[3] and "x" in m[2])
    return out


def requests_served(env: Envoy) -> int:
    """The requests Envoy served (its own counter), the divisor of CPU per request."""
    return env.stat("http.bench.downstream_rq_total") or 0


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


def saturation(env: Envoy, tools: dict[str, Any], script: Path, cfg: dict[str, Any],
               run_dir: Path, tag: str) -> dict[str, Any]:
    if cfg["warmup"] > 0:
        run_wrk(tools["wrk"], tools["load_cpu"], env.port, script, cfg["warmup"], cfg["conns"],
                run_dir / f"wrk-warmup-{tag}.log")
    rq0, cpu0, t0 = requests_served(env), env.proc.cpu_seconds(), time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core0 = cpu_times(tools["envoy_cpu"])
    res = run_wrk(tools["wrk"], tools["load_cpu"], env.port, script, cfg["duration"], cfg["conns"],
                  run_dir / f"wrk-{tag}.log")
    cpu1, t1 = env.proc.cpu_seconds(), time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core1 = cpu_times(tools["envoy_cpu"])
    rq1 = requests_served(env)
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


def fixed_rate(env: Envoy, tools: dict[str, Any], mix: list[dict[str, Any]],
               cfg: dict[str, Any], run_dir: Path, tag: str) -> dict[str, Any]:
    """One oha per request of the mix, each at rate/len(mix); latencies merged."""
    per = cfg["rate"] / len(mix)
    skip = 1.0  # seconds of each oha's start (connections opening) left out
    seconds = cfg["rate_duration"] + skip
    procs = []
    rq0, cpu0 = requests_served(env), env.proc.cpu_seconds()
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
    cpu1, rq1 = env.proc.cpu_seconds(), requests_served(env)
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


# ------------------------------------------------------------ the module alone, criterion

MICRO_ENV = {"CARGO_PROFILE_BENCH_PANIC": "unwind"}  # [profile.release] has panic = "abort"


def node_run(variants: dict[str, dict[str, Any]], mix: list[dict[str, Any]], cpu: int | None,
             run_dir: Path, iterations: int = 100_000,
             repeats: int = 5) -> dict[str, dict[str, Any]] | None:
    """bench/node_host.js: each module's own work per request in Node's V8, no Envoy (the median
    of `repeats` timed runs of `iterations` requests), its host calls per request by name, and
    its linear memory. None when node is missing."""
    node = shutil.which("node")
    if not node:
        return None
    requests = []
    for i, req in enumerate(mix):
        h = req["headers"]
        pairs = [[":method", req["method"]], [":path", req["path"]], [":authority", h.get("host", "")]]
        pairs += [[k, v] for k, v in h.items() if k != "host"]
        # Envoy adds one to every request before any filter runs.
        pairs.append(["x-request-id", workload.request_id(i)])
        requests.append({"name": req["name"], "headers": pairs})
    spec = {"iterations": iterations, "repeats": repeats, "requests": requests, "variants": variants}
    path = run_dir / "node-host.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    # --no-liftoff: straight to the optimizing compiler, as Envoy configures V8.
    r = subprocess.run(pinned(cpu, [node, "--no-liftoff", str(BENCH / "node_host.js"), str(path)]),
                       capture_output=True, text=True, timeout=1800)
    (run_dir / "node-host.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"node_host.js failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in r.stdout.splitlines():
        row = json.loads(line)
        runs.setdefault(row["variant"], []).append(row)
    return {k: {"us": statistics.median([x["us_per_request"] for x in v]),
                "us_all": [x["us_per_request"] for x in v],
                # medians of per-call timings: what a busy machine disturbs least
                "median_us": statistics.median([x["median_us_per_request"] for x in v]),
                "on_log_us": statistics.median([x["median_us_on_log"] for x in v]),
                "calls": v[0]["calls"], "allocations": v[0]["allocations"],
                "memory_kib": v[0]["memory_kib"]}
            for k, v in runs.items()}


def micro_build(run_dir: Path) -> bool:
    r = subprocess.run(["cargo", "bench", "--bench", "rules", "--no-run"], cwd=REPO,
                       env={**os.environ, **MICRO_ENV}, capture_output=True, text=True)
    (run_dir / "criterion-build.log").write_text(r.stdout + r.stderr)
    return r.returncode == 0


def micro_run(quick: bool, cpu: int | None, run_dir: Path) -> list[dict[str, Any]]:
    """Run the criterion benchmarks (pinned like Envoy was); the median time of each, from
    criterion's own target/criterion/**/new/estimates.json."""
    argv = pinned(cpu, ["cargo", "bench", "--bench", "rules", "--", *(["--quick"] if quick else [])])
    started = time.time()
    r = subprocess.run(argv, cwd=REPO, env={**os.environ, **MICRO_ENV}, capture_output=True,
                       text=True, timeout=1200)
    (run_dir / "criterion.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"cargo bench failed:\n{r.stderr[-3000:]}")
    out = []
    crit = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "criterion"
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


# --------------------------------------------------------------------------------- rounds


def run_rounds(envoys: dict[str, Envoy], labels: dict[str, str], tools: dict[str, Any],
               script: Path, mix: list[dict[str, Any]], cfg: dict[str, Any], run_dir: Path,
               warnings: list[str], log) -> dict[str, Any]:
    """The variants in alternation, A B C D E [C raw] A B C ..., for cfg["rounds"] rounds:
    saturation, then the fixed rate, then RSS. Returns key -> {"label", "rounds": [...]};
    what looks wrong (errors, a CPU not saturated, a rate not reached) goes to `warnings`."""
    data: dict[str, Any] = {k: {"label": labels[k], "rounds": []} for k in envoys}
    for rnd in range(cfg["rounds"]):
        for key, env in envoys.items():
            tag = f"r{rnd + 1}-{key}"
            sat = saturation(env, tools, script, cfg, run_dir, tag)
            lat = fixed_rate(env, tools, mix, cfg, run_dir, tag)
            mem = memory(env)
            rss = mem.get("rss", 0)
            data[key]["rounds"].append({"sat": sat, "lat": lat, "rss": rss, "memory": mem})
            log(f"round {rnd + 1} {key:>4}: {sat['cpu_us_per_rq']:6.2f} µs/rq, "
                f"{sat['rps']:8.0f} rq/s, busy {sat['busy'] * 100:3.0f}%, "
                f"p50 {lat['p50_us']:6.0f} µs, p99 {lat['p99_us']:7.0f} µs "
                f"({lat['achieved_rps']:.0f} rq/s), RSS {rss / 2**20:.1f} MiB")
            warnings += round_warnings(f"round {rnd + 1} {key}", sat, lat, cfg["rate"])
    return data


def round_warnings(what: str, sat: dict[str, Any], lat: dict[str, Any], rate: float) -> list[str]:
    out = []
    if sat["errors"] or lat["errors"]:
        out.append(f"{what}: {sat['errors']} wrk errors, {lat['errors']} non-200 at the fixed rate")
    if sat["core_busy"] < 0.9:
        out.append(f"{what}: Envoy's CPU was busy only {sat['core_busy'] * 100:.0f}% of the time "
                   f"under wrk (wrk {sat['wrk_busy'] * 100:.0f}% of its CPU): requests/s is not "
                   "Envoy's limit there")
    elif sat["busy"] < 0.85:
        out.append(f"{what}: Envoy had only {sat['busy'] * 100:.0f}% of its CPU under wrk: other "
                   "processes took the rest, requests/s is low there")
    if lat["achieved_rps"] < 0.95 * rate:
        out.append(f"{what}: the fixed rate reached only {lat['achieved_rps']:.0f} of {rate:g} "
                   "requests/s")
    return out

#!/usr/bin/env python3
"""The benchmark behind BENCHMARKS.md (`make bench`): the real Envoy, one core, five variants.

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
  BENCH_MICRO=0        skip the criterion micro-benchmarks (also --no-micro)

The parts: workload.py (the mix, the variants, the color check), drivers.py (Envoy, wrk, oha,
node, criterion), report.py (the machine and the Markdown block).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import drivers
import report
import workload
from traffic_color_harness.envoy import Envoy, find_envoy
from traffic_color_harness.repo import REPO

WASM_OPT_FLAGS = ["--enable-bulk-memory", "--enable-bulk-memory-opt", "--enable-sign-ext",
                  "--enable-nontrapping-float-to-int", "--enable-mutable-globals"]


def env_num(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def settings() -> dict[str, Any]:
    """Durations and rates from the environment (BENCH_*)."""
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    return {
        "quick": quick,
        "rounds": int(env_num("BENCH_ROUNDS", 3)),
        "duration": env_num("BENCH_DURATION", 3 if quick else 8),
        "warmup": env_num("BENCH_WARMUP", 1 if quick else 2),
        "rate": env_num("BENCH_RATE", 5000),
        "rate_duration": env_num("BENCH_RATE_DURATION", 3 if quick else 8),
        "conns": int(env_num("BENCH_CONNECTIONS", 64)),
    }


def placement(tools: dict[str, Any], warnings: list[str]) -> str:
    """Envoy on CPU 0 and the load generators on CPU 1 when taskset and two CPUs are there;
    sets tools["envoy_cpu"], tools["load_cpu"] and the load average at the start."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        tools["envoy_cpu"], tools["load_cpu"] = 0, 1
        pinning = "pinned to CPU 0 (`taskset -c 0`); load generators on CPU 1"
    else:
        tools["envoy_cpu"], tools["load_cpu"] = None, None
        pinning = "not pinned (no taskset or a single CPU)"
        warnings.append("Envoy and the load generators were not pinned to separate CPUs.")
    tools["load_at_start"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    load1 = float(tools["load_at_start"].split()[0])
    if load1 > 0.5:
        warnings.append(f"The machine was not idle: load average {load1:.2f} at the start "
                        "(other work shares these cores; the figures are noisy).")
    return pinning


def module_sizes(wasm: Path, raw_wasm: Path | None, wasm_opt: str | None, run_dir: Path,
                 warnings: list[str]) -> dict[str, int]:
    """As shipped, cargo's before wasm-opt, and that one with -Oz for comparison."""
    sizes = {"wasm": wasm.stat().st_size}
    if raw_wasm is None:
        return sizes
    sizes["cargo"] = raw_wasm.stat().st_size
    if wasm_opt:
        dst = run_dir / "traffic_color.Oz.wasm"
        r = subprocess.run([wasm_opt, "-Oz", *WASM_OPT_FLAGS, str(raw_wasm), "-o", str(dst)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            sizes["cargo_Oz"] = dst.stat().st_size
        else:
            warnings.append(f"wasm-opt -Oz failed: {r.stderr.strip()[:300]}")
    return sizes


def command_line() -> str:
    """How this run was started, as BENCHMARKS.md quotes it: the BENCH_ knobs and the command."""
    knobs = [f"{k}={os.environ[k]}" for k in sorted(os.environ)
             if k.startswith("BENCH_") and k not in ("BENCH_COMMAND", "BENCH_OUT") and os.environ[k]]
    return "`" + " ".join(knobs + [os.environ.get("BENCH_COMMAND") or "python3 bench/run.py"]) + "`"


def find_tools() -> dict[str, Any] | None:
    """wrk, oha (both required) and wasm-opt; None, having said why, when one is missing."""
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    tools: dict[str, Any] = {
        "wrk": drivers.find_tool("WRK", "wrk"),
        "oha": drivers.find_tool("OHA", "oha", [cargo_bin / "oha"]),
        "wasm_opt": drivers.find_tool("WASM_OPT", "wasm-opt"),
    }
    for t in ("wrk", "oha"):
        if not tools[t]:
            print(f"{t} not found: `make bench` installs it", file=sys.stderr)
            return None
    return tools


def measure(variants: list, mix: list[dict[str, Any]], script: Path, tools: dict[str, Any],
            cfg: dict[str, Any], envoy_bin: str, run_dir: Path,
            warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Start every variant's Envoy, check the colors, run the rounds, stop the Envoys.
    Returns (per-variant rounds, the color check); None when the colors disagree."""
    envoys: dict[str, Envoy] = {}
    try:
        for key, _, filters in variants:
            envoys[key] = drivers.start_bench_envoy(key, workload.envoy_config_for(filters), run_dir,
                                                    envoy_bin, tools["envoy_cpu"])
        log(f"checking the colors of the {len(mix)} requests of the mix on every Envoy")
        colors = workload.check_colors(envoys, mix)
        if colors["mismatches"]:
            print("colors differ, not measuring:\n  " + "\n  ".join(colors["mismatches"]),
                  file=sys.stderr)
            return None
        log(f"colors agree; the mix is decided by {colors['distinct_rules']} distinct rules and the default")
        t_start = time.monotonic()
        data = drivers.run_rounds(envoys, {k: label for k, label, _ in variants}, tools, script, mix,
                                  cfg, run_dir, warnings, log)
        log(f"measured in {time.monotonic() - t_start:.0f} s")
        return data, colors
    finally:
        for e in envoys.values():
            e.stop()


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", default=str(REPO / "target/traffic_color.wasm"),
                    help="the filter as shipped (make wasm)")
    ap.add_argument("--cargo-wasm", default=str(REPO / "target/wasm32-wasip1/release/traffic_color.wasm"),
                    help="cargo's module before wasm-opt (variant C raw; skipped if missing)")
    ap.add_argument("--run-dir", default=str(REPO / "target/bench"))
    ap.add_argument("--no-micro", action="store_true",
                    help="skip the criterion micro-benchmarks (also BENCH_MICRO=0)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    do_micro = not args.no_micro and os.environ.get("BENCH_MICRO", "1") not in ("0", "")
    cfg = settings()
    out = os.environ.get("BENCH_OUT", str(REPO / "BENCHMARKS.md"))
    warnings: list[str] = []

    wasm = Path(args.wasm)
    if not wasm.is_file():
        print(f"no {wasm}: run `make wasm` first", file=sys.stderr)
        return 2
    tools = find_tools()
    if tools is None:
        return 2
    envoy_bin = find_envoy()
    pinning = placement(tools, warnings)
    run_dir = Path(args.run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)

    raw_wasm = Path(args.cargo_wasm) if Path(args.cargo_wasm).is_file() else None
    sizes = module_sizes(wasm, raw_wasm, tools["wasm_opt"], run_dir, warnings)
    rules = workload.RULES_TC.read_text(encoding="utf-8")
    variants = workload.variants(wasm, raw_wasm, rules)

    if do_micro:
        log("building the criterion benchmarks (benches/rules.rs)")
        if not drivers.micro_build(run_dir):
            print(f"cargo bench --no-run failed: see {run_dir / 'criterion-build.log'}",
                  file=sys.stderr)
            return 1

    mix = workload.load_mix()
    script = run_dir / "mix.lua"
    script.write_text(workload.wrk_script(mix), encoding="utf-8")

    log(f"starting {len(variants)} Envoys ({pinning})")
    measured = measure(variants, mix, script, tools, cfg, envoy_bin, run_dir, warnings)
    if measured is None:
        return 1
    data, colors = measured

    log("timing the module alone in Node's V8 (bench/node_host.js)")
    node = drivers.node_run(wasm, mix, colors["expect"], workload.node_configs(rules),
                            tools["envoy_cpu"], run_dir)
    micro = None
    if do_micro:
        log("running the criterion benchmarks")
        micro = drivers.micro_run(cfg["quick"], tools["envoy_cpu"], run_dir)

    results = {"variants": data, "sizes": sizes, "config": cfg, "pinning": pinning,
               "machine": report.machine_info(tools, envoy_bin), "mix": colors["mix"],
               "distinct_rules": colors["distinct_rules"], "warnings": warnings,
               "command": command_line(), "micro": micro, "node": node}
    block = report.render(results)
    (run_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report.write_report(out, block)
    print(block)
    log(f"results written to {out} (raw data: {run_dir / 'results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

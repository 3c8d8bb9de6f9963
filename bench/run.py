#!/usr/bin/env python3
"""The benchmark behind BENCHMARKS.md (`make bench`): the real Envoy, one core, these variants.

  A   no filter                        (Envoy's own cost: HTTP/1 parsing, routing, direct_response)
  B   Envoy Lua filter                 (bench/rules.lua: the 20 rules of bench/rules.tc by hand)
  C   traffic-color, 20 rules          (bench/rules.tc, jwt.trust = unverified)
  B2  Envoy Lua filter                 (bench/rules-regex.lua: bench/rules-regex.tc by hand)
  C2  traffic-color, 20 rules          (bench/rules-regex.tc: regexes without usable literals)
  D   traffic-color, 1 rule + default  (`header["x-canary"] == "true"`)
  E   traffic-color, 1 rule + default on user-agent, a header every request carries
  M   a minimal Rust proxy-wasm filter with D's rule (bench/minimal-filter/, built here): the floor
  F   traffic-color, C's rules plus two weighted splits and outcome metrics (issue 13)
  C0  C with the module built from an earlier commit (BENCH_BASELINE, default f2a6a64)
  Craw C with cargo's module before `make wasm` runs it through `wasm-opt -O3` (not in quick mode)

Every variant is its own Envoy (`--concurrency 1`, pinned to CPU 0 with taskset) answering
with `direct_response`, so no upstream hides the filter's cost; the route echoes the color the
filter set (`x-color: %REQ(x-version-route)%`). The load generators run pinned to CPU 1:

  * saturation: wrk, 1 thread, a fixed number of connections, cycling through bench/mix.json;
    Envoy CPU time (utime+stime of the whole process, /proc/<pid>/stat) over the requests it
    served (its own `downstream_rq_total` counter) gives CPU µs per request;
  * fixed rate: oha, one process per request of the mix, each holding rate/len(mix) with
    `--latency-correction` (so a stall is not hidden by the generator waiting), every request's
    latency collected from oha's CSV output and merged: p50/p99 of the whole mix;
  * memory: Envoy's RSS after its runs, with tcmalloc's heap in use and kept free.

Variants run in alternation, A B C ... A B C ..., for BENCH_ROUNDS rounds; the tables report
the median over rounds (and the spread). Before measuring, every request of the mix is sent
once to each Envoy and the colors are checked against what each variant must give (mix.json's
`expect` and `expect_regex`, the one rule of D/E/M, F's weights), else the run fails and
writes nothing. Then bench/node_host.js times each module alone in Node's V8, counts its host
calls, and times one program per rule kind. Last, bench/instructions.py starts each variant's
Envoy again, alone, under valgrind's callgrind, and counts the instructions all its threads
execute per request (a keep-alive connection, after a warm-up): a second measure, which a busy
machine does not move.

Environment (all optional):
  BENCH_QUICK=1        short runs (3 rounds of 3 s, no Craw, fewer Node iterations)
  BENCH_ROUNDS         rounds (default 3; at least 3 is what BENCHMARKS.md should show)
  BENCH_DURATION       seconds of each measured wrk run (default 8; quick 3)
  BENCH_WARMUP         seconds of wrk before each measured run (default 2; quick 1)
  BENCH_RATE           the fixed rate, requests/s, for latency (default 5000)
  BENCH_RATE_DURATION  seconds of each fixed-rate run (default 8; quick 3)
  BENCH_CONNECTIONS    wrk connections (default 64)
  BENCH_BASELINE       the commit variant C0 is built from (default f2a6a64; empty: no C0)
  BENCH_OUT            where to write the results (default BENCHMARKS.md; `-` = stdout only)
  ENVOY_BIN, WRK, OHA, WASM_OPT   the binaries (defaults: the venv's Envoy, PATH, ~/.cargo/bin)
  BENCH_MICRO=0        skip the criterion micro-benchmarks (also --no-micro)
  BENCH_INSTR=0        skip the instruction counts under callgrind (skipped, with a warning,
                       when valgrind is missing)
  BENCH_INSTR_REQUESTS requests counted per variant under callgrind (default 520: 20 passes of the mix)

The parts: workload.py (the mix, the variants, the color check), builds.py (the minimal filter
and the baseline module), drivers.py (Envoy, wrk, oha, node, criterion), instructions.py
(callgrind), report.py (the machine and the Markdown block).
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

import builds
import drivers
import instructions
import report
import workload
from traffic_color_harness.envoy import Envoy, find_envoy
from traffic_color_harness.process import HarnessError
from traffic_color_harness.repo import REPO

WASM_OPT_FLAGS = builds.WASM_OPT_FLAGS
DEFAULT_BASELINE = "f2a6a64"


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
        "baseline": os.environ.get("BENCH_BASELINE", DEFAULT_BASELINE),
        "node_iterations": 20_000 if quick else 100_000,
        "node_repeats": 3 if quick else 5,
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


def build_modules(cfg: dict[str, Any], wasm_opt: str, raw_wasm: Path | None,
                  run_dir: Path) -> dict[str, Path | None] | None:
    """The minimal filter and the baseline module (builds.py); None, having said why, when a
    build fails."""
    log_path = run_dir / "builds.log"
    modules: dict[str, Path | None] = {}
    try:
        log("building the minimal filter (bench/minimal-filter/)")
        modules["minimal"] = builds.minimal(wasm_opt, log_path)
        if cfg["baseline"]:
            log(f"building traffic-color at {cfg['baseline']} (once per commit: several minutes)")
            modules["baseline"] = builds.baseline(cfg["baseline"], wasm_opt, log_path)
        if raw_wasm is not None and builds.WASM_OPT_ARGS != ["-O3"]:
            # The trade-off of the shipped wasm-opt arguments, measured every run.
            modules["o3"] = builds.wasm_opt(wasm_opt, raw_wasm, run_dir / "traffic_color.O3.wasm",
                                            log_path, ["-O3"])
    except builds.BuildError as e:
        print(str(e), file=sys.stderr)
        return None
    return modules


def memory_probe(modules: dict[str, Path | None], mix: list[dict[str, Any]], tools: dict[str, Any],
                 envoy_bin: str, run_dir: Path) -> dict[str, dict[str, int]]:
    """Envoy's memory with C's rules, the module as shipped and through plain `wasm-opt -O3`,
    each started alone, sent the mix once, then read: what the shipped wasm-opt arguments save."""
    out: dict[str, dict[str, int]] = {}
    rules = workload.programs()["C"]
    for key in ("wasm", "o3"):
        module = modules.get(key)
        if module is None:
            continue
        filters = [workload.wasm_filter(module, workload.filter_config(rules), f"probe_{key}")]
        env = drivers.start_bench_envoy(f"probe-{key}", workload.envoy_config_for(filters), run_dir,
                                        envoy_bin, tools["envoy_cpu"])
        try:
            for i, req in enumerate(mix):
                workload.send(env.port, req, workload.request_id(i))
            time.sleep(1.0)
            out[key] = drivers.memory(env)
        finally:
            env.stop()
    return out


def count_instructions(variants: list, mix: list[dict[str, Any]], colors: dict[str, Any],
                       tools: dict[str, Any], envoy_bin: str, run_dir: Path,
                       warnings: list[str]) -> dict[str, Any] | None:
    """bench/instructions.py over the variants; None, with a warning, when valgrind is missing
    or the count fails (the rest of the run stands)."""
    vg = instructions.find_valgrind()
    if vg is None:
        warnings.append("valgrind (callgrind_control) not found: no instruction counts "
                        "(`make bench-tools` installs it; BENCH_INSTR=0 skips them).")
        return None
    log("counting Envoy's instructions per request under callgrind (bench/instructions.py)")
    try:
        return instructions.measure(variants, mix, [m["rule"] for m in colors["mix"]], vg,
                                    envoy_bin, tools["envoy_cpu"], run_dir, log)
    except (instructions.InstrError, HarnessError, OSError, subprocess.TimeoutExpired) as e:
        warnings.append(f"The instruction counts under callgrind failed: {str(e)[:500]}")
        return None


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
    if not tools["wasm_opt"]:
        print("wasm-opt not found: `make bench` installs it (WASM_OPT)", file=sys.stderr)
        return None
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
    do_instr = os.environ.get("BENCH_INSTR", "1") not in ("0", "")
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
    modules = build_modules(cfg, tools["wasm_opt"], raw_wasm, run_dir)
    if modules is None:
        return 1
    modules.update(wasm=wasm, raw=None if cfg["quick"] else raw_wasm)
    for key in ("minimal", "baseline"):
        if modules.get(key):
            sizes[key] = modules[key].stat().st_size
    variants = workload.variants(modules, cfg["baseline"])

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

    log("Envoy's memory with the module as shipped and through plain wasm-opt -O3")
    probe = memory_probe(modules, mix, tools, envoy_bin, run_dir)
    log("timing the module alone in Node's V8 (bench/node_host.js)")
    node = drivers.node_run(workload.node_variants(modules, colors["expect"]), mix,
                            tools["envoy_cpu"], run_dir, cfg["node_iterations"], cfg["node_repeats"])
    instr = None
    if do_instr:
        instr = count_instructions(variants, mix, colors, tools, envoy_bin, run_dir, warnings)
    micro = None
    if do_micro:
        log("running the criterion benchmarks")
        micro = drivers.micro_run(cfg["quick"], tools["envoy_cpu"], run_dir)

    results = {"variants": data, "sizes": sizes, "config": cfg, "pinning": pinning,
               "machine": report.machine_info(tools, envoy_bin), "mix": colors["mix"],
               "distinct_rules": colors["distinct_rules"], "warnings": warnings,
               "command": command_line(), "micro": micro, "node": node, "memory_probe": probe,
               "instructions": instr,
               "wasm_opt_args": " ".join(builds.WASM_OPT_ARGS),
               "kinds": {k: label for k, (label, _, _) in workload.KINDS.items()},
               "features": {k: label for k, (label, _) in workload.FEATURES.items()}}
    block = report.render(results)
    (run_dir / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report.write_report(out, block)
    print(block)
    log(f"results written to {out} (raw data: {run_dir / 'results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

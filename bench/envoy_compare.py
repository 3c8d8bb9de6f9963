#!/usr/bin/env python3
"""Two builds of the module side by side in Envoy, against no filter: Envoy CPU µs per request
at saturation (the measure `make bench` reports), without the whole benchmark.

  .venv/bin/python bench/envoy_compare.py --before OLD.wasm --after target/traffic_color.wasm

Variants: A (no filter), and the 20 rules (C) and the one rule (D) with each module. Envoy runs
with one worker pinned to CPU 0 and wrk on CPU 1, as in `make bench`; the variants alternate
for `--rounds` rounds and the medians are printed, with (C − A) and (D − A): what each module
adds over no filter. `--minimal` adds the minimal one-rule filter (M, the floor; bench/builds.py
builds it at target/bench-build/minimal_filter.wasm) and prints (D − A)/(M − A) for each module.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import drivers
import workload
from traffic_color_harness.envoy import find_envoy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--after", required=True, type=Path)
    ap.add_argument("--minimal", type=Path, help="the minimal filter's module: adds variant M")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--one-rule-only", action="store_true", help="leave out the 20 rules (C)")
    ap.add_argument("--seconds", type=float, default=6)
    args = ap.parse_args()

    wrk = drivers.find_tool("WRK", "wrk")
    if not wrk:
        print("wrk not found (make bench-tools)", file=sys.stderr)
        return 2
    tools = {"wrk": wrk, "envoy_cpu": 0, "load_cpu": 1}
    cfg = {"warmup": 1, "duration": args.seconds, "conns": 64}
    rules = workload.RULES_TC.read_text(encoding="utf-8")
    variants = {"A": []}
    for label, wasm in (("before", args.before), ("after", args.after)):
        if not args.one_rule_only:
            variants[f"C {label}"] = [workload.wasm_filter(wasm, workload.filter_config(rules), f"c_{label}")]
        variants[f"D {label}"] = [workload.wasm_filter(wasm, workload.filter_config(workload.ONE_RULE),
                                                       f"d_{label}")]
    if args.minimal:
        variants["M"] = [workload.wasm_filter(args.minimal, None, "m")]
    results: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        script = run_dir / "mix.lua"
        script.write_text(workload.wrk_script(workload.load_mix()), encoding="utf-8")
        envoys = {}
        try:
            for k, filters in variants.items():
                envoys[k] = drivers.start_bench_envoy(k.replace(" ", "-"), workload.envoy_config_for(filters),
                                                      run_dir, find_envoy(), 0)
            for r in range(args.rounds):
                for k, env in envoys.items():
                    sat = drivers.saturation(env, tools, script, cfg, run_dir, f"{k.replace(' ', '-')}-{r}")
                    if sat["errors"]:
                        raise RuntimeError(f"{k}: {sat['errors']} errors")
                    results[k].append(sat["cpu_us_per_rq"])
        finally:
            for env in envoys.values():
                env.stop()
    med = {k: statistics.median(v) for k, v in results.items()}
    print("| variant | Envoy CPU µs/request (median) | rounds | over A |")
    print("|---|---|---|---|")
    for k, v in results.items():
        over = "" if k == "A" else f"{med[k] - med['A']:+.2f}"
        print(f"| {k} | {med[k]:.2f} | {', '.join(f'{x:.1f}' for x in v)} | {over} |")
    # Each round's variants run back to back, so a round's (X − A) is less exposed to a slow or
    # fast spell of a shared machine than the difference of medians taken over all rounds.
    print("\nper round, over that round's A: " + "; ".join(
        f"{k} " + ", ".join(f"{x - y:+.1f}" for x, y in zip(v, results["A"]))
        for k, v in results.items() if k != "A"))
    for v in ("C", "D"):
        if f"{v} before" not in med:
            continue
        b, a = med[f"{v} before"] - med["A"], med[f"{v} after"] - med["A"]
        print(f"\n{v}: adds {b:.2f} µs over no filter before, {a:.2f} after ({a / b:.2f}×)")
    if "M" in med:
        m = med["M"] - med["A"]
        for label in ("before", "after"):
            print(f"\n(D − A)/(M − A) {label}: {(med[f'D {label}'] - med['A']) / m:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

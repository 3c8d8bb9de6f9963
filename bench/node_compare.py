#!/usr/bin/env python3
"""Two builds of the module side by side in Node's V8 (bench/node_host.js, no Envoy): what a
change costs per request in the module's own work and in host calls, without a full `make bench`.

  .venv/bin/python bench/node_compare.py --before OLD.wasm --after target/traffic_color.wasm

Runs the benchmark mix through variants C (20 rules), D (1 rule) and E (1 rule on user-agent)
`--rounds` times, the two modules alternating round by round so that a noisy neighbour hurts both
alike, and prints per variant the median time of one request and of its end-of-stream callback
(`on_log`) alone, the mean time per request, and the host calls per request. The colors each
module gives are checked against the mix (node_host.js exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import drivers
import workload


def expected(mix: list[dict]) -> dict[str, list[str]]:
    return {
        "C": [r["expect"] for r in mix],
        "D": ["canary" if r["headers"].get("x-canary") == "true" else "stable" for r in mix],
        "E": ["canary" if r["headers"].get("user-agent", "").startswith("ShopApp/") else "stable"
              for r in mix],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--after", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=None, help="pin node to this CPU (taskset)")
    ap.add_argument("--variants", default="C,D,E",
                    help="comma-separated: C, D, E, and the per-kind ones: C2, kind:regex_no_literal, ...")
    args = ap.parse_args()
    chosen = args.variants.split(",")

    mix = workload.load_mix()
    want = expected(mix)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for label, wasm in (("before", args.before), ("after", args.after)):
                variants = {k: v for k, v in workload.node_variants({"wasm": wasm}, want).items()
                            if k in chosen}
                r = drivers.node_run(variants, mix, args.cpu, Path(tmp), repeats=1)
                if r is None:
                    print("node not found", file=sys.stderr)
                    return 2
                for variant, v in r.items():
                    runs.setdefault((label, variant), []).append(v)
    print("| variant | per request, median of calls: before → after µs | on_log alone: before → after µs "
          "| per request, mean: before → after µs | host calls per request |")
    print("|---|---|---|---|---|")
    for variant in chosen:
        b, a = runs[("before", variant)], runs[("after", variant)]

        def cell(key: str) -> str:
            mb = statistics.median(x[key] for x in b)
            ma = statistics.median(x[key] for x in a)
            return f"{mb:.2f} → {ma:.2f} ({ma - mb:+.2f})"

        print(f"| {variant} | {cell('median_us')} | {cell('on_log_us')} | {cell('us')} "
              f"| {sum(b[0]['calls'].values()):g} → {sum(a[0]['calls'].values()):g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Envoy's memory with given modules, quickly and repeatably (issue 12's memory target: Envoy's
RSS with traffic-color at most 8 MiB above the minimal filter M's). No load generator: each
Envoy (`--concurrency 1`, pinned to one CPU as `make bench` pins it) is started alone, sent
bench/mix.json once, left for a second, read (bench/drivers.py `memory`) and stopped; the
modules run in alternation, ROUNDS times, and the medians are printed.

  .venv/bin/python bench/memory_probe.py [--rounds 3] [--rules C] \\
      M=target/bench-build/minimal_filter.wasm C=target/traffic_color.wasm [LABEL=MODULE ...]

A module labelled M (or any label starting with "M") gets no configuration, as the minimal filter
of `make bench`; every other module gets the program of `--rules` (bench/rules.tc by default).
`RSS − M` is against the first module whose label starts with M. Per module it also prints the
size and the largest function body (bench/wasm_funcs.py), since what V8's optimizing compiler
takes while compiling a function grows faster than it; and beside drivers.py's figures, the
peak RSS and tcmalloc's own report (admin /memory/tcmalloc): its transfer cache (freed memory
that `heap freed, kept` does not count), its metadata, and the heap at its peak.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import drivers
import wasm_funcs
import workload
from traffic_color_harness import admin
from traffic_color_harness.envoy import find_envoy

MIB = 2**20
COLUMNS = [("rss", "RSS"), ("rss_anon", "anon"), ("heap_allocated", "heap in use"),
           ("heap_free", "heap freed, kept"), ("jit_code", "jit code"), ("wasm_memory", "wasm mem"),
           ("hwm", "peak RSS"), ("transfer_cache", "transfer cache"),
           ("malloc_metadata", "malloc metadata"), ("pagemap", "pagemap"),
           ("peak_heap", "heap at peak"), ("peak_in_use", "in use at peak")]


# From tcmalloc's own report (admin /memory/tcmalloc): the heap at its peak (what the module's
# compilation reached) and what it held then, and the freed memory `heap_free` does not count.
TCMALLOC = {"Actual memory used at peak": "peak_heap", "Estimated in-use at peak": "peak_in_use",
            "Bytes in transfer cache freelist": "transfer_cache",
            "Bytes in central cache freelist": "central_cache",
            "Bytes in malloc metadata": "malloc_metadata", "Pagemap bytes used": "pagemap"}


def tcmalloc(env) -> dict[str, int]:
    code, body = admin.get(env.admin_port, "/memory/tcmalloc")
    out: dict[str, int] = {}
    if code != 200:
        return out
    for line in body.decode("utf-8", "replace").splitlines():
        m = re.match(r"MALLOC:\s+[=+]?\s*(\d+)\s+\(\s*[\d.]+ MiB\)\s+(.*)$", line)
        if m and m.group(2).strip() in TCMALLOC:
            out[TCMALLOC[m.group(2).strip()]] = int(m.group(1))
    return out


def probe_once(label: str, module: Path, rules: str | None, mix: list, envoy_bin: str,
               cpu: int | None, settle: float, run_dir: Path, n: int) -> dict[str, int]:
    config = None if rules is None else workload.filter_config(rules)
    filters = [workload.wasm_filter(module, config, f"probe_{n}")]
    env = drivers.start_bench_envoy(f"probe-{n}", workload.envoy_config_for(filters), run_dir,
                                    envoy_bin, cpu)
    try:
        for i, req in enumerate(mix):
            status, _ = workload.send(env.port, req, workload.request_id(i))
            if status != 200:
                raise RuntimeError(f"{label}: request {i} ({req['name']}) answered {status}")
        time.sleep(settle)
        out = drivers.memory(env)
        out.update(tcmalloc(env))
        # The peak RSS: what the module's compilation reached, whatever tcmalloc kept of it.
        for line in Path(f"/proc/{env.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1]) * 1024
        return out
    finally:
        env.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="+", help="LABEL=PATH (a label starting with M: no configuration)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rules", default="C", help="the program of every non-M module (workload.programs())")
    ap.add_argument("--cpu", type=int, default=0, help="pin each Envoy to this CPU (-1: do not pin)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between the mix and the reading")
    ap.add_argument("--json", type=Path, help="also write every reading here")
    a = ap.parse_args()

    mods: list[tuple[str, Path]] = []
    for spec in a.modules:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = Path(spec).stem, spec
        p = Path(path)
        if not p.is_file():
            print(f"no such module: {p}", file=sys.stderr)
            return 2
        mods.append((label, p))
    rules = workload.programs()[a.rules]
    mix = workload.load_mix()
    envoy_bin = find_envoy()
    cpu = None if a.cpu < 0 else a.cpu
    readings: dict[str, list[dict[str, int]]] = {label: [] for label, _ in mods}
    n = 0
    with tempfile.TemporaryDirectory(prefix="memory-probe-") as tmp:
        for rnd in range(a.rounds):
            for label, path in mods:
                n += 1
                m = probe_once(label, path, None if label.startswith("M") else rules, mix,
                               envoy_bin, cpu, a.settle, Path(tmp), n)
                readings[label].append(m)
                print(f"round {rnd + 1} {label:>12}: RSS {m.get('rss', 0) / MIB:6.1f}  "
                      f"freed-kept {m.get('heap_free', 0) / MIB:5.1f}  "
                      f"in use {m.get('heap_allocated', 0) / MIB:5.1f} MiB", flush=True)
    med = {label: {k: statistics.median(r.get(k, 0) for r in rs) for k, _ in COLUMNS}
           for label, rs in readings.items()}
    base = next((label for label, _ in mods if label.startswith("M")), None)
    print(f"\nmedians of {a.rounds} rounds, MiB (rules {a.rules} for every module but M):")
    head = ["module", "bytes", "largest fn", *[h for _, h in COLUMNS], "RSS − M", "freed − M"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, path in mods:
        data = path.read_bytes()
        largest = max((s for _, s in wasm_funcs.functions(data)["bodies"]), default=0)
        row = [label, f"{len(data):,}", f"{largest:,}", *[f"{med[label][k] / MIB:.1f}" for k, _ in COLUMNS]]
        for k in ("rss", "heap_free"):
            row.append(f"{(med[label][k] - med[base][k]) / MIB:+.1f}" if base else "")
        print("| " + " | ".join(row) + " |")
    if a.json:
        a.json.write_text(json.dumps({"modules": {label: str(p) for label, p in mods},
                                      "readings": readings}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regex cost in the module alone, in Node's V8 (`--no-liftoff`, as Envoy configures V8).

For each pattern and input size, a one-rule program `header["x-v"] =~ PATTERN` runs through
bench/node_host.js beside a baseline with the same host calls (`header["x-v"] == "zzz"`); the
difference is the regex's cost per request. Inputs are chosen so the pattern does not match
early (the whole value is scanned). The minimum of --repeats rounds (the figure least
disturbed by other load; the rounds interleave the variants). Expected colors come from
Python's `re` (these patterns mean the same there), so a wrong answer fails the run.

  python3 bench/regex_v8.py --wasm after=target/traffic_color.wasm [--wasm before=old.wasm]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0 Safari/537.36")


def fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def ab(size: int) -> str:
    rng = random.Random(size)
    return "".join(rng.choice("ab") for _ in range(size))


# (label, pattern, input of a given size): no literal the shortcuts could use, except where
# the label says so; each input makes the pattern scan the whole value.
CASES = [
    ("case-insensitive alternation", r"(?i)(bot|crawler|spider|slurp)", lambda n: fill(UA, n)),
    ("class alternation", r"[Mm]obile|[Tt]ablet|[Aa]ndroid", lambda n: fill(UA, n)),
    ("version, anchored", r"^[0-9]+\.[0-9]+\.[0-9]+-rc\.[0-9]+$",
     lambda n: "1.2.3-rc." + "7" * (n - 9)),
    ("word boundaries", r"\b(iPhone|iPad|Android)\b", lambda n: fill(UA, n)),
    ("a 2^12-state DFA (131 KB)", r"[ab]*a[ab]{11}c", ab),
    ("\\w{1000} (limit of a count)", r"\w{1000}", lambda n: fill(UA, n)),
]
SIZES = {"100 B": 104, "8 KB": 8192, "60 KB": 61440}

# The worst program the compiler accepts for one request: MAX_REGEX_SCANS (16) distinct regex
# tests on one value, as many of them with a 131 KB DFA visited at random as the program's
# 1 MiB of automata allows (7), the rest 2^8-state ones, none matching, so every rule runs to
# the end.
WORST_RULES = ([rf"[ab]*a[ab]{{11}}c{x}" for x in "defghij"]
               + [rf"[ab]*a[ab]{{7}}c{x}" for x in "klmnopqrs"])
ITERATIONS = {104: 100000, 8192: 5000, 61440: 600}


def program(test: str) -> str:
    return f'match {{ header["x-v"] {test} }} -> "hit"\ndefault -> "miss"\n'


def quote(pattern: str) -> str:
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run(node: str, wasm: str, size: int, repeats: int) -> dict[str, float]:
    variants = {"baseline": {"config": json.dumps({"rules": program('== "zzz"')}),
                             "expect": ["miss"]}}
    requests = []
    for i, (label, pattern, make) in enumerate(CASES):
        value = make(size)
        expect = "hit" if re.search(pattern, value) else "miss"
        requests.append(value)
        variants[label] = {"config": json.dumps({"rules": program("=~ " + quote(pattern))}),
                           "expect": [expect], "value": value}
    out: dict[str, list[float]] = {k: [] for k in variants}
    calls: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"

        def once(label: str, iterations: int) -> float:
            v = variants[label]
            value = v.get("value", CASES[0][2](size))
            spec = {"iterations": iterations,
                    "requests": [{"name": label, "headers": [
                        [":method", "GET"], [":path", "/"], [":authority", "example.com"],
                        ["x-v", value]]}],
                    "variants": {label: {"wasm": wasm, "config": v["config"], "expect": v["expect"]}}}
            path.write_text(json.dumps(spec))
            r = subprocess.run([node, "--no-liftoff", str(BENCH / "node_host.js"),
                                str(path)], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                sys.exit(f"{label} @ {size}: node_host.js failed:\n{r.stdout}{r.stderr}")
            return json.loads(r.stdout.splitlines()[-1])["us_per_request"]

        # A slow engine on a long value can take seconds per request: size each run to about
        # a second of timing, and above 0.2 s per request keep the one calibration run.
        for label in variants:
            first = once(label, 3)
            calls[label] = (None if first > 200_000 else
                            max(3, min(ITERATIONS[size], int(1e6 / max(first, 0.01)))))
            if calls[label] is None:
                out[label].append(first)
        # Rounds over every variant, so a burst of load elsewhere hits them alike; the minimum
        # of each is the figure least disturbed by other processes on a shared machine.
        for _ in range(repeats):
            for label, n in calls.items():
                if n is not None:
                    out[label].append(once(label, n))
    base = min(out.pop("baseline"))
    return {k: min(v) - base for k, v in out.items()}


def worst_program(node: str, wasm: str, size: int, repeats: int) -> float:
    """µs per request of the 32-rule worst program on a `size`-byte value (no baseline taken
    off: the host calls are a few µs)."""
    rules = "".join(f'match {{ header["x-v"] =~ {quote(p)} }} -> "hit"\n' for p in WORST_RULES)
    value = ab(size)
    # Every rule needs a `c`, which a value of `a`s and `b`s lacks. (Python's
    # backtracking `re` would take minutes on `[ab]*a[ab]{11}cd` over 59 KiB.)
    assert set(value) <= {"a", "b"}
    spec = {"iterations": 20, "requests": [{"name": "worst", "headers": [
        [":method", "GET"], [":path", "/"], [":authority", "example.com"], ["x-v", value]]}],
        "variants": {"worst": {"wasm": wasm, "config": json.dumps({"rules": rules + 'default -> "miss"\n'}),
                               "expect": ["miss"]}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        runs = []
        for _ in range(repeats):
            r = subprocess.run([node, "--no-liftoff", str(BENCH / "node_host.js"),
                                str(path)], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                sys.exit(f"worst program: node_host.js failed:\n{r.stdout}{r.stderr}")
            runs.append(json.loads(r.stdout.splitlines()[-1])["us_per_request"])
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wasm", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worst", action="store_true",
                    help="only the worst accepted program on a 59 KiB value (last --wasm)")
    args = ap.parse_args()
    if args.worst:
        path = args.wasm[-1].split("=", 1)[1]
        us = worst_program(shutil.which("node") or sys.exit("node not found"), path, 60416,
                           args.repeats)
        print(f"worst accepted program ({len(WORST_RULES)} regex rules), 59 KiB value: "
              f"{us:.0f} µs per request")
        return
    node = shutil.which("node") or sys.exit("node not found")
    results = {}
    for spec in args.wasm:
        label, path = spec.split("=", 1)
        results[label] = {s: run(node, path, n, args.repeats) for s, n in SIZES.items()}
    labels = list(results)
    print("| pattern | input | " + " | ".join(f"{l} µs" for l in labels) + " | µs per 100 B |")
    print("|---|---|" + "---|" * len(labels) + "---|")
    for name, _, _ in CASES:
        for s, n in SIZES.items():
            cells = [f"{results[l][s][name]:.2f}" for l in labels]
            per100 = results[labels[-1]][s][name] * 100 / n
            print(f"| `{name}` | {s} | " + " | ".join(cells) + f" | {per100:.3f} |")
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()

"""What the benchmark writes: the machine it ran on, and the results as the Markdown block
between BEGIN and END in BENCHMARKS.md (the rest of that file is prose, kept as it is)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from traffic_color_harness.repo import REPO

from workload import KEYS

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


# ---------------------------------------------------------------------------- the machine


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
    git = sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
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


# ------------------------------------------------------------------------------- numbers


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_spread(xs: list[float], nd: int = 1) -> str:
    return f"{med(xs):.{nd}f} ({min(xs):.{nd}f}–{max(xs):.{nd}f})"


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def row(*cells: object) -> str:
    """One row of a Markdown table."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def column(results: dict[str, Any], key: str, metric: str, part: str) -> list[float]:
    """One metric of one variant over the rounds; `part` is "sat" or "lat"."""
    return [r[part][metric] for r in results["variants"][key]["rounds"]]


def cpu_med(results: dict[str, Any], key: str) -> float:
    """Envoy CPU µs per request at saturation, median over rounds."""
    return med(column(results, key, "cpu_us_per_rq", "sat"))


# -------------------------------------------------------------------------------- sections


def render(results: dict[str, Any]) -> str:
    """The block for BENCHMARKS.md. Also stores the ratios in results["ratios"], so that
    results.json carries them."""
    lines = [BEGIN, ""]
    for section in (machine_section, results_section, ratios_section, wasm_section, mix_section,
                    rounds_section, node_section, micro_section, warnings_section):
        lines += section(results)
    lines += ["", END]
    return "\n".join(lines) + "\n"


def machine_section(results: dict[str, Any]) -> list[str]:
    cfg, mi = results["config"], results["machine"]
    return [f"_Written by `bench/run.py` on {mi['date']} — {results['command']}; "
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
            f"| traffic-color | commit {mi['git']} |", ""]


def results_section(results: dict[str, Any]) -> list[str]:
    v, sizes, cfg = results["variants"], results["sizes"], results["config"]
    lines = ["### Results", "",
             f"Median of {cfg['rounds']} rounds, (min–max) over rounds. Saturation: wrk, 1 thread, "
             f"{cfg['conns']} connections, {cfg['duration']:g} s per run after {cfg['warmup']:g} s of "
             f"warm-up. Fixed rate: {cfg['rate']:g} requests/s in all, oha with latency correction, "
             f"{cfg['rate_duration']:g} s per run.", "",
             "| variant | Envoy CPU µs/request (saturation) | requests/s (saturation) "
             "| Envoy busy | p50 µs @ fixed rate | p99 µs @ fixed rate "
             "| Envoy CPU µs/request @ fixed rate | Envoy RSS MiB | .wasm bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k in (k for k in KEYS if k in v):
        def col(metric: str, part: str) -> list[float]:
            return column(results, k, metric, part)
        wasm = {"C": sizes["wasm"], "D": sizes["wasm"], "E": sizes["wasm"],
                "Craw": sizes.get("cargo")}.get(k)
        lines.append(row(
            v[k]["label"], fmt_spread(col("cpu_us_per_rq", "sat"), 2), fmt_spread(col("rps", "sat"), 0),
            f"{med(col('busy', 'sat')) * 100:.0f}%", fmt_spread(col("p50_us", "lat"), 0),
            fmt_spread(col("p99_us", "lat"), 0), fmt_spread(col("cpu_us_per_rq", "lat"), 1),
            f"{med([r['rss'] for r in v[k]['rounds']]) / 2**20:.1f}", f"{wasm:,}" if wasm else "—"))
    return lines


def ratios_section(results: dict[str, Any]) -> list[str]:
    a, b, c, d, e = (cpu_med(results, k) for k in ("A", "B", "C", "D", "E"))
    added_c, added_d, added_b, added_e = c - a, d - a, b - a, e - a
    r = results["ratios"] = {
        "C/A": c / a, "C/B": c / b, "C/D": c / d,
        "added C over A / added D over A": added_c / added_d if added_d > 0 else float("nan"),
        "added C over A / added E over A": added_c / added_e if added_e > 0 else float("nan"),
        "added C over A / added B over A": added_c / added_b if added_b > 0 else float("nan"),
    }
    wasm = results["sizes"]["wasm"]
    t1 = c <= b
    t2 = r["added C over A / added D over A"] <= 1.25
    t3 = wasm < 400 * 1024
    mark = {True: "**reached**", False: "**not reached**"}
    return ["", "### Ratios (Envoy CPU µs per request at saturation, medians)", "",
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
            f"| the .wasm stays under 400 KiB | {wasm:,} bytes = {wasm / 1024:.1f} KiB "
            f"| {mark[t3]} |", ""]


def wasm_section(results: dict[str, Any]) -> list[str]:
    sizes = results["sizes"]
    lines = ["### The .wasm", "", "| module | bytes | KiB |", "|---|---|---|",
             f"| `target/traffic_color.wasm`, as `make wasm` ships it (cargo, then `wasm-opt -O3`) "
             f"| {sizes['wasm']:,} | {sizes['wasm'] / 1024:.1f} |"]
    for key, label in (("cargo", "cargo's module, before wasm-opt"),
                       ("cargo_Oz", "cargo's module after `wasm-opt -Oz` instead")):
        if sizes.get(key):
            lines.append(f"| {label} | {sizes[key]:,} | {sizes[key] / 1024:.1f} |")
    if "Craw" in results["variants"]:
        co, c = cpu_med(results, "Craw"), cpu_med(results, "C")
        lines += ["", f"C with cargo's module before wasm-opt: {co:.2f} µs per request against C's "
                      f"{c:.2f} µs ({(co - c) / c * 100:+.1f}%)."]
    return lines


def mix_section(results: dict[str, Any]) -> list[str]:
    lines = ["", "### The request mix", "",
             f"{len(results['mix'])} requests (bench/mix.json), sent in turn. Before measuring, each was sent "
             "once to every Envoy: B and C gave every request the same color, the one mix.json "
             "expects. The rule of bench/rules.tc that decided each (from traffic-color's own "
             "`rule_hits_total` counters):", "",
             "| request | color | decided by |", "|---|---|---|"]
    for m in results["mix"]:
        lines.append(f"| {m['name']} | {m['color']} | {m['rule']} |")
    return lines + ["", f"{results['distinct_rules']} of the 20 rules, and the default, decide at least one "
                        "request of the mix.", ""]


def rounds_section(results: dict[str, Any]) -> list[str]:
    v = results["variants"]
    lines = ["### Every round", "",
             "| round | variant | CPU µs/rq (sat.) | req/s (sat.) | Envoy busy | CPU 0 busy | wrk busy "
             "| p50 µs | p99 µs | CPU µs/rq (fixed) | fixed-rate requests | wrk errors | oha non-200 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i in range(results["config"]["rounds"]):
        for k in (k for k in KEYS if k in v):
            sat, lat = v[k]["rounds"][i]["sat"], v[k]["rounds"][i]["lat"]
            lines.append(row(
                i + 1, k, f"{sat['cpu_us_per_rq']:.2f}", f"{sat['rps']:.0f}", f"{sat['busy'] * 100:.0f}%",
                f"{sat['core_busy'] * 100:.0f}%", f"{sat['wrk_busy'] * 100:.0f}%", f"{lat['p50_us']:.0f}",
                f"{lat['p99_us']:.0f}", f"{lat['cpu_us_per_rq']:.1f}", lat["n"], sat["errors"],
                lat["errors"]))
    return lines


def node_section(results: dict[str, Any]) -> list[str]:
    node = results.get("node")
    if not node:
        return []
    nc, nd, ne = (node[k]["us"] for k in ("C", "D", "E"))
    c, e = cpu_med(results, "C"), cpu_med(results, "E")
    d = cpu_med(results, "D")
    lines = ["", "### The module alone, in Node's V8 (no Envoy)", "",
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
    return lines + ["", f"Here C − E = {nc - ne:+.2f} µs and E − D = {ne - nd:+.2f} µs per request; in "
                        f"Envoy above, C − E = {c - e:+.2f} µs and E − D = {e - d:+.2f} µs. C − E is "
                        "what evaluating 20 rules costs beyond one rule that reads a value; E − D is "
                        "what it costs the host to hand the module one value at all."]


def micro_section(results: dict[str, Any]) -> list[str]:
    micro = results.get("micro")
    if not micro:
        return []
    lines = ["", "### Native micro-benchmarks (criterion, `benches/rules.rs`)", "",
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
    return lines


def warnings_section(results: dict[str, Any]) -> list[str]:
    warn = results["warnings"]
    return ["", "### Warnings", ""] + [f"- {w}" for w in warn] if warn else []


def write_report(out: str, block: str) -> None:
    """Replace the block between BEGIN and END in `out` (append it when there is none); `-`
    prints it only."""
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

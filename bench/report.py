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


def rss_med(results: dict[str, Any], key: str, part: str = "rss") -> float:
    """A memory figure of one variant (bytes), median over rounds."""
    return med([r.get("memory", {}).get(part, r.get("rss", 0) if part == "rss" else 0)
                for r in results["variants"][key]["rounds"]])


def keys(results: dict[str, Any]) -> list[str]:
    return [k for k in KEYS if k in results["variants"]]


MARK = {True: "**reached**", False: "**not reached**"}
MIB = 2 ** 20


def render(results: dict[str, Any]) -> str:
    """The block for BENCHMARKS.md. Also stores the ratios and targets in results, so that
    results.json carries them."""
    lines = [BEGIN, ""]
    for section in (machine_section, results_section, ratios_section, instructions_section, targets_section,
                    memory_section, wasm_section, mix_section, rounds_section, node_section,
                    calls_section, kinds_section, micro_section, warnings_section):
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


def module_size(results: dict[str, Any], key: str) -> int | None:
    sizes = results["sizes"]
    return {"C": sizes["wasm"], "C2": sizes["wasm"], "D": sizes["wasm"], "E": sizes["wasm"],
            "F": sizes["wasm"], "Craw": sizes.get("cargo"), "M": sizes.get("minimal"),
            "C0": sizes.get("baseline")}.get(key)


def results_section(results: dict[str, Any]) -> list[str]:
    v, cfg = results["variants"], results["config"]
    lines = ["### Results", "",
             f"Median of {cfg['rounds']} rounds, (min–max) over rounds. Saturation: wrk, 1 thread, "
             f"{cfg['conns']} connections, {cfg['duration']:g} s per run after {cfg['warmup']:g} s of "
             f"warm-up. Fixed rate: {cfg['rate']:g} requests/s in all, oha with latency correction, "
             f"{cfg['rate_duration']:g} s per run.", "",
             "| variant | Envoy CPU µs/request (saturation) | added over A | requests/s (saturation) "
             "| Envoy busy | p50 µs @ fixed rate | p99 µs @ fixed rate "
             "| Envoy CPU µs/request @ fixed rate | Envoy RSS MiB | .wasm bytes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    a = cpu_med(results, "A")
    for k in keys(results):
        def col(metric: str, part: str) -> list[float]:
            return column(results, k, metric, part)
        wasm = module_size(results, k)
        added = "—" if k == "A" else f"{cpu_med(results, k) - a:+.2f}"
        lines.append(row(
            v[k]["label"], fmt_spread(col("cpu_us_per_rq", "sat"), 2), added,
            fmt_spread(col("rps", "sat"), 0),
            f"{med(col('busy', 'sat')) * 100:.0f}%", fmt_spread(col("p50_us", "lat"), 0),
            fmt_spread(col("p99_us", "lat"), 0), fmt_spread(col("cpu_us_per_rq", "lat"), 1),
            f"{rss_med(results, k) / MIB:.1f}", f"{wasm:,}" if wasm else "—"))
    return lines


def added(results: dict[str, Any], key: str) -> float:
    """What a variant adds over A, µs per request (medians)."""
    return cpu_med(results, key) - cpu_med(results, "A")


def ratio(results: dict[str, Any], num: str, den: str) -> float | None:
    """added(num) / added(den), None when either variant is missing or den adds nothing."""
    v = results["variants"]
    if num not in v or den not in v:
        return None
    d = added(results, den)
    return added(results, num) / d if d > 0 else None


def ratio_rounds(results: dict[str, Any], num: str, den: str) -> str:
    """The same ratio in each round (each with that round's A), to see how much it moves."""
    v = results["variants"]
    out = []
    for i, a in enumerate(v["A"]["rounds"]):
        base = a["sat"]["cpu_us_per_rq"]
        n = v[num]["rounds"][i]["sat"]["cpu_us_per_rq"] - base
        d = v[den]["rounds"][i]["sat"]["cpu_us_per_rq"] - base
        out.append(f"{n / d:.2f}" if d > 0 else "—")
    return "rounds: " + ", ".join(out)


def rounds_within(results: dict[str, Any], num: str, den: str, bound: float) -> list[bool | None]:
    """For each round, whether its (num − A) / (den − A) is within `bound`; None where that
    round's num or den added nothing over A (its noise outweighed the filter)."""
    v = results["variants"]
    out: list[bool | None] = []
    for i, a in enumerate(v["A"]["rounds"]):
        base = a["sat"]["cpu_us_per_rq"]
        n = v[num]["rounds"][i]["sat"]["cpu_us_per_rq"] - base
        d = v[den]["rounds"][i]["sat"]["cpu_us_per_rq"] - base
        out.append(n / d <= bound if d > 0 and n > 0 else None)
    return out


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}"


RATIOS = (
    ("C", "B", "the 20 rules: traffic-color per Lua"),
    ("C2", "B2", "the 20 regex rules: traffic-color per Lua"),
    ("C", "D", "20 rules per 1 rule"),
    ("C2", "D", "20 regex rules per 1 rule"),
    ("C", "E", "20 rules per 1 rule that reads a header every request carries"),
    ("E", "D", "1 rule on a present header per 1 rule on an absent one"),
    ("D", "M", "traffic-color's 1 rule per the minimal filter's"),
    ("F", "C", "C with two weighted splits and outcome metrics per C"),
    ("C", "C0", f"C per C with the baseline module"),
    ("F", "C0", "F per C with the baseline module"),
    ("Craw", "C", "cargo's module per the shipped one (wasm-opt -O3)"),
)


def ratios_section(results: dict[str, Any]) -> list[str]:
    rs = results["ratios"] = {}
    lines = ["", "### Ratios of added cost (Envoy CPU µs per request over A, medians)", "",
             "| ratio | what it compares | value |", "|---|---|---|"]
    for num, den, what in RATIOS:
        r = ratio(results, num, den)
        if r is None:
            continue
        rs[f"({num} − A) / ({den} − A)"] = r
        lines.append(row(f"({num} − A) / ({den} − A)", what, f"{r:.2f}"))
    return lines


def instr_ratio(results: dict[str, Any], num: str, den: str) -> float | None:
    """(num − A) / (den − A) by instructions per request (instructions.py), None if not measured."""
    return ((results.get("instructions") or {}).get("ratios") or {}).get(f"({num} − A) / ({den} − A)")


def instructions_section(results: dict[str, Any]) -> list[str]:
    ins = results.get("instructions")
    if not ins or "A" not in ins["variants"]:
        return []
    v = ins["variants"]
    a = v["A"]["per_request"]
    n = ins["passes"] * ins["mix"]
    lines = ["", "### Envoy instructions per request (callgrind)", "",
             f"Each variant's Envoy alone under valgrind's callgrind ({ins['valgrind']}, "
             "`--smc-check=all`), counting only while the mix goes "
             f"{'once' if ins['passes'] == 1 else str(ins['passes']) + ' times'} ({n:,} requests) "
             "over one keep-alive connection, after a "
             f"warm-up of the mix on fresh connections (colors checked) and {ins['warmup_passes']} "
             "passes on that connection: every instruction of every Envoy thread, the code LuaJIT "
             "and V8 generate included, over the requests. Run again, a variant's count moves by "
             "well under 1% however busy the machine is; it does not see cache misses or cycles "
             "per instruction. \"Timers\": what the same Envoy executed per second with no "
             f"request ({ins['idle_seconds']:g} s after the requests; the filter's 1 s tick, "
             "Envoy's stats flush), times the seconds the requests took under valgrind, per "
             "request — an estimate of the part of the figure that is not the requests' (under "
             "wrk, a second holds thousands of requests, not hundreds), a little low for "
             "traffic-color, whose tick has counters to flush while requests come.", "",
             "| variant | instructions per request | added over A | of which timers (estimate) "
             "| requests/s under valgrind |", "|---|---|---|---|---|"]
    for k in KEYS:
        if k not in v:
            continue
        r = v[k]
        lines.append(row(r["label"], f"{r['per_request']:,.0f}",
                         "—" if k == "A" else f"{r['per_request'] - a:+,.0f}",
                         f"{r['timers_per_request']:,.0f}", f"{r['requests'] / r['seconds']:.0f}"))
    if ins.get("ratios"):
        cpu = "variants" in results and "A" in results["variants"]
        lines += ["", "| ratio of added cost | by instructions |" + (" by Envoy CPU time (medians) |" if cpu else ""),
                  "|---|---|" + ("---|" if cpu else "")]
        for name, r in ins["ratios"].items():
            num, den = re.findall(r"\((\w+) −", name)
            lines.append(row(name, f"{r:.2f}", *([fmt_ratio(ratio(results, num, den))] if cpu else [])))
    lines += ["", f"Measured in {ins['seconds'] / 60:.1f} minutes."]
    return lines


def targets_section(results: dict[str, Any]) -> list[str]:
    """Issue 12's and issue 13's targets, each as a ratio to variants of this run; those on
    Envoy CPU time also by instructions (instructions_section), beside."""
    v, sizes = results["variants"], results["sizes"]
    rows, out = [], []

    def target(name: str, kind: str, measured: str, ok: bool | None,
               by_instr: tuple[str, str, float | None] | None = None) -> None:
        """`by_instr`: (numerator, denominator, bound or None) of the same ratio by instructions.
        A ratio of CPU times whose rounds do not all agree with the median is marked
        inconclusive: on this machine a noisy round can put the median on either side."""
        ir = instr_ratio(results, by_instr[0], by_instr[1]) if by_instr else None
        instr = "—" if ir is None else f"{ir:.2f}"
        if ir is not None and by_instr[2] is not None:
            instr += f" ({'reached' if ir <= by_instr[2] else 'not reached'})"
        mark = "—" if ok is None else MARK[ok]
        if ok is not None and by_instr and by_instr[2] is not None \
                and any(r != ok for r in rounds_within(results, by_instr[0], by_instr[1], by_instr[2])):
            mark = f"{MARK[ok]} in the median, **inconclusive** (the rounds disagree)"
        rows.append(row(name, kind, measured, mark, instr))
        out.append({"target": name, "kind": kind, "measured": measured, "reached": ok,
                    "by_instructions": ir})

    for c, b in (("C", "B"), ("C2", "B2")):
        if c in v and b in v:
            r = ratio(results, c, b)
            target(f"{c} adds no more Envoy CPU per request than its Lua twin {b}", "required",
                   f"{c} {added(results, c):+.2f} µs, {b} {added(results, b):+.2f} µs "
                   f"(ratio {fmt_ratio(r)}; {ratio_rounds(results, c, b)})", r is not None and r <= 1.0,
                   (c, b, 1.0))
    for c in ("C", "C2"):
        if c in v and "D" in v:
            r = ratio(results, c, "D")
            target(f"{c} adds at most 1.25× what D (1 rule) adds", "goal",
                   f"({c} − A) / (D − A) = {fmt_ratio(r)} ({ratio_rounds(results, c, 'D')})",
                   r is not None and r <= 1.25, (c, "D", 1.25))
    if "D" in v and "M" in v:
        r = ratio(results, "D", "M")
        target("D (1 rule) adds at most 1.3× what the minimal filter M adds", "required",
               f"(D − A) / (M − A) = {fmt_ratio(r)} ({ratio_rounds(results, 'D', 'M')})",
               r is not None and r <= 1.3, ("D", "M", 1.3))
        target("… and at most 1.15×", "goal", f"{fmt_ratio(r)}", r is not None and r <= 1.15,
               ("D", "M", 1.15))
    wasm = sizes["wasm"]
    target("the shipped .wasm is at most 512 KiB", "required",
           f"{wasm:,} bytes = {wasm / 1024:.1f} KiB", wasm <= 512 * 1024)
    target("… and at most 400 KiB", "goal", f"{wasm / 1024:.1f} KiB", wasm <= 400 * 1024)
    if "M" in v:
        for c in ("C", "C2"):
            if c in v:
                d = (rss_med(results, c) - rss_med(results, "M")) / MIB
                target(f"Envoy RSS with {c} at most 8 MiB above M's", "target",
                       f"{rss_med(results, c) / MIB:.1f} − {rss_med(results, 'M') / MIB:.1f} = "
                       f"{d:+.1f} MiB", d <= 8.0)
    if "C0" in v:
        for c in ("C", "F"):
            if c in v:
                r = ratio(results, c, "C0")
                target(f"{c} adds at most 1.10× what C0 (the baseline module, C's rules) adds",
                       "required" if c == "C" else "reported",
                       f"({c} − A) / (C0 − A) = {fmt_ratio(r)} ({ratio_rounds(results, c, 'C0')})",
                       (r is not None and r <= 1.10) if c == "C" else None,
                       (c, "C0", 1.10 if c == "C" else None))
    results["targets"] = out
    return ["", "### Targets", "",
            "Issue 12's and issue 13's, each as a ratio to variants of this run. The last column: "
            "the same ratio by Envoy instructions per request (callgrind, above), where the "
            "target is one of added cost; the mark before it is the CPU time's.", "",
            "| target | kind | measured (Envoy CPU time) | | by instructions |", "|---|---|---|---|---|",
            *rows]


def memory_section(results: dict[str, Any]) -> list[str]:
    lines = ["", "### Memory", "",
             "After each variant's runs: Envoy's RSS, its anonymous part, and tcmalloc's heap as "
             "Envoy's admin `/memory` reports it — in use (`allocated`), and freed but kept "
             "(`pageheap_free` + `total_thread_cache`), which tcmalloc does not hand back to the "
             "system on its own; from /proc/<pid>/smaps, V8's compiled code (executable anonymous "
             "mappings) and the Wasm linear memories (V8 reserves each in a mapping of 4 GiB or "
             "more; only touched pages count). Wasm VMs: Envoy's `wasm.wasm_vm_count`. Medians "
             "over rounds, MiB.",
             "", "| variant | RSS | anonymous | heap in use | heap freed, kept | compiled code "
             "| Wasm memory | Wasm VMs | RSS − M's |",
             "|---|---|---|---|---|---|---|---|---|"]
    m = rss_med(results, "M") if "M" in results["variants"] else None
    for k in keys(results):
        rounds = results["variants"][k]["rounds"]
        vms = med([r.get("memory", {}).get("wasm_vms", 0) for r in rounds])
        lines.append(row(
            results["variants"][k]["label"], f"{rss_med(results, k) / MIB:.1f}",
            f"{rss_med(results, k, 'rss_anon') / MIB:.1f}",
            f"{rss_med(results, k, 'heap_allocated') / MIB:.1f}",
            f"{rss_med(results, k, 'heap_free') / MIB:.1f}",
            f"{rss_med(results, k, 'jit_code') / MIB:.1f}",
            f"{rss_med(results, k, 'wasm_memory') / MIB:.1f}", f"{vms:.0f}",
            "—" if m is None else f"{(rss_med(results, k) - m) / MIB:+.1f}"))
    probe = results.get("memory_probe") or {}
    if "wasm" in probe and "o3" in probe:
        w, o = probe["wasm"], probe["o3"]
        nd = results.get("node") or {}
        speed = (f" In Node, C runs at {nd['C']['us']:.2f} µs per request with the shipped module and "
                 f"{nd['C@O3']['us']:.2f} µs with the other." if "C" in nd and "C@O3" in nd else "")
        lines += ["", f"The shipped module goes through `wasm-opt {results.get('wasm_opt_args', '')}`. "
                      "C's rules in an Envoy started alone and sent the mix once: RSS "
                      f"{w.get('rss', 0) / MIB:.1f} MiB (heap freed and kept {w.get('heap_free', 0) / MIB:.1f}) "
                      f"with it, {o.get('rss', 0) / MIB:.1f} MiB ({o.get('heap_free', 0) / MIB:.1f}) with "
                      f"the same cargo output through plain `wasm-opt -O3`.{speed}"]
    node = results.get("node") or {}
    mem = [(k, node[k]["memory_kib"]) for k in ("M", "D", "C", "C2", "F", "C0") if k in node]
    if mem:
        lines += ["", "Linear memory of one VM (node_host.js, KiB): " + ", ".join(
            f"{k} {m_['configured']:.0f} configured, {m_['after']:.0f} after the mix" for k, m_ in mem)
            + "."]
    return lines


def wasm_section(results: dict[str, Any]) -> list[str]:
    sizes = results["sizes"]
    args = results.get("wasm_opt_args", "-O3")
    lines = ["", "### The .wasm", "", "| module | bytes | KiB |", "|---|---|---|",
             f"| `target/traffic_color.wasm`, as `make wasm` ships it (cargo, then `wasm-opt {args}`) "
             f"| {sizes['wasm']:,} | {sizes['wasm'] / 1024:.1f} |"]
    for key, label in (("cargo", "cargo's module, before wasm-opt"),
                       ("cargo_Oz", "cargo's module after `wasm-opt -Oz` instead"),
                       ("minimal", f"the minimal filter (M), cargo and `wasm-opt {args}`"),
                       ("baseline", f"traffic-color at {results['config'].get('baseline')} (C0), "
                                    "cargo and `wasm-opt -O3`")):
        if sizes.get(key):
            lines.append(f"| {label} | {sizes[key]:,} | {sizes[key] / 1024:.1f} |")
    if "Craw" in results["variants"]:
        co, c = cpu_med(results, "Craw"), cpu_med(results, "C")
        lines += ["", f"C with cargo's module before wasm-opt: {co:.2f} µs per request against C's "
                      f"{c:.2f} µs ({(co - c) / c * 100:+.1f}%); RSS {rss_med(results, 'Craw') / MIB:.1f} "
                      f"MiB against {rss_med(results, 'C') / MIB:.1f} MiB."]
    return lines


def mix_section(results: dict[str, Any]) -> list[str]:
    lines = ["", "### The request mix", "",
             f"{len(results['mix'])} requests (bench/mix.json), sent in turn. Before measuring, each "
             "was sent once to every Envoy, and every variant gave it the color it must (mix.json's "
             "`expect` for B, C, C0, `expect_regex` for B2 and C2). The rule that decided each, "
             "from traffic-color's own `rule_hits_total` counters:", "",
             "| request | C: color | C: decided by | C2: color | C2: decided by |",
             "|---|---|---|---|---|"]
    for m in results["mix"]:
        lines.append(row(m["name"], m["color"], m["rule"], m.get("color2") or "—", m.get("rule2") or "—"))
    d = results["distinct_rules"]
    return lines + ["", f"{d.get('C', 0)} of C's 20 rules and {d.get('C2', 0)} of C2's 20 rules, and "
                        "each default, decide at least one request of the mix.", ""]


def rounds_section(results: dict[str, Any]) -> list[str]:
    v = results["variants"]
    lines = ["### Every round", "",
             "| round | variant | CPU µs/rq (sat.) | req/s (sat.) | Envoy busy | CPU 0 busy | wrk busy "
             "| p50 µs | p99 µs | CPU µs/rq (fixed) | fixed-rate requests | wrk errors | oha non-200 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i in range(results["config"]["rounds"]):
        for k in keys(results):
            sat, lat = v[k]["rounds"][i]["sat"], v[k]["rounds"][i]["lat"]
            lines.append(row(
                i + 1, k, f"{sat['cpu_us_per_rq']:.2f}", f"{sat['rps']:.0f}", f"{sat['busy'] * 100:.0f}%",
                f"{sat['core_busy'] * 100:.0f}%", f"{sat['wrk_busy'] * 100:.0f}%", f"{lat['p50_us']:.0f}",
                f"{lat['p99_us']:.0f}", f"{lat['cpu_us_per_rq']:.1f}", lat["n"], sat["errors"],
                lat["errors"]))
    return lines


NODE_LABELS = {"C": "C: 20 rules", "C2": "C2: 20 rules, regexes without literals",
               "D": "D: 1 rule", "E": "E: 1 rule on user-agent", "M": "M: the minimal filter",
               "F": "F: C with two weighted splits and outcome metrics", "C0": "C0: C's rules, baseline module",
               "C@O3": "C, the module through plain `wasm-opt -O3`",
               "C2@base": "C2's rules, baseline module"}


def node_section(results: dict[str, Any]) -> list[str]:
    node = results.get("node")
    if not node:
        return []
    cfg = results["config"]
    lines = ["", "### The module alone, in Node's V8 (no Envoy)", "",
             "`bench/node_host.js` drives each module through the calls Envoy makes for "
             "each request of the mix (context create, request and response headers, log, "
             "done, delete; every request with an `x-request-id`, as Envoy adds one) and answers "
             f"its host calls from plain data, in Node {sh(['node', '--version'])} with "
             "`--no-liftoff` (V8's optimizing compiler only, as Envoy sets it): the engine Envoy "
             f"embeds, without Envoy. Median of {cfg.get('node_repeats', 5)} runs of "
             f"{cfg.get('node_iterations', 100_000):,} requests; the times include the JavaScript "
             "host stubs. The medians come from a second pass that times each request (and its "
             "`on_log`) alone: a busy machine's preemptions move them least, but they are a "
             "typical request of the mix, not the mean. Host calls are counted in a separate "
             "instance, over the mix once it is "
             "warm; \"allocations\" are the buffers the host asked the module to allocate for "
             "what it handed over (a header value, the header map, a property).", "",
             "| variant | µs per request (mean) | median µs per request | median µs in `on_log` "
             "| host calls per request | allocations per request |",
             "|---|---|---|---|---|---|"]
    for k, label in NODE_LABELS.items():
        if k in node:
            n = node[k]
            lines.append(row(label, f"{n['us']:.2f}", f"{n.get('median_us', 0):.2f}",
                             f"{n.get('on_log_us', 0):.2f}", f"{sum(n['calls'].values()):.2f}",
                             f"{n['allocations']:.2f}"))
    return lines


def calls_section(results: dict[str, Any]) -> list[str]:
    node = results.get("node")
    if not node:
        return []
    shown = [k for k in NODE_LABELS if k in node and k not in ("C2@base", "C@O3")]
    names = sorted({n for k in shown for n in node[k]["calls"]})
    lines = ["", "#### Host calls per request, by name (the mix's average)", "",
             "| call | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for name in names:
        lines.append(row(f"`{name}`", *(f"{node[k]['calls'].get(name, 0):.2f}" for k in shown)))
    lines.append(row("**all**", *(f"**{sum(node[k]['calls'].values()):.2f}**" for k in shown)))
    return lines


def kinds_section(results: dict[str, Any]) -> list[str]:
    node = results.get("node")
    if not node or "kind:none" not in node:
        return []
    base = node["kind:none"]["us"]
    lines = ["", "#### Per rule kind", "",
             "Ten rules of one kind, none of which matches any request of the mix (so every request "
             "evaluates all ten), then the default; the program with only the default is the base. "
             "Per rule: (program − base) / 10. A rule's first read of an input (the header map, the "
             "cookies, the token, the baggage) is in its kind's figure.", "",
             "| rule kind | µs per request, 10 rules | µs per rule | host calls per request |",
             "|---|---|---|---|"]
    for kind, label in results.get("kinds", {}).items():
        n = node.get(f"kind:{kind}")
        if n is None:
            continue
        per = "—" if kind == "none" else f"{(n['us'] - base) / 10:.3f}"
        lines.append(row(label, f"{n['us']:.2f}", per, f"{sum(n['calls'].values()):.2f}"))
    if "D" in node and results.get("features"):
        d = node["D"]["us"]
        lines += ["", "#### Per feature (D's one rule, with the feature on)", "",
                  "| feature | µs per request | over D | host calls per request |", "|---|---|---|---|",
                  row("D: none", f"{d:.2f}", "—", f"{sum(node['D']['calls'].values()):.2f}")]
        for feat, label in results["features"].items():
            n = node.get(f"feature:{feat}")
            if n is not None:
                lines.append(row(label, f"{n['us']:.2f}", f"{n['us'] - d:+.2f}",
                                 f"{sum(n['calls'].values()):.2f}"))
    return lines


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

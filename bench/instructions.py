#!/usr/bin/env python3
"""Envoy instructions per request under valgrind's callgrind: a second measure of what each
variant costs, next to `make bench`'s CPU time, that a shared machine does not move.

Each variant's Envoy (the same config as in bench/run.py, one worker) runs under
`valgrind --tool=callgrind --instr-atstart=no --smc-check=all`: nothing is counted while it
starts. Then, for each variant in turn:

  1. warm-up: the mix once, each request on a fresh connection, colors checked as run.py checks
     them (workload.check_colors); then WARMUP_PASSES passes of the mix over one keep-alive
     connection, so that connection is open and Envoy's, V8's and LuaJIT's lazily built state
     (compiled code, traces, caches) is in place before anything is counted (measured: B, the
     Lua filter, counted 1.3% more per request after 4 passes than after 12; the Wasm variants
     and A no difference);
  2. `callgrind_control -i on`, the mix K times over that same keep-alive connection (no
     connection setup is counted: wrk's steady state is the same), `callgrind_control -d`:
     the dump's `summary:` is what every Envoy thread executed meanwhile, V8's generated code
     included (--smc-check=all makes valgrind see code V8 writes at run time);
  3. IDLE_SECONDS more with no request, a second dump: what Envoy runs on its own per second
     (the filter's 1 s tick, Envoy's stats flush and timers), from which the part of step 2
     that is not the requests' is estimated. Under valgrind a request takes milliseconds, not
     microseconds, so these timers fire hundreds of times more often per request than under wrk.

Every request of step 2 carries its own `x-request-id` (workload.request_id, as the color
check sends them), so F's split on it draws the same values every run; wrk sends none and
Envoy makes one up. Envoy's listener and admin bind 127.0.0.1 (workload.envoy_config_for).

  ../.venv/bin/python instructions.py --wasm ../target/traffic_color.wasm   (from bench/)

runs it alone: builds the minimal filter and the baseline module (builds.py), measures every
variant (`--only A,D,M`: some), prints the table and writes instructions.json. BENCH_INSTR_REQUESTS
(default 520) sets N, rounded to whole passes of the mix; `--pause S` waits S seconds between
passes, a slower pace that shows how much of the figure the timers are.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import builds
import drivers
import report
import workload
from traffic_color_harness.envoy import Envoy, find_envoy, start_envoy
from traffic_color_harness.repo import REPO

# The variants measured (Craw, the module before wasm-opt, is left out: the figure it adds
# is a build option's, not a filter's).
KEYS = ("A", "B", "C", "B2", "C2", "D", "E", "M", "F", "C0")
# The ratios the targets use, (numerator, denominator), each over A.
RATIOS = (("C", "B"), ("C2", "B2"), ("C", "D"), ("C2", "D"), ("D", "M"), ("C", "C0"), ("F", "C0"))
DEFAULT_REQUESTS = 520
WARMUP_PASSES = 12
IDLE_SECONDS = 5.0
START_TIMEOUT = 300.0  # valgrind translating Envoy and V8 compiling the module, on a busy machine
CONTROL_TIMEOUT = 120.0  # one callgrind_control command (a dump of a large profile)
REQUEST_TIMEOUT = 60.0  # one request under valgrind


class InstrError(RuntimeError):
    pass


def find_valgrind() -> dict[str, str] | None:
    """valgrind and callgrind_control (its Debian package has both), with valgrind's version."""
    vg, ctl = drivers.find_tool("VALGRIND", "valgrind"), shutil.which("callgrind_control")
    if not vg or not ctl:
        return None
    r = subprocess.run([vg, "--version"], capture_output=True, text=True, timeout=30)
    return {"valgrind": vg, "control": ctl, "version": r.stdout.strip()}


def requests_wanted(mix: list[dict[str, Any]]) -> int:
    """Passes of the mix for about BENCH_INSTR_REQUESTS requests (at least one)."""
    n = int(float(os.environ.get("BENCH_INSTR_REQUESTS") or DEFAULT_REQUESTS))
    return max(1, round(n / len(mix)))


class KeepAlive:
    """One HTTP/1.1 connection to Envoy, reused for every request (http.client reopens it if
    Envoy closes it; `opened` counts the connections)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.opened = 0

    def send(self, req: dict[str, Any], rid: str) -> tuple[int, str | None]:
        """As workload.send: the mix's headers exactly, `rid` as x-request-id; (status, color)."""
        if self.conn.sock is None:
            self.conn.connect()
            self.opened += 1
        self.conn.putrequest(req["method"], req["path"], skip_host="host" in req["headers"],
                             skip_accept_encoding=True)
        for k, v in [*req["headers"].items(), ("x-request-id", rid)]:
            self.conn.putheader(k, v)
        self.conn.endheaders()
        r = self.conn.getresponse()
        r.read()
        return r.status, r.getheader(workload.ECHO)

    def passes(self, mix: list[dict[str, Any]], count: int, first: int, colored: bool,
               pause: float = 0.0) -> list[str]:
        """The mix `count` times, request ids from `first` on, `pause` seconds after each pass;
        what was not a 200 (with a color, when `colored`: the variant has a filter that sets one)."""
        bad = []
        for p in range(count):
            if p and pause:
                time.sleep(pause)
            for i, req in enumerate(mix):
                status, color = self.send(req, workload.request_id(first + p * len(mix) + i))
                if status != 200 or (colored and not color):
                    bad.append(f"{req['name']}: HTTP {status}, color {color}")
        return bad

    def close(self) -> None:
        self.conn.close()


def control(vg: dict[str, str], pid: int, *args: str) -> None:
    """One callgrind_control command to the valgrind of `pid`."""
    r = subprocess.run([vg["control"], *args, str(pid)], capture_output=True, text=True,
                       timeout=CONTROL_TIMEOUT)
    if r.returncode != 0:
        raise InstrError(f"callgrind_control {' '.join(args)} failed ({r.returncode}): "
                         f"{r.stdout.strip()[-500:]} {r.stderr.strip()[-500:]}")


def dump(vg: dict[str, str], env: Envoy, out: Path, n: int) -> int:
    """Dump callgrind's counters (which zeroes them) into `out`.n; its `summary:`, the
    instructions executed since the previous dump (or since `-i on`)."""
    control(vg, env.proc.pid, "-d")
    path = out.with_name(f"{out.name}.{n}")
    deadline = time.monotonic() + CONTROL_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as f:
                for _, line in zip(range(100), f):
                    m = re.match(r"summary:\s*(\d+)", line)
                    if m:
                        return int(m.group(1))
        time.sleep(0.2)
    raise InstrError(f"no summary in {path} after {CONTROL_TIMEOUT:.0f} s")


def measure_variant(key: str, filters: list[dict[str, Any]], mix: list[dict[str, Any]],
                    c_rules: list[str] | None, passes: int, vg: dict[str, str], envoy_bin: str,
                    cpu: int | None, run_dir: Path, pause: float = 0.0) -> dict[str, Any]:
    """One variant's Envoy under callgrind: warm-up, the measured passes (`pause` seconds
    apart), the idle seconds."""
    run_dir = run_dir.resolve()  # valgrind's file options, whatever the cwd
    out = run_dir / f"callgrind-{key}.out"
    prefix = drivers.pinned(cpu, [vg["valgrind"], "--tool=callgrind", "--instr-atstart=no",
                                  "--smc-check=all", f"--callgrind-out-file={out}",
                                  f"--log-file={run_dir / f'valgrind-{key}.log'}"])
    t0 = time.monotonic()
    env = start_envoy(workload.envoy_config_for(filters), run_dir, f"envoy-instr-{key}",
                      timeout=START_TIMEOUT, envoy_bin=envoy_bin, concurrency=1,
                      component_log_level=None, argv_prefix=tuple(prefix))
    conn = None
    try:
        started = time.monotonic() - t0
        colors = workload.check_colors({key: env}, mix, c_rules)
        if colors["mismatches"]:
            raise InstrError(f"{key} under valgrind: colors differ:\n  "
                             + "\n  ".join(colors["mismatches"]))
        conn = KeepAlive(env.port)
        bad = conn.passes(mix, WARMUP_PASSES, len(mix), bool(filters))
        opened = conn.opened
        control(vg, env.proc.pid, "-i", "on")
        t1 = time.monotonic()
        bad += conn.passes(mix, passes, (WARMUP_PASSES + 1) * len(mix), bool(filters), pause)
        served = dump(vg, env, out, 1)
        t2 = time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle = dump(vg, env, out, 2)
        t3 = time.monotonic()
        control(vg, env.proc.pid, "-i", "off")
        if bad:
            raise InstrError(f"{key} under valgrind: {len(bad)} bad answers, first: {bad[0]}")
        n = passes * len(mix)
        idle_rate = idle / (t3 - t2)
        return {"requests": n, "instructions": served, "per_request": served / n,
                "seconds": t2 - t1, "idle_per_second": idle_rate,
                "timers_per_request": idle_rate * (t2 - t1) / n,
                # connections Envoy closed and the client reopened while counting (0 expected)
                "reconnects": conn.opened - opened, "start_seconds": started,
                "rules": [m["rule"] for m in colors["mix"]]}
    finally:
        if conn is not None:
            conn.close()
        # SIGTERM: Envoy exits and callgrind writes its last (small) dump; SIGKILL after 30 s.
        env.proc.stop(timeout=30.0)


def ratios(per: dict[str, dict[str, Any]]) -> dict[str, float]:
    """(X − A) / (Y − A) of RATIOS, instructions per request; left out when a variant is
    missing or the denominator adds nothing."""
    out = {}
    if "A" not in per:
        return out
    a = per["A"]["per_request"]
    for num, den in RATIOS:
        if num in per and den in per and per[den]["per_request"] > a:
            out[f"({num} − A) / ({den} − A)"] = (per[num]["per_request"] - a) / (per[den]["per_request"] - a)
    return out


def measure(variants: list, mix: list[dict[str, Any]], c_rules: list[str] | None,
            vg: dict[str, str], envoy_bin: str, cpu: int | None, run_dir: Path, log,
            pause: float = 0.0) -> dict[str, Any]:
    """Every variant of KEYS among `variants` ((key, label, filters), as workload.variants
    gives them), one after the other. `c_rules`: the rules of C that decided each request of
    the mix (run.py's color check), for F's expected colors; None takes them from C's own
    check here. `pause`: seconds between the measured passes (0: none)."""
    passes = requests_wanted(mix)
    t0 = time.monotonic()
    per: dict[str, dict[str, Any]] = {}
    for key, label, filters in variants:
        if key not in KEYS:
            continue
        r = measure_variant(key, filters, mix, c_rules, passes, vg, envoy_bin, cpu, run_dir, pause)
        rules = r.pop("rules")
        if key == "C" and c_rules is None:
            c_rules = rules
        r["label"] = label
        per[key] = r
        log(f"instructions {key:>3}: {r['per_request'] / 1e3:8.1f} k per request "
            f"({r['requests']} requests in {r['seconds']:.1f} s, timers ~{r['timers_per_request'] / 1e3:.1f} k "
            f"of it; started in {r['start_seconds']:.0f} s; {r['reconnects']} reconnects)")
    return {"variants": per, "ratios": ratios(per), "passes": passes, "mix": len(mix),
            "warmup_passes": WARMUP_PASSES, "idle_seconds": IDLE_SECONDS,
            "pause": pause, "valgrind": vg["version"], "seconds": time.monotonic() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", default=str(REPO / "target/traffic_color.wasm"),
                    help="the filter as shipped (make wasm)")
    ap.add_argument("--baseline", default=os.environ.get("BENCH_BASELINE", "f2a6a64"),
                    help="the commit C0's module is built from (empty: no C0)")
    ap.add_argument("--only", default="", help="comma-separated variants (default: all of KEYS)")
    ap.add_argument("--run-dir", default=str(REPO / "target/bench-instr"))
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds between measured passes of the mix: a slower pace, which "
                         "shows how much of the figure Envoy's timers are (default 0)")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(f"[instr {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    vg = find_valgrind()
    if vg is None:
        print("valgrind or callgrind_control not found: `make bench-tools` installs them", file=sys.stderr)
        return 2
    wasm = Path(args.wasm)
    if not wasm.is_file():
        print(f"no {wasm}: run `make wasm` first", file=sys.stderr)
        return 2
    wasm_opt = drivers.find_tool("WASM_OPT", "wasm-opt", [REPO / "tools/wasm-opt/node_modules/.bin/wasm-opt"])
    if not wasm_opt:
        print("wasm-opt not found (WASM_OPT; `make wasm-opt`)", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    modules: dict[str, Path | None] = {"wasm": wasm}
    try:
        modules["minimal"] = builds.minimal(wasm_opt, run_dir / "builds.log")
        if args.baseline:
            modules["baseline"] = builds.baseline(args.baseline, wasm_opt, run_dir / "builds.log")
    except builds.BuildError as e:
        print(str(e), file=sys.stderr)
        return 1
    only = {k for k in args.only.split(",") if k}
    variants = [v for v in workload.variants(modules, args.baseline) if not only or v[0] in only]
    cpu = 0 if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else None
    res = measure(variants, workload.load_mix(), None, vg, find_envoy(), cpu, run_dir, log, args.pause)
    (run_dir / "instructions.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print("\n".join(report.instructions_section({"instructions": res})))
    log(f"done in {res['seconds']:.0f} s (callgrind dumps and logs in {run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

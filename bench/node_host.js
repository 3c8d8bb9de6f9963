#!/usr/bin/env node
// The module's own work per request in V8, without Envoy: a minimal proxy-wasm host in Node
// (the same engine Envoy embeds) drives the filter through the calls Envoy makes for each
// request (context create, request headers, response headers, log, done, delete) and answers
// its host calls from plain data. Set beside Envoy's figures, it separates what the module
// computes from what Envoy spends serving its host calls.
//
//   node bench/node_host.js <module.wasm> <input.json>   (bench/drivers.py writes the input)
//
// input.json: {"iterations": N, "requests": [{"name", "headers": [[k, v], ...]}],
//              "variants": {"C": {"config": "<plugin config JSON>", "expect": ["color", ...]}}}
// Prints one JSON line per variant: {"variant", "us_per_request", "host_calls_per_request",
// "median_us_per_request", "median_us_on_log"} (the medians from a second, per-call timed pass).
// Exits 1 if a variant colors a request otherwise than expected.
'use strict';
const fs = require('fs');

const [, , wasmPath, inputPath] = process.argv;
const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
const enc = new TextEncoder();
const dec = new TextDecoder();
const COLOR = 'x-version-route';

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

function run(name, variant) {
  let inst;
  let headers = [];
  let serialized = null; // the request's map, serialized once before timing
  let calls = 0;
  const mem = () => new Uint8Array(inst.exports.memory.buffer);
  const view = () => new DataView(inst.exports.memory.buffer);
  const text = (p, n) => dec.decode(mem().subarray(p, p + n));
  const give = (bytes, retPtr, retSize) => {
    const p = inst.exports.proxy_on_memory_allocate(bytes.length);
    mem().set(bytes, p);
    view().setUint32(retPtr, p, true);
    view().setUint32(retSize, bytes.length, true);
  };
  const counters = [];
  const le64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigInt64(0, BigInt(n), true); return b; };
  const properties = { 'response\0code': le64(200), 'request\0duration': le64(1_234_567) };
  const OK = 0;
  const NOT_FOUND = 1;
  const env = {
    proxy_log: () => { calls++; return OK; },
    proxy_get_log_level: (p) => { view().setUint32(p, 3, true); return OK; },
    proxy_get_buffer_bytes: (t, s, m, rp, rs) => { give(enc.encode(variant.config), rp, rs); return OK; },
    proxy_get_header_map_pairs: (t, rp, rs) => { calls++; give(serialized, rp, rs); return OK; },
    proxy_get_header_map_value: (t, kp, kn, rp, rs) => {
      calls++;
      const k = text(kp, kn);
      const h = headers.find(([n]) => n === k);
      if (!h) return NOT_FOUND;
      give(enc.encode(h[1]), rp, rs);
      return OK;
    },
    proxy_replace_header_map_value: (t, kp, kn, vp, vn) => {
      calls++;
      const k = text(kp, kn);
      headers = headers.filter(([n]) => n !== k);
      headers.push([k, text(vp, vn)]);
      return OK;
    },
    proxy_add_header_map_value: (t, kp, kn, vp, vn) => { calls++; headers.push([text(kp, kn), text(vp, vn)]); return OK; },
    proxy_remove_header_map_value: (t, kp, kn) => {
      calls++;
      const k = text(kp, kn);
      headers = headers.filter(([n]) => n !== k);
      return OK;
    },
    proxy_get_current_time_nanoseconds: (p) => { calls++; view().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return OK; },
    proxy_define_metric: (t, np, nn, rp) => { counters.push(0); view().setUint32(rp, counters.length - 1, true); return OK; },
    proxy_increment_metric: (id, by) => { calls++; counters[id] += Number(by); return OK; },
    proxy_call_foreign_function: (np, nn, ap, an, rp, rs) => { calls++; view().setUint32(rp, 0, true); view().setUint32(rs, 0, true); return OK; },
    // What Envoy answers at the end of a stream (`on_log`): 8-byte little-endian integers.
    proxy_get_property: (pp, pn, rp, rs) => {
      calls++;
      const v = properties[text(pp, pn)];
      if (v === undefined) return NOT_FOUND;
      give(v, rp, rs);
      return OK;
    },
    proxy_record_metric: (id, value) => { calls++; counters[id] += 1; return OK; },
  };
  const wasi = {
    environ_sizes_get: (a, b) => { view().setUint32(a, 0, true); view().setUint32(b, 0, true); return 0; },
    random_get: (p, n) => { const m = mem(); for (let i = 0; i < n; i++) m[p + i] = (Math.random() * 256) | 0; return 0; },
    clock_time_get: (id, prec, p) => { view().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return 0; },
    proc_exit: (code) => { throw new Error(`proc_exit ${code}`); },
  };
  const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
  const imports = { env: {}, wasi_snapshot_preview1: {} };
  for (const imp of WebAssembly.Module.imports(module)) {
    const table = imp.module === 'env' ? env : wasi;
    imports[imp.module][imp.name] = table[imp.name] || (() => OK);
  }
  inst = new WebAssembly.Instance(module, imports);
  if (inst.exports._initialize) inst.exports._initialize();
  const ROOT = 1;
  inst.exports.proxy_on_context_create(ROOT, 0);
  inst.exports.proxy_on_vm_start(ROOT, 0);
  if (!inst.exports.proxy_on_configure(ROOT, variant.config.length)) throw new Error(`${name}: configuration rejected`);

  const requests = input.requests.map((r) => ({ name: r.name, headers: r.headers, serialized: serialize(r.headers) }));
  let id = ROOT + 1;
  let logNs = null; // when an array: the time of each proxy_on_log call is pushed to it
  const one = (r) => {
    headers = r.headers.slice();
    serialized = r.serialized;
    const c = id++;
    inst.exports.proxy_on_context_create(c, ROOT);
    inst.exports.proxy_on_request_headers(c, headers.length, 1);
    inst.exports.proxy_on_response_headers(c, 0, 1);
    if (logNs) {
      const l0 = process.hrtime.bigint();
      inst.exports.proxy_on_log(c);
      logNs.push(Number(process.hrtime.bigint() - l0));
    } else {
      inst.exports.proxy_on_log(c);
    }
    inst.exports.proxy_on_done(c);
    inst.exports.proxy_on_delete(c);
    return (headers.find(([k]) => k === COLOR) || [])[1];
  };
  const wrong = [];
  requests.forEach((r, i) => {
    const got = one(r);
    if (got !== variant.expect[i]) wrong.push(`${r.name}: ${got}, expected ${variant.expect[i]}`);
  });
  if (wrong.length) {
    console.error(`${name}: ${wrong.join('; ')}`);
    process.exit(1);
  }
  const n = input.iterations;
  for (let i = 0; i < Math.min(n, 5000); i++) one(requests[i % requests.length]);
  calls = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) one(requests[i % requests.length]);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const hostCalls = calls / n;
  // Then each request and each end-of-stream callback timed alone: medians, which a busy
  // machine's preemptions barely move (the means above include them).
  const reqNs = [];
  logNs = [];
  for (let i = 0; i < n; i++) {
    const q0 = process.hrtime.bigint();
    one(requests[i % requests.length]);
    reqNs.push(Number(process.hrtime.bigint() - q0));
  }
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  console.log(JSON.stringify({
    variant: name, us_per_request: ns / 1000, host_calls_per_request: hostCalls,
    median_us_per_request: median(reqNs) / 1000, median_us_on_log: median(logNs) / 1000,
  }));
  logNs = null;
}

for (const [name, variant] of Object.entries(input.variants)) run(name, variant);

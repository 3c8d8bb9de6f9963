// The built cockpit bundle (`make cockpit-web`), loaded as the page loads it (`--target web`
// output, the wasm bytes handed to init), called through every export, and timed: check() of a
// 20-rule program, what the page runs on each keystroke.
//
//   node tests/cockpit_smoke.mjs target/cockpit-web

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import assert from "node:assert/strict";

const dir = resolve(process.argv[2] ?? "target/cockpit-web");
const tc = await import(pathToFileURL(join(dir, "traffic_color.js")).href);
await tc.default({ module_or_path: readFileSync(join(dir, "traffic_color_bg.wasm")) });

const json = (s) => JSON.parse(s);

// 20 rules of the kinds a release uses: headers, cookies, claims, paths, lists, regexes,
// weighted splits and buckets.
const rules = [];
for (let i = 1; i <= 19; i++) {
  const kinds = [
    `header["x-team-${i}"] == "qa"`,
    `cookie["beta-${i}"] in ["yes", "1", "true"]`,
    `token["groups"] == "group-${i}" && path starts_with "/api/v${i}"`,
    `header["user-agent"] =~ "^Mozilla/5\\\\.0 .*Chrome/${100 + i}"`,
    `split(header["x-user-id"], "exp-${i}") < ${i * 0.5}`,
    `bucket(header["x-user-id"], "cohort-${i}") <= ${i}`,
  ];
  rules.push(`match "r${i}" { ${kinds[i % kinds.length]} } -> "${i % 2 ? "canary" : "beta"}"`);
}
rules.push(`default -> "stable"`);
const program = rules.join("\n") + "\n";
const config = JSON.stringify({ rules: program });

const ok = json(tc.check(config));
assert.equal(ok.ok, true, JSON.stringify(ok.diagnostics));
assert.equal(ok.rules, 19);
assert.deepEqual(ok.tags, ["canary", "beta", "stable"]);

const bad = json(tc.check(JSON.stringify({ rules: program.replace('"qa"', '"qa') })));
assert.equal(bad.ok, false);
assert.equal(bad.diagnostics[0].where, "rules");
assert.match(bad.diagnostics[0].text, /^error: unterminated string/);

const e = json(tc.explain(config, JSON.stringify({ headers: [["x-team-6", "qa"]] })));
assert.equal(e.decided_by, "rule 6");
assert.equal(e.color, "beta");

const knobs = json(tc.knobs(config));
assert.ok(knobs.length >= 6, JSON.stringify(knobs));
const moved = json(tc.set_knob(program, 0, 30));
assert.equal(json(tc.knobs(JSON.stringify({ rules: moved.rules })))[0].share, 30);

const sample = tc.sample(config, 1000);
const ch = json(tc.changes(config, JSON.stringify({ rules: moved.rules }), sample));
assert.equal(ch.requests, json(sample).length);
assert.ok(ch.changed > 0);
assert.ok(json(tc.set_knob(program, 999, 30)).error);

// Timing: first call warms the instance; then the median of many.
const times = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  tc.check(config);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const median = times[times.length >> 1];
const t0 = performance.now();
tc.explain(config, "{}");
const explainMs = performance.now() - t0;
const t1 = performance.now();
tc.changes(config, JSON.stringify({ rules: moved.rules }), sample);
const changesMs = performance.now() - t1;
console.log(
  `cockpit bundle ok: check() of ${rules.length} rules ${median.toFixed(3)} ms (median of 200), ` +
    `explain() ${explainMs.toFixed(3)} ms, changes() over ${json(sample).length} requests ${changesMs.toFixed(1)} ms`,
);

// The cockpit page: no framework and no build step. Every check, explain, preview and knob runs
// the filter's own compiler (the wasm-bindgen bundle under /pkg/), so the page cannot disagree
// with what a push would be judged by; the server judges again before anything is written.
import init, * as tc from "/pkg/traffic_color.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 120; // stats samples kept per color: about two minutes at one a second
const SAMPLE_USERS = 1000;

let state = null; // the last /api/state
let edited = { ok: false, json: null, check: null };
const trend = new Map(); // color -> [{rps, share}], the sparklines
let auditEntries = [];
let ready = false;

// ---- helpers -----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmt(n, digits = 1) {
  return n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits);
}

function pct(f) {
  return f === null || f === undefined ? "–" : (f * 100).toFixed(1) + "%";
}

function when(t) {
  if (!t) return "never";
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleTimeString([], { hour12: false }) +
    (Date.now() - d.getTime() > 86400e3 ? " " + d.toLocaleDateString() : "");
}

function short(hash) {
  return hash ? String(hash).slice(0, 12) : "–";
}

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** A bundle call: its answer is JSON text; a throw here would be a bundle bug, shown as such. */
function call(fn, ...args) {
  try {
    return JSON.parse(fn(...args));
  } catch (e) {
    return { error: `bundle: ${e}` };
  }
}

// ---- token and POST ----------------------------------------------------------------------

const TOKEN_KEY = "traffic-color-cockpit-token";

function askToken() {
  return new Promise((resolve) => {
    const d = $("token-dialog");
    $("token-input").value = "";
    d.addEventListener("close", () => {
      if (d.returnValue === "save" && $("token-input").value) {
        sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
        resolve(true);
      } else resolve(false);
    }, { once: true });
    d.showModal();
  });
}

async function post(path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { "Content-Type": "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    if (r.status === 401 && state?.token_required && attempt === 0) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (await askToken()) continue;
    }
    let answer;
    try { answer = await r.json(); } catch { answer = { error: `HTTP ${r.status}` }; }
    return { status: r.status, ok: r.ok, answer };
  }
  return { status: 401, ok: false, answer: { error: "no token" } };
}

// ---- state -------------------------------------------------------------------------------

function configWithRules(rules) {
  const cfg = JSON.parse(state.config.json);
  cfg.rules = rules;
  return JSON.stringify(cfg);
}

/** Whether a config counts outcomes (errors and p95 exist only then). */
function outcomeMetrics(json) {
  try { return JSON.parse(json).outcome_metrics === true; } catch { return false; }
}

function applyState(s, { replaceEditor }) {
  const before = state;
  state = s;
  $("mode").textContent = s.mode;
  $("source").textContent = `${s.source.kind} ${s.source.url}`;
  $("config-hash").textContent = s.config.hash;
  $("config-hash").title = s.config.hash;
  $("config-loaded").textContent = when(s.config.loaded_at);
  $("mesh-banner").hidden = s.mode !== "mesh";
  $("outcomes-off").hidden = outcomeMetrics(s.config.json);
  $("stop").textContent = `Everyone to ${s.stable}`;
  $("stop-h").textContent = `Everyone to ${s.stable}?`;
  $("stop-rules").textContent = `default -> "${s.stable}"`;
  $("rollback").disabled = !s.previous;
  $("rollback").title = s.previous ? `back to ${s.previous.hash}` : "no previous accepted config";
  if (!$("operator").value) $("operator").value = s.operator;
  // Keep the operator's unpushed edits; follow the config in force otherwise.
  const pristine = !before || $("editor").value === before.config.rules;
  if (replaceEditor || pristine) {
    $("editor").value = s.config.rules;
  }
  recheck();
}

// ---- Watch -------------------------------------------------------------------------------

function sparkline(points) {
  const w = 120, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  const maxRps = Math.max(1e-9, ...points.map((p) => p.rps));
  const x = (i) => (w * (i + HISTORY - points.length)) / (HISTORY - 1);
  const line = (f, cls) => {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", points.map((p, i) => `${x(i).toFixed(1)},${(h - 1 - f(p) * (h - 2)).toFixed(1)}`).join(" "));
    pl.setAttribute("class", cls);
    svg.append(pl);
  };
  if (points.length) {
    line((p) => p.rps / maxRps, "rps");
    line((p) => p.share, "share");
    const last = points[points.length - 1];
    svg.setAttribute("aria-label", `last ${points.length} s: up to ${fmt(maxRps)} req/s, now ${fmt(last.rps)} req/s, share ${pct(last.share)}`);
  }
  return svg;
}

function onStats(s) {
  $("updated-at").textContent = when(s.at);
  const banner = $("stale-banner");
  if (s.stale) {
    banner.hidden = false;
    const why = s.error ?? "the source does not answer";
    banner.textContent = s.last_good
      ? `Stale since ${when(s.last_good)}: ${why}. The numbers below are from that read; the cockpit keeps trying.`
      : `Stale: no good read from the source yet: ${why}. The cockpit keeps trying.`;
  } else banner.hidden = true;
  // What the source reports running; without a read (stale from the start) keep /api/state's.
  if (s.config?.hash) {
    $("config-hash").textContent = s.config.hash;
    $("config-loaded").textContent = when(s.config.loaded_at);
    $("config-hash").classList.toggle("mismatch", !!(state && s.config.hash !== state.config.hash));
  }
  // A stale event may carry no numbers at all (no good read yet): the tables stay as they are.
  if (!s.colors) return;

  const colors = Object.keys(s.colors).sort();
  for (const c of colors) {
    const h = trend.get(c) ?? [];
    if (!s.stale) h.push({ rps: s.colors[c].rps, share: s.colors[c].share });
    while (h.length > HISTORY) h.shift();
    trend.set(c, h);
  }
  const body = $("colors-table").tBodies[0];
  body.replaceChildren(...colors.map((c) => {
    const v = s.colors[c];
    const errClass = v.error_ratio > 0.01 ? "bad" : "";
    return el("tr", { "data-color": c },
      el("th", { scope: "row", text: c }),
      el("td", { class: "rps num", text: fmt(v.rps) }),
      el("td", { class: "share num", text: pct(v.share) }),
      el("td", { class: `errors num ${errClass}`, text: v.error_ratio === null ? "–" : pct(v.error_ratio) }),
      el("td", { class: "p95 num", text: v.p95_ms === null ? "–" : `${fmt(v.p95_ms)} ms` }),
      el("td", { class: "total num", text: String(v.total) }),
      el("td", {}, sparkline(trend.get(c) ?? [])));
  }));
  $("unmatched").textContent = fmt(s.unmatched_per_s);
  $("stripped").textContent = fmt(s.stripped_per_s);
  $("rules-table").tBodies[0].replaceChildren(...(s.rules ?? []).map((r) =>
    el("tr", { "data-rule": r.rule },
      el("th", { scope: "row", text: r.rule === "default" ? "default" : `rule ${r.rule}` }),
      el("td", { class: "name", text: r.name ?? "" }),
      el("td", { class: "per-s num", text: fmt(r.per_s) }),
      el("td", { class: "total num", text: String(r.total) }))));
}

// ---- Edit: check, diagnostics, explain, changes -----------------------------------------

function renderGutter(lines, bad) {
  const g = $("gutter");
  const n = lines.length;
  if (g.childElementCount !== n) {
    g.replaceChildren(...Array.from({ length: n }, (_, i) => el("div", { text: String(i + 1) })));
  }
  [...g.children].forEach((d, i) => d.classList.toggle("bad", bad.has(i + 1)));
  $("backdrop").replaceChildren(...lines.map((l, i) =>
    el("div", { class: bad.has(i + 1) ? "bad" : "" }, l || "\u200b")));
  syncScroll();
}

function syncScroll() {
  const t = $("editor");
  $("gutter").scrollTop = t.scrollTop;
  $("backdrop").scrollTop = t.scrollTop;
  $("backdrop").scrollLeft = t.scrollLeft;
}

function jumpTo(line, column) {
  const t = $("editor");
  const lines = t.value.split("\n");
  let pos = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
  pos += Math.max(0, column - 1);
  t.focus();
  t.setSelectionRange(pos, pos);
}

function recheck() {
  if (!ready || !state) return;
  const text = $("editor").value;
  const json = configWithRules(text);
  const check = call(tc.check, json);
  const diags = check.diagnostics ?? (check.error ? [{ where: "config", line: 0, column: 0, message: check.error, text: check.error }] : []);
  edited = { ok: !!check.ok && diags.length === 0, json, check };
  const bad = new Set(diags.filter((d) => d.where === "rules").map((d) => d.line));
  renderGutter(text.split("\n"), bad);
  $("diagnostics").replaceChildren(...diags.map((d) => {
    const li = el("li", { class: "diag", "data-line": d.line, "data-column": d.column, "data-where": d.where });
    const pos = el("button", { type: "button", class: "pos", text: `${d.where === "rules" ? "" : "config "}${d.line}:${d.column}` });
    pos.addEventListener("click", () => d.where === "rules" && jumpTo(d.line, d.column));
    li.title = d.message;
    li.append(pos, el("pre", { class: "caret", text: d.text || d.message }));
    return li;
  }));
  const unchanged = text === state.config.rules;
  $("push").disabled = !edited.ok || unchanged;
  $("check-status").textContent = !edited.ok
    ? `${diags.length} diagnostic${diags.length === 1 ? "" : "s"}: push disabled`
    : unchanged ? `ok, ${check.rules} rules; same as the config in force`
    : `ok, ${check.rules} rules, hash ${short(check.hash)}; not pushed yet`;
  $("check-status").className = edited.ok ? "ok" : "bad";
  renderKnobs();
  explainNow();
  changesSoon();
}

function pairs(text, sep) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf(sep);
    out.push(i < 0 ? [line, ""] : [line.slice(0, i).trim(), line.slice(i + 1).trim()]);
  }
  return out;
}

function describedRequest() {
  const req = {
    method: $("req-method").value,
    path: $("req-path").value || "/",
    headers: pairs($("req-headers").value, ":"),
    cookies: pairs($("req-cookies").value, "="),
    query: pairs($("req-query").value, "="),
    claims: null,
  };
  const claims = $("req-claims").value.trim();
  if (claims) {
    try { req.claims = JSON.parse(claims); } catch (e) { return { error: `claims: ${e.message}` }; }
  }
  return { req };
}

function traceNode(n) {
  const li = el("li", { class: n.result === true ? "t" : n.result === false ? "f" : "n" });
  li.append(el("span", { class: "res", text: n.result === null ? "not evaluated" : String(n.result) }), " ",
    el("code", { text: n.text }));
  if (n.saw !== undefined) li.append(" ", el("span", { class: "saw", text: `saw ${n.saw}` }));
  if (n.children?.length) li.append(el("ul", {}, ...n.children.map(traceNode)));
  return li;
}

function explainNow() {
  const out = $("explain-result");
  const { req, error } = describedRequest();
  if (error) { out.replaceChildren(el("p", { class: "bad", text: error })); return; }
  if (!edited.ok) { out.replaceChildren(el("p", { text: "Fix the diagnostics to explain a request." })); return; }
  const now = call(tc.explain, edited.json, JSON.stringify(req));
  if (now.error) { out.replaceChildren(el("p", { class: "bad", text: now.error })); return; }
  const before = call(tc.explain, state.config.json, JSON.stringify(req));
  const head = el("p", { id: "explain-color" }, "color ", el("strong", { text: now.color ?? "(unset)" }),
    `, decided by ${now.decided_by}`);
  if (!before.error && before.color !== now.color) {
    head.append(el("span", { class: "moved", text: ` (in force now: ${before.color ?? "(unset)"}, ${before.decided_by})` }));
  }
  if (now.stripped) head.append(el("span", { text: ` · incoming color ${JSON.stringify(now.incoming)} removed` }));
  const trace = el("ol", { id: "explain-trace" }, ...(now.rules ?? []).map((r) => {
    const li = el("li", { class: r.matched ? "matched" : "" , value: r.rule });
    li.append(el("code", { class: "src", text: `line ${r.line}: ${r.source}` }),
      r.in_window === false ? el("span", { class: "saw", text: " (outside its time window)" }) : "",
      el("ul", {}, traceNode(r.condition)));
    return li;
  }));
  out.replaceChildren(head, trace);
}

function changesNow() {
  const summary = $("changes-summary");
  const moves = $("changes-moves").tBodies[0];
  const examples = $("changes-examples");
  if (!edited.ok) { summary.textContent = "Fix the diagnostics to preview the change."; moves.replaceChildren(); examples.replaceChildren(); return; }
  // Generated requests from both programs' literals; the synthetic users are the same in both.
  const seen = new Set();
  const reqs = [];
  for (const cfg of [state.config.json, edited.json]) {
    const s = call(tc.sample, cfg, SAMPLE_USERS);
    if (!Array.isArray(s)) { summary.textContent = s.error ?? "sample failed"; return; }
    for (const r of s) { const k = JSON.stringify(r); if (!seen.has(k)) { seen.add(k); reqs.push(r); } }
  }
  const c = call(tc.changes, state.config.json, edited.json, JSON.stringify(reqs));
  if (c.error) { summary.textContent = c.error; return; }
  summary.textContent = `${c.changed} of ${c.requests} generated requests change color ` +
    `(${SAMPLE_USERS} users plus the values the rules compare against).`;
  moves.replaceChildren(...c.moves.map((m) => el("tr", {},
    el("td", { text: m.from }), el("td", { text: m.to }), el("td", { class: "num", text: String(m.count) }))));
  examples.replaceChildren(...c.examples.slice(0, 8).map((x) => el("li", {},
    el("code", { text: requestLine(x.request) }),
    ` ${x.from} (${x.old_decided}) → ${x.to} (${x.new_decided})`)));
}

function requestLine(r) {
  const parts = [`${r.method ?? "GET"} ${r.path ?? "/"}`];
  for (const [k, v] of r.headers ?? []) parts.push(`${k}: ${v}`);
  for (const [k, v] of r.cookies ?? []) parts.push(`cookie ${k}=${v}`);
  for (const [k, v] of r.query ?? []) parts.push(`?${k}=${v}`);
  if (r.claims) parts.push(`claims ${JSON.stringify(r.claims)}`);
  return parts.join("  ");
}

const changesSoon = debounce(changesNow, 250);

// ---- Steer: knobs, push, rollback, stop, audit ------------------------------------------

function renderKnobs() {
  const box = $("knobs");
  if (!edited.ok) { box.querySelectorAll("input").forEach((i) => { i.disabled = true; }); return; }
  const knobs = call(tc.knobs, edited.json);
  if (!Array.isArray(knobs)) { box.replaceChildren(el("p", { class: "bad", text: knobs.error })); return; }
  const sig = knobs.map((k) => `${k.index}:${k.rule}:${k.function}`).join(",");
  if (box.dataset.sig !== sig) {
    box.dataset.sig = sig;
    box.replaceChildren(...(knobs.length ? knobs.map(knobRow) : [el("p", { text: "No split or bucket comparison in the rules: edit them above." })]));
  }
  for (const k of knobs) {
    const input = $(`knob-${k.index}`);
    if (!input) continue;
    input.disabled = false;
    if (document.activeElement !== input || !input.dataset.dragging) input.value = k.share;
    $(`knob-value-${k.index}`).textContent = `${+k.share.toFixed(4)}%`;
    $(`knob-label-${k.index}`).textContent = knobLabel(k);
  }
}

/** "rule 1 (line 1): split("checkout") < 30", the comparison as it stands in the editor. */
function knobLabel(k) {
  const line = $("editor").value.split("\n")[k.line - 1] ?? "";
  const from = line.lastIndexOf(`${k.function}(`, Math.max(0, k.column - 1));
  const m = from < 0 ? null : line.slice(from).match(/^.*?(<=|>=|<|>)\s*[0-9.]+/);
  const name = k.name ? ` ${k.name}` : "";
  return `rule ${k.rule}${name} (line ${k.line}): ${m ? m[0] : `${k.function}(…) ${k.op} ${k.value}`}`;
}

function knobRow(k) {
  const id = `knob-${k.index}`;
  const input = el("input", { type: "range", id, min: "0", max: "100", step: "1", value: String(k.share),
    "data-index": String(k.index), "aria-describedby": `knob-value-${k.index}` });
  input.addEventListener("input", () => {
    input.dataset.dragging = "1";
    const res = call(tc.set_knob, $("editor").value, k.index, Number(input.value));
    if (res.error) { $("check-status").textContent = res.error; return; }
    $("editor").value = res.rules;
    recheck();
  });
  input.addEventListener("change", () => { delete input.dataset.dragging; });
  return el("div", { class: "knob" }, el("label", { for: id, id: `knob-label-${k.index}`, text: knobLabel(k) }), input,
    el("output", { id: `knob-value-${k.index}`, for: id }));
}

function showOutcome(what, r) {
  const p = $("push-result");
  const a = r.answer;
  if (a.manifest) {
    $("manifest").textContent = a.manifest;
    $("manifest-panel").hidden = false;
  }
  if (r.ok) {
    const e = a.entry ?? {};
    p.className = "ok";
    p.textContent = `${what}: ${e.outcome ?? "ok"} ${short(e.old_hash)} → ${short(e.new_hash)}` +
      (a.manifest ? " (manifest rendered; nothing applied to the cluster)" : "");
    if (a.state) applyState(a.state, { replaceEditor: true });
  } else {
    p.className = "bad";
    p.textContent = `${what} refused (HTTP ${r.status}): ${a.error ?? "unknown error"}`;
  }
}

async function doPost(what, path, body) {
  for (const b of ["push", "rollback", "stop"]) $(b).disabled = true;
  $("push-result").className = "";
  $("push-result").textContent = `${what}…`;
  try {
    showOutcome(what, await post(path, body));
  } catch (e) {
    $("push-result").className = "bad";
    $("push-result").textContent = `${what} failed: ${e}`;
  } finally {
    $("rollback").disabled = !state?.previous;
    $("stop").disabled = false;
    recheck();
  }
}

function auditRow(e) {
  const diff = el("details", {}, el("summary", { text: e.diff ? `${e.diff.split("\n").length} lines` : "none" }),
    el("pre", { class: "diff" }, ...(e.diff ?? "").split("\n").map((l) =>
      el("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, l + "\n"))));
  return el("tr", { class: `audit ${e.outcome}`, "data-action": e.action, "data-outcome": e.outcome },
    el("td", { class: "time", text: when(e.time), title: e.time }),
    el("td", { class: "operator", text: e.operator }),
    el("td", { class: "action", text: e.action }),
    el("td", { class: "outcome", text: e.outcome }),
    el("td", { class: "reason", text: e.reason ?? "" }),
    el("td", { class: "hashes" }, el("code", { text: `${short(e.old_hash)} → ${short(e.new_hash)}` })),
    el("td", {}, diff));
}

function renderAudit() {
  $("audit-table").tBodies[0].replaceChildren(...auditEntries.slice().reverse().map(auditRow));
}

// ---- wiring ------------------------------------------------------------------------------

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("stats", (m) => onStats(JSON.parse(m.data)));
  es.addEventListener("audit", (m) => { auditEntries.push(JSON.parse(m.data)); renderAudit(); });
  es.addEventListener("config", (m) => applyState(JSON.parse(m.data), { replaceEditor: false }));
  es.addEventListener("open", () => { $("load-error").hidden = true; });
  es.addEventListener("error", () => {
    $("load-error").hidden = false;
    $("load-error").textContent = "Lost the connection to the cockpit server; reconnecting…";
  });
}

async function main() {
  const editor = $("editor");
  const recheckSoon = debounce(recheck, 120);
  editor.addEventListener("input", recheckSoon);
  editor.addEventListener("scroll", syncScroll);
  for (const id of ["req-method", "req-path", "req-headers", "req-cookies", "req-query", "req-claims"]) {
    $(id).addEventListener("input", debounce(explainNow, 120));
  }
  $("push").addEventListener("click", () => doPost("push", "/api/push",
    { rules: editor.value, operator: $("operator").value || undefined }));
  $("rollback").addEventListener("click", () => doPost("rollback", "/api/rollback", { operator: $("operator").value || undefined }));
  $("stop").addEventListener("click", () => $("stop-dialog").showModal());
  $("stop-dialog").addEventListener("close", () => {
    if ($("stop-dialog").returnValue === "confirm") doPost("everyone to stable", "/api/stop", { operator: $("operator").value || undefined });
  });
  $("revert-editor").addEventListener("click", () => { editor.value = state.config.rules; recheck(); });
  $("copy-manifest").addEventListener("click", async () => {
    const text = $("manifest").textContent;
    try { await navigator.clipboard.writeText(text); $("copy-manifest").textContent = "Copied"; }
    catch {
      const range = document.createRange();
      range.selectNodeContents($("manifest"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      $("copy-manifest").textContent = "Selected: press Ctrl+C";
    }
  });

  try {
    await init();
    ready = true;
    const s = await (await fetch("/api/state")).json();
    applyState(s, { replaceEditor: true });
    auditEntries = await (await fetch("/api/audit")).json();
    renderAudit();
    if (s.token_required && !sessionStorage.getItem(TOKEN_KEY)) await askToken();
  } catch (e) {
    $("load-error").hidden = false;
    $("load-error").textContent = `Could not start: ${e}`;
    return;
  }
  connect();
  document.body.dataset.ready = "1";
}

main();

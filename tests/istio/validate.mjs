// Validate Kubernetes manifests against Istio's CRD schemas, offline, with the validators
// that ship in @kubernetes-models/istio (installed by `npm ci --prefix tests/istio`).
//
//   node tests/istio/validate.mjs < docs.json
//
// stdin:  [{"source": "istio/gateway.yaml#1", "doc": {...}}, ...]
// stdout: [{"source": ..., "kind": ..., "errors": ["/spec/phase: must be equal to ...", ...]}, ...]
//
// Two checks per document:
// 1. the package's schema validator (types, enums, patterns, required fields, ObjectMeta);
// 2. unknown fields. CRD schemas do not say `additionalProperties: false` (the API server
//    prunes unknown fields instead, silently), so a misspelt key passes check 1. A key is
//    known when the schema has an opinion about it: replacing its value with `true` or with
//    a string makes the validator report an error at that key (or below). A key nobody
//    validates is unknown. Free-form subtrees (x-kubernetes-preserve-unknown-fields, such as
//    a WasmPlugin's pluginConfig) are listed in FREE_FORM and skipped.
// The CRDs' CEL rules (x-kubernetes-validations) are in no JSON schema: tests/e2e check them.

const FREE_FORM = {
  WasmPlugin: [["spec", "pluginConfig"]],
};

async function modelFor(doc) {
  const [group, version] = String(doc.apiVersion ?? "").split("/");
  const kind = String(doc.kind ?? "");
  if (!group || !version || !/^[A-Za-z]+$/.test(kind)) {
    throw new Error(`apiVersion/kind missing or malformed: ${doc.apiVersion} ${doc.kind}`);
  }
  let mod;
  try {
    mod = await import(`@kubernetes-models/istio/${group}/${version}/${kind}`);
  } catch (e) {
    throw new Error(`no schema for ${doc.apiVersion} ${kind} in @kubernetes-models/istio`);
  }
  if (!mod[kind]) throw new Error(`no model ${kind} in @kubernetes-models/istio/${group}/${version}`);
  return mod[kind];
}

function schemaErrors(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

const pointer = (path) => path.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("");

function withValue(doc, path, value) {
  const copy = structuredClone(doc);
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k];
  node[path.at(-1)] = value;
  return copy;
}

function isKnown(Model, doc, path) {
  const ptr = pointer(path);
  for (const probe of [true, "__traffic_color_probe__"]) {
    const errs = schemaErrors(Model, withValue(doc, path, probe));
    if (errs.some((e) => e.instancePath === ptr || e.instancePath.startsWith(ptr + "/"))) return true;
  }
  return false;
}

function unknownFields(Model, doc) {
  const free = (FREE_FORM[doc.kind] ?? []).map(pointer);
  const found = [];
  const walk = (node, path) => {
    if (free.includes(pointer(path))) return;
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, [...path, i]));
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      const child = [...path, key];
      if (isKnown(Model, doc, child)) walk(node[key], child);
      else found.push(`${pointer(child)}: unknown field \`${key}\``);
    }
  };
  walk(doc, []);
  return found;
}

async function check({ source, doc }) {
  const kind = doc?.kind ?? "?";
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { source, kind, errors: ["not an object"] };
  }
  let Model;
  try {
    Model = await modelFor(doc);
  } catch (e) {
    return { source, kind, errors: [e.message] };
  }
  const errs = schemaErrors(Model, doc).map((e) => `${e.instancePath || "/"}: ${e.message}`);
  if (errs.length) return { source, kind, errors: errs };
  return { source, kind, errors: unknownFields(Model, doc) };
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const items = JSON.parse(input);
const results = [];
for (const item of items) results.push(await check(item));
process.stdout.write(JSON.stringify(results, null, 2) + "\n");

// Validate Kubernetes manifests offline against the schemas of the API each one belongs to,
// with the validators that ship in these npm packages (`npm ci --prefix tests/istio`):
//   networking.istio.io, security.istio.io, extensions.istio.io  @kubernetes-models/istio
//   argoproj.io (Rollout, AnalysisTemplate, ...)                   @kubernetes-models/argo-rollouts
//   core v1, apps/v1, ... (Service, Deployment)                    kubernetes-models
//   flagger.app (Canary, MetricTemplate)                           Flagger's own CRD schema, vendored
//                                                                  in schemas/flagger/ (SOURCE.json
//                                                                  says where from), run with ajv
//
//   node tests/istio/validate.mjs < docs.json
//
// stdin:  [{"source": "istio/gateway.yaml#1", "doc": {...}}, ...]
// stdout: [{"source": ..., "kind": ..., "errors": ["/spec/phase: must be equal to ...", ...]}, ...]
//
// Two checks per document:
// 1. the schema validator (types, enums, patterns, required fields, ObjectMeta);
// 2. unknown fields. CRD schemas do not say `additionalProperties: false` (the API server
//    prunes unknown fields instead, silently), so a misspelt key passes check 1. A key is
//    known when the schema has an opinion about it: replacing its value with `true` or with
//    a string makes the validator report an error at that key (or below). A key nobody
//    validates is unknown. Free-form subtrees (x-kubernetes-preserve-unknown-fields, such as
//    a WasmPlugin's pluginConfig) are listed in FREE_FORM and skipped.
// The CRDs' CEL rules (x-kubernetes-validations) and the controllers' own checks are in no
// JSON schema: the Python side checks those.

import { readFileSync } from "node:fs";
import Ajv from "ajv";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";

const FREE_FORM = {
  WasmPlugin: [["spec", "pluginConfig"]],
};

const ISTIO_GROUPS = ["networking.istio.io", "security.istio.io", "extensions.istio.io", "telemetry.istio.io"];
const FLAGGER_KINDS = { Canary: "canary", MetricTemplate: "metrictemplate" };

/** Errors of a @kubernetes-models model, as ajv reports them ({instancePath, message}). */
function modelErrors(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

async function model(pkg, path, kind, what) {
  let mod;
  try {
    mod = await import(`${pkg}/${path}`);
  } catch (e) {
    throw new Error(`no schema for ${what} in ${pkg}`);
  }
  if (!mod[kind]) throw new Error(`no model ${kind} in ${pkg}/${path}`);
  const Model = mod[kind];
  return (doc) => modelErrors(Model, doc);
}

/** Kubernetes' OpenAPI extensions, in plain JSON Schema for ajv. */
function openapiToJsonSchema(node) {
  if (Array.isArray(node)) return node.map(openapiToJsonSchema);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = openapiToJsonSchema(v);
  if (out["x-kubernetes-int-or-string"] === true) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  return out;
}

const flaggerValidators = {};

function flagger(version, kind) {
  const base = FLAGGER_KINDS[kind];
  if (!base) throw new Error(`no schema for flagger.app/${version} ${kind} (vendored: ${Object.keys(FLAGGER_KINDS).join(", ")})`);
  const key = `${base}-${version}`;
  if (!flaggerValidators[key]) {
    let schema;
    try {
      schema = JSON.parse(readFileSync(new URL(`./schemas/flagger/${key}.json`, import.meta.url), "utf8"));
    } catch (e) {
      throw new Error(`no schema for flagger.app/${version} ${kind} (schemas/flagger/${key}.json)`);
    }
    // strict: false lets ajv skip the x-kubernetes-* keywords; formats such as "string" or
    // "int32" are annotations in Kubernetes' OpenAPI, not checks.
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    flaggerValidators[key] = ajv.compile(openapiToJsonSchema(schema));
  }
  const check = flaggerValidators[key];
  return (doc) => {
    const errors = check(doc) ? [] : check.errors.map((e) => ({ instancePath: e.instancePath, message: e.message }));
    // The CRD says only `metadata: {type: object}`; the API server checks ObjectMeta itself.
    if (doc.metadata && typeof doc.metadata === "object") {
      for (const e of modelErrors(ObjectMeta, doc.metadata)) {
        errors.push({ instancePath: "/metadata" + e.instancePath, message: e.message });
      }
    }
    return errors;
  };
}

async function validatorFor(doc) {
  const apiVersion = String(doc.apiVersion ?? "");
  const kind = String(doc.kind ?? "");
  const parts = apiVersion.split("/");
  if (!apiVersion || parts.length > 2 || !/^[A-Za-z]+$/.test(kind)) {
    throw new Error(`apiVersion/kind missing or malformed: ${doc.apiVersion} ${doc.kind}`);
  }
  const [group, version] = parts.length === 2 ? parts : ["", parts[0]];
  const what = `${apiVersion} ${kind}`;
  if (ISTIO_GROUPS.includes(group)) return model("@kubernetes-models/istio", `${group}/${version}/${kind}`, kind, what);
  if (group === "argoproj.io") return model("@kubernetes-models/argo-rollouts", `${group}/${version}/${kind}`, kind, what);
  if (group === "flagger.app") return flagger(version, kind);
  if (group === "") return model("kubernetes-models", `${version}/${kind}`, kind, what);
  if (!group.includes(".") || group.endsWith(".k8s.io")) {
    return model("kubernetes-models", `${group}/${version}/${kind}`, kind, what);
  }
  throw new Error(`no schema for ${what}: no validator for the API group ${group}`);
}

const pointer = (path) => path.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("");

function withValue(doc, path, value) {
  const copy = structuredClone(doc);
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k];
  node[path.at(-1)] = value;
  return copy;
}

function isKnown(validate, doc, path) {
  const ptr = pointer(path);
  for (const probe of [true, "__traffic_color_probe__"]) {
    const errs = validate(withValue(doc, path, probe));
    if (errs.some((e) => e.instancePath === ptr || e.instancePath.startsWith(ptr + "/"))) return true;
  }
  return false;
}

function unknownFields(validate, doc) {
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
      if (isKnown(validate, doc, child)) walk(node[key], child);
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
  let validate;
  try {
    validate = await validatorFor(doc);
  } catch (e) {
    return { source, kind, errors: [e.message] };
  }
  const errs = validate(doc).map((e) => `${e.instancePath || "/"}: ${e.message}`);
  if (errs.length) return { source, kind, errors: [...new Set(errs)] };
  return { source, kind, errors: unknownFields(validate, doc) };
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const items = JSON.parse(input);
const results = [];
for (const item of items) results.push(await check(item));
process.stdout.write(JSON.stringify(results, null, 2) + "\n");

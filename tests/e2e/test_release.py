"""A canary release under Argo Rollouts or Flagger, offline: the components istio/argo-rollouts/
and istio/flagger/, down to the real Envoy running the module with the routes each engine
writes.

  .venv/bin/python -m pytest -q tests/e2e/test_release.py --wasm target/traffic_color.wasm

What is checked, and against what:
* rendering: istio/ with each component switched on, as istio/kustomization.yaml says
  (`kubectl kustomize` when kubectl is there, else the same steps in Python; with kubectl both
  are compared);
* schemas: every document passes its API's schema with unknown fields rejected (Istio and
  Argo Rollouts from npm @kubernetes-models, Kubernetes from kubernetes-models, Flagger from
  its CRD vendored in tests/istio/schemas/flagger/), and deliberately broken copies are caught
  with the file and the field;
* the controllers: what Argo Rollouts and Flagger check beyond the schemas, and the objects one
  manifest names in another (traffic_color_harness.release), broken copies included;
* agreement: the cohort the Rollout's header route and the Canary's match send to the canary is
  the cohort the base VirtualService sends there, and the one the analyses judge;
* the proxy: Envoy with the filter and the routes Argo writes at its cohort and weight steps,
  and the routes Flagger writes during an A/B analysis: the colored cohort reaches the canary.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness import istio as I
from traffic_color_harness import release as R
from traffic_color_harness.client import request

COMPONENTS = ("argo-rollouts", "flagger")


# ------------------------------------------------------------------------------ rendering


def _component_docs(name: str) -> list[tuple[str, dict]]:
    return [(s, d) for s, d in I.file_docs(I.ISTIO / name)]


def _render_without_kubectl(component: str) -> list[dict]:
    """What kustomize does with istio/ plus one component: the base's resources, then the
    component's resources, its patches (a file patch replaces the keys it gives, lists whole;
    `$patch: delete` removes the object), then the image patch on every WasmPlugin."""
    base = I.yaml_docs((I.ISTIO / "kustomization.yaml").read_text(encoding="utf-8"))[0]
    docs = [d for r in base["resources"] for d in I.yaml_docs((I.ISTIO / r).read_text(encoding="utf-8"))]
    comp_dir = I.ISTIO / component
    comp = I.yaml_docs((comp_dir / "kustomization.yaml").read_text(encoding="utf-8"))[0]
    assert comp["kind"] == "Component"
    docs += [d for r in comp.get("resources", []) for d in I.yaml_docs((comp_dir / r).read_text(encoding="utf-8"))]

    def key(d):
        return d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")

    def merge(dst: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)

    for p in comp.get("patches", []):
        patch = I.yaml_docs((comp_dir / p["path"]).read_text(encoding="utf-8") if "path" in p else p["patch"])[0]
        target = [d for d in docs if key(d) == key(patch)]
        assert len(target) == 1, f"patch {key(patch)} matches {len(target)} objects"
        if patch.pop("$patch", None) == "delete":
            docs.remove(target[0])
        else:
            merge(target[0], patch)
    pin = I.yaml_docs((I.ISTIO / "image.yaml").read_text(encoding="utf-8"))[0]["spec"]
    for d in docs:
        if d["kind"] == "WasmPlugin":
            d["spec"].update(pin)
    return docs


def _switched_on(tmp: Path, component: str) -> Path:
    """A copy of istio/ with `components: [component]`, as istio/kustomization.yaml says."""
    dst = tmp / f"istio-{component}"
    shutil.copytree(I.ISTIO, dst, ignore=shutil.ignore_patterns("README.md"))
    k = dst / "kustomization.yaml"
    text = k.read_text(encoding="utf-8")
    for line in ("# components:\n", f"# - {component}\n"):
        assert line in text, f"istio/kustomization.yaml lost the line {line!r}"
    text = text.replace("# components:\n", f"components:\n- {component}\n")
    k.write_text(text, encoding="utf-8")
    return dst


def _canon(docs: list[dict]) -> list[str]:
    return sorted(json.dumps(d, sort_keys=True) for d in docs)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    out = {c: _render_without_kubectl(c) for c in COMPONENTS}
    if I.kubectl() is not None:
        tmp = tmp_path_factory.mktemp("kustomize")
        for c in COMPONENTS:
            by_kubectl = I.kustomize(_switched_on(tmp, c))
            assert _canon(by_kubectl) == _canon(out[c]), f"{c}: the Python rendering differs from kubectl's"
            out[c] = by_kubectl
    return out


@pytest.fixture(scope="module")
def validator_ready():
    for pkg in ("@kubernetes-models/istio", "@kubernetes-models/argo-rollouts", "kubernetes-models", "ajv"):
        if not (I.VALIDATOR_DIR / "node_modules" / pkg / "package.json").is_file():
            pytest.fail(f"{pkg} is not installed: run `npm ci --prefix tests/istio` (make istio-deps)",
                        pytrace=False)


def _one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    return I.find(docs, kind, name)


def test_components_render_as_documented(rendered):
    kinds = {c: sorted(d["kind"] for d in docs) for c, docs in rendered.items()}
    assert kinds["argo-rollouts"] == sorted(["AnalysisTemplate", "DestinationRule", "Gateway", "RequestAuthentication",
                                             "Rollout", "Service", "VirtualService", "WasmPlugin"])
    # Flagger generates the VirtualService and the DestinationRules itself.
    assert kinds["flagger"] == sorted(["Canary", "Deployment", "Gateway", "MetricTemplate", "MetricTemplate",
                                       "RequestAuthentication", "WasmPlugin"])
    vs = _one(rendered["argo-rollouts"], "VirtualService")
    base_vs = I.yaml_docs((I.ISTIO / "virtualservice.yaml").read_text(encoding="utf-8"))[0]
    assert vs["spec"]["hosts"] == base_vs["spec"]["hosts"] and vs["spec"]["gateways"] == base_vs["spec"]["gateways"]
    assert [r["name"] for r in vs["spec"]["http"]] == ["primary"]
    dr = _one(rendered["argo-rollouts"], "DestinationRule")
    assert all("version" not in s["labels"] for s in dr["spec"]["subsets"]), "Rollout pods carry no version label"


# -------------------------------------------------------------------------------- schemas


def test_every_document_passes_its_schema(validator_ready, rendered):
    items = []
    for c in COMPONENTS:
        items += _component_docs(c)
        items += [(f"kustomize[{c}]: {d['kind']} {d['metadata']['name']}", d) for d in rendered[c]]
    results = I.validate(items)
    assert set(results) == {s for s, _ in items}
    failures = {s: e for s, e in results.items() if e}
    failures.update({s: e for s, d in items if (e := I.cel_errors(d))})
    assert not failures, json.dumps(failures, indent=2)


def _doc(rel: str, index: int = 0) -> dict:
    return I.yaml_docs((I.REPO / rel).read_text(encoding="utf-8"))[index]


def _mutated(rel: str, f, index: int = 0) -> dict:
    d = _doc(rel, index)
    f(d)
    return d


def _steps(d):
    return d["spec"]["strategy"]["canary"]["steps"]


SCHEMA_BROKEN = [
    ("istio/argo-rollouts/rollout.yaml", "header matcher typo",
     lambda d: _steps(d)[1]["setHeaderRoute"]["match"][0].update(headerVal={"exact": "canary"}),
     "/spec/strategy/canary/steps/1/setHeaderRoute/match/0/headerVal: unknown field `headerVal`"),
    ("istio/argo-rollouts/rollout.yaml", "weight as text", lambda d: _steps(d)[4].update(setWeight="ten"),
     "/spec/strategy/canary/steps/4/setWeight: must be integer"),
    ("istio/argo-rollouts/rollout.yaml", "pod template typo",
     lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"),
     "/spec/template/spec/containers/0/imagePullPolicyy: unknown field"),
    ("istio/argo-rollouts/analysistemplate.yaml", "prometheus query typo",
     lambda d: d["spec"]["metrics"][0]["provider"]["prometheus"].update(qeury="up"),
     "/spec/metrics/0/provider/prometheus/qeury: unknown field"),
    ("istio/argo-rollouts/service.yaml", "port as text", lambda d: d["spec"]["ports"][0].update(port="http"),
     "/spec/ports/0/port: must be integer"),
    ("istio/flagger/canary.yaml", "A/B match typo",
     lambda d: d["spec"]["analysis"]["match"][0]["headers"]["x-version-route"].update(exatc="canary"),
     "/spec/analysis/match/0/headers/x-version-route/exatc: unknown field"),
    ("istio/flagger/canary.yaml", "interval in hours", lambda d: d["spec"]["analysis"].update(interval="1h"),
     '/spec/analysis/interval: must match pattern "^[0-9]+(m|s)"'),
    ("istio/flagger/canary.yaml", "unknown provider", lambda d: d["spec"].update(provider="istioo"),
     "/spec/provider: must be equal to one of the allowed values"),
    ("istio/flagger/canary.yaml", "threshold as text",
     lambda d: d["spec"]["analysis"]["metrics"][0]["thresholdRange"].update(max="1%"),
     "/spec/analysis/metrics/0/thresholdRange/max: must be number"),
    ("istio/flagger/canary.yaml", "metadata typo", lambda d: d["metadata"].update(lables={"a": "b"}),
     "/metadata/lables: unknown field"),
    ("istio/flagger/canary.yaml", "no analysis", lambda d: d["spec"].pop("analysis"),
     "/spec: must have required property 'analysis'"),
    ("istio/flagger/metrictemplates.yaml", "no query", lambda d: d["spec"].pop("query"),
     "/spec: must have required property 'query'"),
    ("istio/flagger/deployment.yaml", "replicas as text", lambda d: d["spec"].update(replicas="two"),
     "/spec/replicas: must be integer"),
    ("istio/flagger/canary.yaml", "an apiVersion Flagger does not serve",
     lambda d: d.update(apiVersion="flagger.app/v1"), "no schema for flagger.app/v1 Canary"),
]


def test_schema_errors_name_the_file_and_the_field(validator_ready):
    items = [(f"{rel}: {what}", _mutated(rel, f)) for rel, what, f, _ in SCHEMA_BROKEN]
    results = I.validate(items)
    missed = [f"{source}: expected {expect!r}, got {results[source]}"
              for (source, _), (_, _, _, expect) in zip(items, SCHEMA_BROKEN)
              if not any(expect in e for e in results[source])]
    assert not missed, "\n".join(missed)


def test_flagger_schema_is_the_vendored_crd():
    """tests/istio/schemas/flagger/ holds Flagger's CRD schemas byte for byte as recorded in
    SOURCE.json: an edit shows up here, not as a silently weaker check."""
    import hashlib

    folder = I.VALIDATOR_DIR / "schemas" / "flagger"
    source = json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
    assert source["tag"] == "v1.44.0" and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    on_disk = {p.name for p in folder.glob("*.json")} - {"SOURCE.json"}
    assert on_disk == set(source["files"])
    for name, digest in source["files"].items():
        schema_bytes = (folder / name).read_bytes()
        assert hashlib.sha256(schema_bytes).hexdigest() == digest, f"{name} differs from the vendored copy"
        schema = json.loads(schema_bytes)
        assert schema["type"] == "object" and "spec" in schema["properties"]


# ------------------------------------------------------------------------------ controllers


def test_the_controllers_accept_the_examples(rendered):
    assert R.argo_errors(rendered["argo-rollouts"]) == []
    assert R.flagger_errors(rendered["flagger"]) == []


def _with(docs: list[dict], kind: str, f, name: str | None = None) -> list[dict]:
    docs = copy.deepcopy(docs)
    f(_one(docs, kind, name))
    return docs


def _canary_spec(d):
    return d["spec"]["strategy"]["canary"]


CONTROLLER_BROKEN = [
    ("argo-rollouts", "header route not in managedRoutes",
     lambda docs: _with(docs, "Rollout", lambda d: _canary_spec(d)["trafficRouting"].update(managedRoutes=[{"name": "other"}])),
     "does not exist in spec.strategy.canary.trafficRouting.managedRoutes"),
    ("argo-rollouts", "cohort before any canary pod",
     lambda docs: _with(docs, "Rollout", lambda d: _steps(d).pop(0)),
     "before any step gave it pods"),
    ("argo-rollouts", "route name not in the VirtualService",
     lambda docs: _with(docs, "VirtualService", lambda d: d["spec"]["http"][0].update(name="main")),
     "has no http route named 'primary'"),
    ("argo-rollouts", "canary subset missing from the weighted route",
     lambda docs: _with(docs, "VirtualService", lambda d: d["spec"]["http"][0]["route"].pop(1)),
     "Canary DestinationRule subset 'canary' not found in route"),
    ("argo-rollouts", "DestinationRule without the stable subset",
     lambda docs: _with(docs, "DestinationRule", lambda d: d["spec"]["subsets"].pop(0)),
     "has no subset 'stable'"),
    ("argo-rollouts", "route host not the DestinationRule's",
     lambda docs: _with(docs, "VirtualService", lambda d: d["spec"]["http"][0]["route"][1]["destination"].update(host="web")),
     "is not the DestinationRule's host"),
    ("argo-rollouts", "analysis argument left without a value",
     lambda docs: _with(docs, "Rollout", lambda d: _canary_spec(d)["analysis"]["args"].pop(0)),
     "no value for argument(s) cohort"),
    ("argo-rollouts", "a managed route written by hand",
     lambda docs: _with(docs, "VirtualService", lambda d: d["spec"]["http"].insert(0, {
         "name": "cohort", "route": [{"destination": {"host": "web.shop.svc.cluster.local", "subset": "canary"}}]})),
     "managed route 'cohort' is also a route"),
    ("argo-rollouts", "two step types in one step",
     lambda docs: _with(docs, "Rollout", lambda d: _steps(d)[4].update(pause={})),
     "exactly one step type per step"),
    ("flagger", "a hand-written VirtualService for Flagger's service",
     lambda docs: docs + [I.yaml_docs((I.ISTIO / "virtualservice.yaml").read_text(encoding="utf-8"))[0]],
     "VirtualService shop/web is written by hand"),
    ("flagger", "template variable not set",
     lambda docs: _with(docs, "Canary", lambda d: d["spec"]["analysis"]["metrics"][0]["templateVariables"].pop("baseline")),
     "template variable 'baseline' is not in templateVariables"),
    ("flagger", "MetricTemplate not there",
     lambda docs: _with(docs, "Canary", lambda d: d["spec"]["analysis"]["metrics"][1]["templateRef"].update(name="p95")),
     "MetricTemplate shop/p95 not found"),
    ("flagger", "targetRef to a Deployment that is not there",
     lambda docs: _with(docs, "Canary", lambda d: d["spec"]["targetRef"].update(name="webb")),
     "targetRef Deployment shop/webb not found"),
    ("argo-rollouts", "a header matcher with two values",
     lambda docs: _with(docs, "Rollout", lambda d: _steps(d)[1]["setHeaderRoute"]["match"][0]["headerValue"].update(prefix="c")),
     "exactly one of exact, regex, prefix"),
    ("flagger", "A/B match without iterations",
     lambda docs: _with(docs, "Canary", lambda d: (d["spec"]["analysis"].pop("iterations"),
                                                   d["spec"]["analysis"].update(stepWeight=10))),
     "needs analysis.iterations"),
]


@pytest.mark.parametrize("component,what,mutate,expect", CONTROLLER_BROKEN, ids=[c[1] for c in CONTROLLER_BROKEN])
def test_controller_checks_catch(rendered, component, what, mutate, expect):
    docs = mutate(rendered[component])
    errors = R.argo_errors(docs) + R.flagger_errors(docs)
    assert any(expect in e for e in errors), errors


# -------------------------------------------------------------------------------- agreement


def _canary_colors_of_base() -> set[str]:
    vs = I.yaml_docs((I.ISTIO / "virtualservice.yaml").read_text(encoding="utf-8"))[0]
    return {m["headers"]["x-version-route"]["exact"] for r in vs["spec"]["http"]
            for m in r.get("match") or [] if r["route"][0]["destination"]["subset"] == "canary"}


def test_every_engine_sends_the_same_cohort_and_judges_it(rendered):
    """The colors the base routes to the canary are the ones Argo's header route and
    Flagger's A/B match route there, and the ones both analyses count as the cohort."""
    cohort = _canary_colors_of_base()
    ro = _one(rendered["argo-rollouts"], "Rollout")
    header_routes = [s["setHeaderRoute"] for s in _steps(ro) if s.get("setHeaderRoute", {}).get("match")]
    assert len(header_routes) == 1
    assert {m["headerValue"]["exact"] for m in header_routes[0]["match"]} == cohort
    assert all(m["headerName"] == "x-version-route" for m in header_routes[0]["match"])
    # The cohort comes first: the header route precedes every weight.
    first_weight = next(i for i, s in enumerate(_steps(ro)) if "setWeight" in s)
    assert _steps(ro).index({"setHeaderRoute": header_routes[0]}) < first_weight
    args = {a["name"]: a["value"] for a in ro["spec"]["strategy"]["canary"]["analysis"]["args"]}
    assert set(args["cohort"].split("|")) == cohort and args["baseline"] == "stable"

    canary = _one(rendered["flagger"], "Canary")
    assert {m["headers"]["x-version-route"]["exact"] for m in canary["spec"]["analysis"]["match"]} == cohort
    for m in canary["spec"]["analysis"]["metrics"]:
        assert set(m["templateVariables"]["cohort"].split("|")) == cohort
        assert m["templateVariables"]["baseline"] == "stable"


# ------------------------------------------------------------------------------------ proxy


CLUSTERS = {"stable": "stable", "canary": "canary", "web-primary": "stable", "web-canary": "canary"}


def _envoy_with(envoys, name: str, vs: dict):
    cfg = envoys.render()
    envoy_config.routes(cfg)[:] = R.envoy_routes(vs, CLUSTERS)
    return envoys.start_rendered(cfg, name)


def _versions(port: int, headers: list[list[str]], n: int) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(n):
        r = request(port, "GET", "/", headers)
        assert r.status == 200, (r.status, r.body[:200])
        seen[r.json["version"]] = seen.get(r.json["version"], 0) + 1
    return seen


COHORT = [["x-canary", "true"]]  # rule 1: canary
EVERYONE = []  # the default: stable


def test_argo_steps_through_envoy(envoys, rendered):
    """The VirtualService Argo writes at the cohort step (header route, weight 0) and at
    setWeight 50 (header route kept): the cohort always reaches the canary; the rest reaches
    only stable, then both."""
    docs = rendered["argo-rollouts"]
    vs, ro = _one(docs, "VirtualService"), _one(docs, "Rollout")
    cohort_step = _envoy_with(envoys, "argo-cohort", R.argo_virtualservice(vs, ro, ["cohort"], 0))
    assert _versions(cohort_step.port, COHORT, 10) == {"canary": 10}
    assert _versions(cohort_step.port, EVERYONE, 10) == {"stable": 10}
    half = _envoy_with(envoys, "argo-weight-50", R.argo_virtualservice(vs, ro, ["cohort"], 50))
    assert _versions(half.port, COHORT, 20) == {"canary": 20}
    split = _versions(half.port, EVERYONE, 60)
    assert set(split) == {"stable", "canary"}, split  # each side 2**-60 likely to be missing
    # A client cannot join the cohort by sending the color itself.
    assert _versions(cohort_step.port, [["x-version-route", "canary"]], 5) == {"stable": 5}


def test_flagger_ab_routes_through_envoy(envoys, rendered):
    canary = _one(rendered["flagger"], "Canary")
    analysing = _envoy_with(envoys, "flagger-analysis", R.flagger_virtualservice(canary, True))
    assert _versions(analysing.port, COHORT, 10) == {"canary": 10}
    assert _versions(analysing.port, EVERYONE, 10) == {"stable": 10}
    idle = _envoy_with(envoys, "flagger-idle", R.flagger_virtualservice(canary, False))
    assert _versions(idle.port, COHORT, 5) == {"stable": 5}


# ---------------------------------------------------------------------- rules against routes


@pytest.mark.parametrize("variant", ("base", *COMPONENTS))
def test_rules_and_routes_agree_in_what_kustomize_renders(cli, rendered, variant, tmp_path):
    """`traffic-color routes` on the whole rendering (as `kubectl kustomize istio/ |
    traffic-color routes istio/wasmplugin.yaml -` would run): every tag has its route, every
    route on the color is reachable; and it does catch a tag left without one."""
    import subprocess

    docs = I.yaml_docs((I.ISTIO / "virtualservice.yaml").read_text(encoding="utf-8")) if variant == "base" \
        else rendered[variant]
    text = "\n---\n".join(json.dumps(d) for d in docs)
    r = subprocess.run([str(cli), "routes", "istio/wasmplugin.yaml", "-"], input=text, cwd=I.REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("every route on the color is reachable"), r.stdout
    # The same manifests against rules with one more tag: reported, exit 1.
    more = (I.ISTIO / "rules.tc").read_text(encoding="utf-8").replace(
        "default ->", 'match { cookie["theme"] == "purple" } -> "purple"\ndefault ->')
    rules = tmp_path / "more.tc"
    rules.write_text(more, encoding="utf-8")
    r = subprocess.run([str(cli), "routes", str(rules), "-"], input=text, cwd=I.REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and '"purple"' in r.stdout and "has no route in VirtualService shop/web" in r.stdout, \
        r.stdout + r.stderr

"""The release engines' part, played offline: what Argo Rollouts and Flagger do with the
manifests in istio/argo-rollouts/ and istio/flagger/, written from their source, so a test can
hold the examples to it without a cluster.

* the queries an analysis runs: an AnalysisTemplate's `{{args.x}}` (Argo Rollouts) and a
  MetricTemplate's `{{ interval }}` / `{{ variables.x }}` (Flagger, Go templates with
  missingkey=error), rendered the way each engine renders them, and each verdict on a value
  (Argo's successCondition, only in the form `result[0] <op> <number>`; Flagger's
  thresholdRange);
* the checks their controllers make that no JSON schema carries (Argo Rollouts
  pkg/apis/rollouts/validation, rollout/trafficrouting/istio; Flagger pkg/router/istio.go),
  plus the cross-object references they follow: the VirtualService route and the
  DestinationRule subsets a Rollout names, the templates and variables a Canary names;
* the VirtualService each engine writes (Argo's managed header route above its weighted
  route; Flagger's A/B routes), for the routes of an Envoy that plays the mesh.

Read from argo-rollouts at 9f8d111 (v1.10.0-rc1+70) and flagger v1.44.0.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

# ------------------------------------------------------------------------------ queries

ARGO_ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")
FLAGGER_VAR = re.compile(r"\{\{\s*(?:(variables)\.([A-Za-z0-9_]+)|([a-z]+))\s*\}\}")
FLAGGER_FUNCS = ("name", "namespace", "target", "service", "ingress", "route", "interval")


class TemplateError(Exception):
    pass


def argo_args(template: dict, given: list[dict]) -> dict[str, str]:
    """The arguments an AnalysisRun resolves: the template's defaults, then the Rollout's
    `analysis.args` values; every argument must end up with a value."""
    values = {a["name"]: a.get("value") for a in template["spec"].get("args", [])}
    for arg in given:
        if arg["name"] not in values:
            raise TemplateError(f"argument {arg['name']!r} is not declared by AnalysisTemplate "
                                f"{template['metadata']['name']}")
        if "value" not in arg:
            raise TemplateError(f"argument {arg['name']!r}: only `value` is supported here, "
                                f"not {sorted(arg)}")
        values[arg["name"]] = arg["value"]
    missing = sorted(k for k, v in values.items() if v is None)
    if missing:
        raise TemplateError(f"AnalysisTemplate {template['metadata']['name']}: no value for "
                            f"argument(s) {', '.join(missing)}")
    return values


def argo_query(metric: dict, args: dict[str, str]) -> str:
    """The PromQL of an AnalysisTemplate metric with `{{args.x}}` substituted."""
    query = metric["provider"]["prometheus"]["query"]

    def sub(m: re.Match) -> str:
        if m.group(1) not in args:
            raise TemplateError(f"metric {metric['name']}: unknown argument {m.group(1)!r}")
        return args[m.group(1)]

    out = ARGO_ARG.sub(sub, query)
    if "{{" in out:
        raise TemplateError(f"metric {metric['name']}: a placeholder other than {{{{args.x}}}} "
                            f"is left: {out!r}")
    return out


CONDITION = re.compile(r"^\s*result\[0\]\s*(<=|<|>=|>)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


def argo_verdict(metric: dict, result: list[float]) -> str:
    """Argo's phase for one measurement (utils/evaluate EvaluateResult with only a
    successCondition): Successful when it holds, else Failed; Error for an empty result.
    Only conditions of the form `result[0] <op> <number>` are understood here."""
    if "failureCondition" in metric:
        raise TemplateError(f"metric {metric['name']}: failureCondition is not evaluated here")
    m = CONDITION.match(metric.get("successCondition", ""))
    if not m:
        raise TemplateError(f"metric {metric['name']}: successCondition "
                            f"{metric.get('successCondition')!r} is not `result[0] <op> <number>`")
    if not result:
        return "Error"
    value, bound = result[0], float(m.group(2))
    holds = {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[m.group(1)]
    return "Successful" if holds else "Failed"


def flagger_query(template: dict, canary: dict, metric: dict) -> str:
    """The PromQL of a MetricTemplate for one Canary metric, as Flagger's RenderQuery makes
    it: `{{ interval }}` is the metric's interval, `{{ variables.x }}` its templateVariables;
    a name it does not know fails, like Go's missingkey=error."""
    variables = metric.get("templateVariables") or {}
    model = {
        "name": canary["metadata"]["name"],
        "namespace": canary["metadata"]["namespace"],
        "target": canary["spec"]["targetRef"]["name"],
        "service": (canary["spec"].get("service") or {}).get("name") or canary["spec"]["targetRef"]["name"],
        "interval": metric.get("interval") or "1m",
    }

    def sub(m: re.Match) -> str:
        if m.group(1):
            if m.group(2) not in variables:
                raise TemplateError(f"metric {metric['name']}: template variable {m.group(2)!r} "
                                    "is not in templateVariables")
            return variables[m.group(2)]
        if m.group(3) not in model:
            raise TemplateError(f"metric {metric['name']}: {{{{ {m.group(3)} }}}} is not rendered here")
        return model[m.group(3)]

    out = FLAGGER_VAR.sub(sub, template["spec"]["query"])
    if "{{" in out:
        raise TemplateError(f"MetricTemplate {template['metadata']['name']}: a placeholder is left: {out!r}")
    return out


def flagger_verdict(metric: dict, value: float) -> str:
    """Flagger's check of one value (scheduler_metrics.go): NaN is "no values found", a failed
    check; outside thresholdRange fails; inside passes."""
    if math.isnan(value):
        return "Failed"
    tr = metric.get("thresholdRange") or {}
    if "min" in tr and value < tr["min"]:
        return "Failed"
    if "max" in tr and value > tr["max"]:
        return "Failed"
    return "Successful"


# ----------------------------------------------------------------------- controllers' checks


def _find(docs: list[dict], kind: str, name: str, namespace: str) -> dict | None:
    found = [d for d in docs if d.get("kind") == kind and d["metadata"].get("name") == name
             and d["metadata"].get("namespace") == namespace]
    return found[0] if found else None


def _match_values(value: dict) -> list[str]:
    return [k for k in ("exact", "regex", "prefix") if value.get(k)]


STEP_TYPES = ("setWeight", "pause", "analysis", "experiment", "setCanaryScale", "setHeaderRoute",
              "setMirrorRoute", "plugin")


def argo_errors(docs: list[dict]) -> list[str]:
    """What the Argo Rollouts controller refuses (validation.go, validation_references.go,
    istio.go ValidateHTTPRoutes) for each Rollout with Istio traffic routing among `docs`,
    given the VirtualService, DestinationRule and AnalysisTemplates it names."""
    errors = []
    for ro in (d for d in docs if d.get("kind") == "Rollout"):
        name, ns = ro["metadata"]["name"], ro["metadata"]["namespace"]
        where = f"Rollout {ns}/{name}"
        canary = (ro["spec"].get("strategy") or {}).get("canary")
        if not canary:
            continue
        tr = canary.get("trafficRouting") or {}
        managed = [r["name"] for r in tr.get("managedRoutes") or []]
        istio = tr.get("istio")
        steps = canary.get("steps") or []
        pods = False  # has a step before this one given the canary pods?
        for i, step in enumerate(steps):
            kinds = [k for k in STEP_TYPES if k in step]
            if len(kinds) != 1:
                errors.append(f"{where}: steps[{i}]: exactly one step type per step, found {kinds}")
            if "setWeight" in step and not 0 <= step["setWeight"] <= 100:
                errors.append(f"{where}: steps[{i}].setWeight: must be within 0..100")
            if step.get("setWeight", 0) > 0 or "setCanaryScale" in step:
                pods = True
            hr = step.get("setHeaderRoute")
            if hr is not None:
                if istio is None:
                    errors.append(f"{where}: steps[{i}].setHeaderRoute: SetHeaderRoute requires "
                                  "TrafficRouting, supports Istio and ALB and Apisix")
                if not tr.get("managedRoutes"):
                    errors.append(f"{where}: spec.strategy.canary.trafficRouting.managedRoutes: "
                                  "required with setHeaderRoute")
                elif hr["name"] not in managed:
                    errors.append(f"{where}: steps[{i}].setHeaderRoute: {hr['name']!r}: Steps define a "
                                  "route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes")
                for j, m in enumerate(hr.get("match") or []):
                    if len(_match_values(m.get("headerValue") or {})) != 1:
                        errors.append(f"{where}: steps[{i}].setHeaderRoute.match[{j}].headerValue: "
                                      "exactly one of exact, regex, prefix")
                if hr.get("match") and not pods:
                    errors.append(f"{where}: steps[{i}].setHeaderRoute sends the cohort to the canary "
                                  "before any step gave it pods (setCanaryScale, or setWeight > 0)")
        errors += _argo_istio_errors(ro, istio, managed, docs) if istio else []
        errors += _argo_analysis_errors(ro, canary, docs)
    return errors


def _argo_istio_errors(ro: dict, istio: dict, managed: list[str], docs: list[dict]) -> list[str]:
    ns = ro["metadata"]["namespace"]
    where = f"Rollout {ns}/{ro['metadata']['name']}"
    errors = []
    dr_ref = istio.get("destinationRule")
    vs_refs = istio.get("virtualServices") or ([istio["virtualService"]] if istio.get("virtualService") else [])
    if not vs_refs:
        return [f"{where}: trafficRouting.istio: no virtualService"]
    dr = None
    if dr_ref:
        dr = _find(docs, "DestinationRule", dr_ref["name"], ns)
        if dr is None:
            errors.append(f"{where}: DestinationRule {ns}/{dr_ref['name']} not found")
        else:
            subsets = {s["name"] for s in dr["spec"].get("subsets") or []}
            for key in ("canarySubsetName", "stableSubsetName"):
                if dr_ref[key] not in subsets:
                    errors.append(f"{where}: DestinationRule {dr_ref['name']} has no subset {dr_ref[key]!r} ({key})")
    elif not (ro["spec"]["strategy"]["canary"].get("canaryService") and ro["spec"]["strategy"]["canary"].get("stableService")):
        errors.append(f"{where}: host-level routing needs canaryService and stableService")
    for ref in vs_refs:
        vs_name, _, vs_ns = ref["name"].partition(".")
        vs = _find(docs, "VirtualService", vs_name, vs_ns or ns)
        if vs is None:
            errors.append(f"{where}: VirtualService {vs_ns or ns}/{vs_name} not found")
            continue
        http = vs["spec"].get("http") or []
        names = [r.get("name") for r in http]
        for m in managed:
            if m in names:
                errors.append(f"{where}: managed route {m!r} is also a route of VirtualService {vs_name}: "
                              "Argo removes managed routes at the end of a rollout")
        wanted = ref.get("routes") or []
        if not wanted:
            unmanaged = [r for r in http if r.get("name") not in managed]
            if len(unmanaged) != 1:
                errors.append(f"{where}: VirtualService {vs_name} must have exactly one http route "
                              "when virtualService.routes is omitted")
            targets = unmanaged[:1]
        else:
            targets = []
            for w in wanted:
                found = [r for r in http if r.get("name") == w]
                if not found:
                    errors.append(f"{where}: VirtualService {vs_name} has no http route named {w!r}")
                targets += found
        for route in targets:
            dests = route.get("route") or []
            if dr_ref:
                got = {d["destination"].get("subset") for d in dests}
                for key, label in (("canarySubsetName", "Canary"), ("stableSubsetName", "Stable")):
                    if dr_ref[key] not in got:
                        errors.append(f"{where}: VirtualService {vs_name} route {route.get('name')!r}: "
                                      f"{label} DestinationRule subset '{dr_ref[key]}' not found in route")
                if dr is not None:
                    for d in dests:
                        if d["destination"]["host"] != dr["spec"]["host"]:
                            errors.append(f"{where}: VirtualService {vs_name} route {route.get('name')!r}: "
                                          f"destination host {d['destination']['host']!r} is not the "
                                          f"DestinationRule's host {dr['spec']['host']!r} (Argo's header "
                                          "route goes to the DestinationRule's host)")
    return errors


def _argo_analysis_errors(ro: dict, canary: dict, docs: list[dict]) -> list[str]:
    ns = ro["metadata"]["namespace"]
    where = f"Rollout {ns}/{ro['metadata']['name']}"
    errors = []
    uses = []
    if canary.get("analysis"):
        uses.append(("analysis", canary["analysis"], True))
    for i, step in enumerate(canary.get("steps") or []):
        if "analysis" in step:
            uses.append((f"steps[{i}].analysis", step["analysis"], False))
    for path, analysis, background in uses:
        for t in analysis.get("templates") or []:
            if t.get("clusterScope"):
                continue
            tmpl = _find(docs, "AnalysisTemplate", t["templateName"], ns)
            if tmpl is None:
                errors.append(f"{where}: {path}: AnalysisTemplate {ns}/{t['templateName']} not found")
                continue
            try:
                argo_args(tmpl, analysis.get("args") or [])
            except TemplateError as e:
                errors.append(f"{where}: {path}: {e}")
            for metric in tmpl["spec"].get("metrics") or []:
                if not background and metric.get("count") is None and metric.get("interval"):
                    errors.append(f"{where}: {path}: AnalysisTemplate {t['templateName']} has metric "
                                  f"{metric['name']} which runs indefinitely (set count)")
    return errors


def flagger_errors(docs: list[dict]) -> list[str]:
    """For each Canary among `docs`: what Flagger would refuse or silently undo, given the
    other documents: a hand-written VirtualService for its service (Flagger overwrites it), a
    targetRef or MetricTemplate that is not there, a template variable that is not set, an
    A/B match without iterations."""
    errors = []
    for c in (d for d in docs if d.get("kind") == "Canary"):
        name, ns = c["metadata"]["name"], c["metadata"]["namespace"]
        where = f"Canary {ns}/{name}"
        spec = c["spec"]
        apex = (spec.get("service") or {}).get("name") or spec["targetRef"]["name"]
        if _find(docs, "VirtualService", apex, ns) is not None:
            errors.append(f"{where}: VirtualService {ns}/{apex} is written by hand, but Flagger "
                          "generates it from the Canary and overwrites it")
        target = _find(docs, spec["targetRef"]["kind"], spec["targetRef"]["name"], ns)
        if target is None:
            errors.append(f"{where}: targetRef {spec['targetRef']['kind']} {ns}/{spec['targetRef']['name']} not found")
        analysis = spec["analysis"]
        if analysis.get("match") and "iterations" not in analysis:
            errors.append(f"{where}: analysis.match (A/B testing) needs analysis.iterations")
        for m in analysis.get("metrics") or []:
            ref = m.get("templateRef")
            if not ref:
                continue
            tmpl = _find(docs, "MetricTemplate", ref["name"], ref.get("namespace") or ns)
            if tmpl is None:
                errors.append(f"{where}: metric {m['name']}: MetricTemplate "
                              f"{ref.get('namespace') or ns}/{ref['name']} not found")
                continue
            try:
                flagger_query(tmpl, c, m)
            except TemplateError as e:
                errors.append(f"{where}: {e}")
    return errors


# ------------------------------------------------------------- the VirtualServices they write


def argo_virtualservice(vs: dict, rollout: dict, header_routes: list[str], weight: int) -> dict:
    """The VirtualService as Argo leaves it at a step: each active header route (by managed
    route name) above the others (createHeaderRoute: one match per header matcher, destination
    the DestinationRule's host and canary subset, weight 100), and the weighted route's canary
    destination at `weight`, stable at 100 - weight."""
    out = copy.deepcopy(vs)
    canary = rollout["spec"]["strategy"]["canary"]
    istio = canary["trafficRouting"]["istio"]
    dr = istio["destinationRule"]
    host = next(d["destination"]["host"] for r in out["spec"]["http"] for d in r["route"])
    routes = {}
    for step in canary["steps"]:
        hr = step.get("setHeaderRoute")
        if hr and hr.get("match"):
            routes[hr["name"]] = {
                "name": hr["name"],
                "match": [{"headers": {m["headerName"]: m["headerValue"]}} for m in hr["match"]],
                "route": [{"destination": {"host": host, "subset": dr["canarySubsetName"]}, "weight": 100}],
            }
    order = [r["name"] for r in canary["trafficRouting"]["managedRoutes"]]
    active = [routes[n] for n in order if n in header_routes]
    for route in out["spec"]["http"]:
        for d in route["route"]:
            subset = d["destination"].get("subset")
            if subset == dr["canarySubsetName"]:
                d["weight"] = weight
            elif subset == dr["stableSubsetName"]:
                d["weight"] = 100 - weight
    out["spec"]["http"] = active + out["spec"]["http"]
    return out


def flagger_virtualservice(canary: dict, analysing: bool) -> dict:
    """The VirtualService Flagger generates for an A/B Canary (router/istio.go): while an
    analysis runs, the `analysis.match` route to primary 0 / canary 100, then the default
    route to the primary; otherwise primary 100 / canary 0."""
    spec = canary["spec"]
    apex = (spec.get("service") or {}).get("name") or spec["targetRef"]["name"]
    ns = canary["metadata"]["namespace"]
    hosts = list(spec["service"].get("hosts") or [])
    if apex not in hosts and "*" not in hosts:
        hosts.append(apex)
    gateways = list(spec["service"].get("gateways") or ["mesh"])

    def dest(host: str, weight: int) -> dict:
        return {"destination": {"host": host}, "weight": weight}

    primary, canary_host = f"{apex}-primary", f"{apex}-canary"
    http = [{"match": spec["analysis"]["match"],
             "route": [dest(primary, 0 if analysing else 100), dest(canary_host, 100 if analysing else 0)]},
            {"route": [dest(primary, 100)]}]
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": apex, "namespace": ns},
            "spec": {"hosts": hosts, "gateways": gateways, "http": http}}


def envoy_routes(vs: dict, clusters: dict[str, str], header: str = "x-version-route") -> list[dict]:
    """Envoy routes for a VirtualService's http routes: exact matches on the color header,
    destinations mapped to clusters by `clusters` (subset or host -> cluster name); a route
    with weights becomes weighted_clusters (a zero weight left out)."""
    routes = []
    for r in vs["spec"]["http"]:
        weighted = [(clusters[d["destination"].get("subset") or d["destination"]["host"]], d.get("weight", 100))
                    for d in r["route"]]
        weighted = [(c, w) for c, w in weighted if w > 0]
        action: dict[str, Any] = ({"cluster": weighted[0][0]} if len(weighted) == 1 else
                                  {"weighted_clusters": {"clusters": [{"name": c, "weight": w} for c, w in weighted]}})
        for m in r.get("match") or [{}]:
            if set(m) - {"headers"}:
                raise TemplateError(f"unsupported match {m}")
            hs = []
            for name, sm in (m.get("headers") or {}).items():
                if name.lower() != header or set(sm) != {"exact"}:
                    raise TemplateError(f"unsupported header match {name}: {sm}")
                hs.append({"name": name, "string_match": {"exact": sm["exact"]}})
            match: dict[str, Any] = {"prefix": "/"}
            if hs:
                match["headers"] = hs
            routes.append({"match": match, "route": action})
    return routes

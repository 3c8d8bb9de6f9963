"""The Prometheus rules, the release analyses and the Grafana dashboard, against a real
Prometheus scraping the real Envoy with the filter.

  .venv/bin/python -m pytest -q tests/e2e/test_prometheus.py --wasm target/traffic_color.wasm

Needs Debian's prometheus package (promtool and the server; `make prometheus-tools`).

* promtool: prometheus/traffic-color.rules.yaml passes `promtool check rules`, its unit tests
  (tests/prometheus/) pass, every rule has one, and a broken rule or expectation is reported;
* the release: two Envoys (gateways of one job) with different configurations, Prometheus on
  loopback scraping their /stats/prometheus and evaluating the rules every second (with each
  alert's `for` set to 0s, the expressions as shipped). A mix is sent through one Envoy: 100
  requests colored stable, 50 colored canary (`x-canary: true`) that the canary upstream
  answers after 300 ms, one in five with a 503. Prometheus' HTTP API must then say: error
  ratio 0.2 for canary and 0 for stable, each p95 what Envoy's own histogram of the sent
  requests gives, canary's share 1/3; the alerts fire for canary (errors above stable), for
  blue (a color without traffic) and for the two configurations, and not for stable;
* the analyses: the queries of istio/argo-rollouts/analysistemplate.yaml and
  istio/flagger/metrictemplates.yaml, rendered as Argo Rollouts and Flagger render them, give
  the same numbers, fail the canary cohort and pass stable judged against itself;
* the dashboard: every query of prometheus/grafana-dashboard.json returns data.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness import istio as I
from traffic_color_harness import prometheus as P
from traffic_color_harness import release as R
from traffic_color_harness.client import request

STABLE_N, CANARY_N, FAIL_EVERY, DELAY_MS = 100, 50, 5, 300
# Generous: on a loaded 2-core machine Prometheus can take a while to see the last scrape.
WINDOW_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def tools():
    for name in ("promtool", "prometheus"):
        if shutil.which(name) is None:
            pytest.fail(f"{name} is not installed: run `make prometheus-tools` (apt-get install prometheus)",
                        pytrace=False)


# -------------------------------------------------------------------------------- promtool


def test_promtool_checks_the_rules(tools):
    r = P.promtool("check", "rules", P.RULES)
    assert r.returncode == 0, r.stdout + r.stderr
    n = sum(len(g["rules"]) for g in P.load_rules()["groups"])
    assert f"SUCCESS: {n} rules found" in r.stdout


def test_promtool_unit_tests_pass(tools):
    r = P.promtool("test", "rules", P.RULES_TESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_rule_is_unit_tested():
    """Each recording rule is read by a promql_expr_test, and each alert has a test in which
    it fires and one in which it does not."""
    tests = I.yaml_docs(P.RULES_TESTS.read_text(encoding="utf-8"))[0]["tests"]
    exprs = [t["expr"] for case in tests for t in case.get("promql_expr_test", [])]
    alerts = [(t["alertname"], bool(t.get("exp_alerts"))) for case in tests for t in case.get("alert_rule_test", [])]
    missing = []
    for group in P.load_rules()["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                if not any(re.search(rf"\b{re.escape(rule['record'])}\b", e) for e in exprs):
                    missing.append(f"recording rule {rule['record']}: no promql_expr_test")
            else:
                for fires in (True, False):
                    if (rule["alert"], fires) not in alerts:
                        missing.append(f"alert {rule['alert']}: no test in which it {'fires' if fires else 'stays quiet'}")
    assert not missing, "\n".join(missing)


def test_broken_rules_and_expectations_are_reported(tools, tmp_path):
    text = P.RULES.read_text(encoding="utf-8")
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text(text.replace("sum by (color) (rate(traffic_color_requests_total[5m]))",
                                   "sum by (color) (rate(traffic_color_requests_total[5m])", 1), encoding="utf-8")
    r = P.promtool("check", "rules", broken)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert str(broken) in out and "color:traffic_color_requests:rate5m" in out, out
    # A unit test whose expectation is wrong fails, naming the expression and both values.
    tests = P.RULES_TESTS.read_text(encoding="utf-8").replace("value: 487.5", "value: 300", 1)
    wrong = tmp_path / "wrong.test.yaml"
    wrong.write_text(tests.replace("../../prometheus/traffic-color.rules.yaml", str(P.RULES)), encoding="utf-8")
    r = P.promtool("test", "rules", wrong)
    assert r.returncode != 0
    assert "p95_5m" in r.stdout + r.stderr and "4.875E+02" in r.stdout + r.stderr, r.stdout + r.stderr


# --------------------------------------------------------------------------------- release


def _rules_for_the_test(path: Path) -> Path:
    """The rules as shipped, each alert's `for` set to 0s (the unit tests cover `for`), so an
    alert fires within the test's seconds; everything else unchanged."""
    rules = P.load_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    path.write_text(json.dumps(rules, indent=2) + "\n", encoding="utf-8")
    return path


def _send(port: int) -> dict[str, list[int]]:
    """The mix: stable requests (the default), canary ones (rule 1), slow, every FAIL_EVERY-th 503."""
    jobs = [("stable", [])] * STABLE_N
    for i in range(CANARY_N):
        headers = [["x-canary", "true"], ["x-upstream-delay-ms", str(DELAY_MS)]]
        if i % FAIL_EVERY == 0:
            headers.append(["x-upstream-status", "503"])
        jobs.append(("canary", headers))

    def one(job):
        color, headers = job
        r = request(port, "GET", "/", headers, timeout=10)
        return color, r, r.json["version"] if r.json else None

    statuses: dict[str, list[int]] = {"stable": [], "canary": []}
    # At most 5 at once: the test upstream (http.server) listens with a backlog of 5.
    with ThreadPoolExecutor(max_workers=5) as pool:
        for color, r, version in pool.map(one, jobs):
            assert version == color, f"a {color} request was served by {version}: {r.status} {r.headers} {r.body[:300]!r}"
            statuses[color].append(r.status)
    return statuses


def _envoy_histogram(envoy, color: str) -> list[tuple[float, float]]:
    """(le, cumulative count) of the filter's duration histogram for `color`, from Envoy."""
    _, body = envoy.admin("/stats/prometheus")
    out = []
    for line in body.decode().splitlines():
        m = re.match(r'^traffic_color_request_duration_milliseconds_bucket\{color="([^"]+)",le="([^"]+)"\} (\S+)$', line)
        if m and m.group(1) == color:
            out.append((math.inf if m.group(2) == "+Inf" else float(m.group(2)), float(m.group(3))))
    return sorted(out)


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile (promql/quantile.go bucketQuantile) on cumulative buckets."""
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == math.inf:
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return math.nan


@pytest.fixture(scope="module")
def release(tools, envoys, base_config, tmp_path_factory):
    """Two gateways (different configs: the second without debug_header), Prometheus scraping
    both, and the mix sent through the first once Prometheus has seen every series at zero."""
    run = tmp_path_factory.mktemp("prometheus")
    cfg = envoys.render()
    cfg["stats_flush_interval"] = "1s"  # histograms reach /stats/prometheus at each flush
    gateway = envoys.start_rendered(cfg, "gateway-a")
    other = envoy_config.filter_config(base_config)
    other.pop("debug_header")
    cfg_b = envoys.render(config=other)
    cfg_b["stats_flush_interval"] = "1s"
    second = envoys.start_rendered(cfg_b, "gateway-b")
    prom = P.start(run, {"gateways": [f"127.0.0.1:{gateway.admin_port}", f"127.0.0.1:{second.admin_port}"]},
                   [_rules_for_the_test(run / "traffic-color.rules.yaml")])
    try:
        # Every series the mix touches exists at 0 before it (the filter defines them at load),
        # so each rate() starts from a zero sample and the ratios are exact.
        zero = ('traffic_color_responses_total{color=~"canary|stable"} == 0 or '
                'traffic_color_request_duration_milliseconds_bucket{color=~"canary|stable"} == 0')
        prom.wait_for("every series at zero on both gateways",
                      lambda: len({r["metric"]["instance"] for r in prom.query(zero)}) == 2, WINDOW_TIMEOUT)
        statuses = _send(gateway.port)
        # ...and Prometheus has scraped all of it: what it holds for the first gateway is the mix.
        instance = f"127.0.0.1:{gateway.admin_port}"
        want = {"canary": CANARY_N, "stable": STABLE_N}
        for metric in ("traffic_color_responses_total", "traffic_color_request_duration_milliseconds_count"):
            prom.wait_for(f"{metric} of the mix in Prometheus", lambda m=metric: {
                c: v for c, v in prom.values(f'sum by (color) ({m}{{instance="{instance}"}})', "color").items()
                if v} == want, WINDOW_TIMEOUT)
        yield {"prom": prom, "gateway": gateway, "second": second, "statuses": statuses}
    finally:
        prom.stop()


def test_the_mix_was_sent_as_described(release):
    st = release["statuses"]
    assert st["stable"] == [200] * STABLE_N
    assert sorted(st["canary"]) == [200] * (CANARY_N - CANARY_N // FAIL_EVERY) + [503] * (CANARY_N // FAIL_EVERY)


def test_recorded_error_ratio_and_share_are_what_was_sent(release):
    prom = release["prom"]
    want_ratio = (CANARY_N // FAIL_EVERY) / CANARY_N
    ratios = prom.wait_for(
        "the recorded error ratios",
        lambda: (v := prom.values("color:traffic_color_error_ratio:rate5m", "color"))
        and abs(v.get("canary", math.nan) - want_ratio) < 1e-9 and v.get("stable") == 0 and v,
        WINDOW_TIMEOUT)
    assert set(ratios) == {"canary", "stable", "blue", "unset"}
    assert math.isnan(ratios["blue"]) and math.isnan(ratios["unset"]), ratios  # no traffic: 0/0
    # Each recording rule is evaluated on its own tick: wait for the share's to see the mix too.
    share = prom.wait_for(
        "the recorded share",
        lambda: (v := prom.values("color:traffic_color_requests:share5m", "color"))
        and abs(v.get("canary", math.nan) - CANARY_N / (CANARY_N + STABLE_N)) < 1e-9 and v,
        WINDOW_TIMEOUT)
    assert abs(share["stable"] - STABLE_N / (CANARY_N + STABLE_N)) < 1e-9, share
    assert share["blue"] == 0 and share["unset"] == 0
    above = prom.wait_for(
        "the recorded difference to stable",
        lambda: (v := prom.values("color:traffic_color_error_ratio_above_stable:rate5m", "color"))
        and abs(v.get("canary", math.nan) - want_ratio) < 1e-9 and v,
        WINDOW_TIMEOUT)
    assert "stable" not in above, above


def test_recorded_p95_is_what_envoy_measured_for_what_was_sent(release):
    prom, gateway = release["prom"], release["gateway"]
    # Envoy's own histogram: every canary request took at least the upstream's delay, every
    # stable one far less.
    canary = prom.wait_for("Envoy's canary histogram", lambda: (h := _envoy_histogram(gateway, "canary"))
                           and h[-1][1] == CANARY_N and h, WINDOW_TIMEOUT)
    stable = _envoy_histogram(gateway, "stable")
    assert stable[-1][1] == STABLE_N
    below_delay = max(c for le, c in canary if le < DELAY_MS)
    assert below_delay == 0, f"canary requests faster than the {DELAY_MS} ms delay: {canary}"
    want = {"canary": _quantile(0.95, canary), "stable": _quantile(0.95, stable)}
    # The delay puts every canary request in the (250, 500] ms bucket; stable's p95 is in a
    # lower one however busy the machine is.
    assert 250 < want["canary"] <= 500 and want["stable"] <= 250, want
    got = prom.wait_for(
        "the recorded p95",
        lambda: (v := prom.values("color:traffic_color_request_duration_milliseconds:p95_5m", "color"))
        and all(abs(v.get(c, math.nan) - want[c]) < 1e-9 * max(1, want[c]) for c in want) and v,
        WINDOW_TIMEOUT)
    diff = prom.values("color:traffic_color_request_duration_milliseconds:p95_above_stable_5m", "color")
    assert abs(diff["canary"] - (got["canary"] - got["stable"])) < 1e-9, diff


def _firing(prom) -> set[tuple[str, str]]:
    return {(a["labels"]["alertname"], a["labels"].get("color") or a["labels"].get("job", ""))
            for a in prom.alerts() if a["state"] == "firing"}


def test_alerts_fire_for_canary_and_not_for_stable(release):
    prom = release["prom"]
    want = {("TrafficColorCohortErrorsAboveStable", "canary"), ("TrafficColorColorWithoutTraffic", "blue"),
            ("TrafficColorConfigHashesDisagree", "gateways")}
    firing = prom.wait_for("the alerts", lambda: (f := _firing(prom)) >= want and f, WINDOW_TIMEOUT)
    assert firing == want, firing
    assert not any(color == "stable" for _, color in firing)
    unhealthy = [(r["name"], r.get("lastError")) for r in prom.rules() if r.get("health") != "ok"]
    assert not unhealthy, unhealthy
    hashes = prom.values('traffic_color_config_info > 0', "instance")
    assert len(hashes) == 2


def _argo(cohort: str | None = None) -> tuple[dict, dict[str, str]]:
    tmpl = I.yaml_docs((I.ISTIO / "argo-rollouts" / "analysistemplate.yaml").read_text(encoding="utf-8"))[0]
    ro = I.yaml_docs((I.ISTIO / "argo-rollouts" / "rollout.yaml").read_text(encoding="utf-8"))[0]
    given = [dict(a) for a in ro["spec"]["strategy"]["canary"]["analysis"]["args"]]
    if cohort:
        for a in given:
            if a["name"] == "cohort":
                a["value"] = cohort
    return tmpl, R.argo_args(tmpl, given)


def _flagger(cohort: str | None = None) -> list[tuple[dict, dict, dict]]:
    canary = I.yaml_docs((I.ISTIO / "flagger" / "canary.yaml").read_text(encoding="utf-8"))[0]
    templates = I.yaml_docs((I.ISTIO / "flagger" / "metrictemplates.yaml").read_text(encoding="utf-8"))
    out = []
    for m in canary["spec"]["analysis"]["metrics"]:
        m = json.loads(json.dumps(m))
        if cohort:
            m["templateVariables"]["cohort"] = cohort
        out.append((canary, m, next(t for t in templates if t["metadata"]["name"] == m["templateRef"]["name"])))
    return out


def test_the_analyses_fail_the_canary_cohort_and_agree(release):
    """Both engines' queries, as they render them, on the same Prometheus: the same numbers,
    and a failed measurement for the canary cohort (error ratio 0.2 above stable, p95 hundreds
    of ms above)."""
    prom = release["prom"]
    tmpl, args = _argo()
    argo = {}
    for metric in tmpl["spec"]["metrics"]:
        result = [float(r["value"][1]) for r in prom.query(R.argo_query(metric, args))]
        assert len(result) == 1, result
        argo[metric["name"]] = result[0]
        assert R.argo_verdict(metric, result) == "Failed", (metric["name"], result)
    assert abs(argo["cohort-error-ratio-above-baseline"] - (CANARY_N // FAIL_EVERY) / CANARY_N) < 1e-9
    assert argo["cohort-p95-above-baseline-ms"] > 200
    for canary, metric, template in _flagger():
        value = [float(r["value"][1]) for r in prom.query(R.flagger_query(template, canary, metric))]
        assert len(value) == 1
        assert abs(value[0] - argo[metric["name"]]) < 1e-9, (metric["name"], value, argo)
        assert R.flagger_verdict(metric, value[0]) == "Failed"


def test_the_analyses_pass_a_healthy_cohort(release):
    """Stable judged against itself: every measurement passes, so the failures above come from
    the canary cohort's numbers, not from the thresholds."""
    prom = release["prom"]
    tmpl, args = _argo(cohort="stable")
    for metric in tmpl["spec"]["metrics"]:
        result = [float(r["value"][1]) for r in prom.query(R.argo_query(metric, args))]
        assert result == [0.0] and R.argo_verdict(metric, result) == "Successful", (metric["name"], result)
    for canary, metric, template in _flagger(cohort="stable"):
        value = float(prom.query(R.flagger_query(template, canary, metric))[0]["value"][1])
        assert value == 0.0 and R.flagger_verdict(metric, value) == "Successful"
    # A cohort with no traffic at all measures NaN, which both engines count as a failure.
    tmpl, args = _argo(cohort="blue")
    metric = tmpl["spec"]["metrics"][0]
    result = [float(r["value"][1]) for r in prom.query(R.argo_query(metric, args))]
    assert math.isnan(result[0]) and R.argo_verdict(metric, result) == "Failed"


# ------------------------------------------------------------------------------- dashboard


BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def _dashboard() -> dict:
    return json.loads(P.DASHBOARD.read_text(encoding="utf-8"))


def _substitute(expr: str, variables: dict[str, str]) -> str:
    for name, value in sorted({**BUILTINS, **variables}.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"an unknown variable is left in {expr!r}"
    return expr


def test_dashboard_is_well_formed():
    d = _dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), ids
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for p in d["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["refId"] and t["expr"], p["title"]
            for used in re.findall(r"\$(\w+)", t["expr"]):
                assert used in variables or f"${used}" in BUILTINS, f"{p['title']}: ${used} is not defined"
    titles = " | ".join(p["title"] for p in d["panels"])
    for wanted in ("Traffic share by color", "Error ratio", "p95", "Rule hits", "Config hash per proxy"):
        assert wanted in titles, titles


def test_every_dashboard_query_returns_data(release):
    """Every panel query and variable query, with the variables at "All", on the Prometheus
    that watched the release."""
    prom = release["prom"]
    d = _dashboard()
    release_alerts = prom.wait_for("the alerts", lambda: _firing(prom), WINDOW_TIMEOUT)
    assert release_alerts
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["query"]["query"])
        assert m, v["query"]
        values = prom.label_values(m.group(2), _substitute(m.group(1), {"$job": ".*"}))
        assert values, f"variable {v['name']}: no values"
        if v["name"] == "color":
            assert {"canary", "stable", "blue"} <= set(values)
    variables = {"$job": ".*", "$color": ".*"}
    empty = []
    for p in d["panels"]:
        for t in p["targets"]:
            expr = _substitute(t["expr"], variables)
            result = prom.query(expr)
            if not result:
                empty.append(f"{p['title']} ({t['refId']}): {expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


# --------------------------------------------------------------------------------- the cockpit


def test_the_cockpit_in_mesh_mode_shows_the_recorded_series(release, cli, tmp_path):
    """`traffic-color cockpit --prometheus` (mesh mode) on this real Prometheus: the numbers the
    page gets are the recorded series of the mix, summed over both gateways (only the first got
    traffic): totals, share, error ratio and p95 per color, and the hits per rule."""
    from traffic_color_harness.cockpit import CockpitServer
    from traffic_color_harness.repo import ISTIO_DIR

    prom = release["prom"]
    manifest = tmp_path / "wasmplugin.yaml"
    manifest.write_bytes((ISTIO_DIR / "wasmplugin.yaml").read_bytes())
    cockpit = CockpitServer(cli, tmp_path, ["--no-page", "--prometheus", f"http://127.0.0.1:{prom.port}",
                                            "--wasmplugin", str(manifest)])
    try:
        want_ratio = (CANARY_N // FAIL_EVERY) / CANARY_N
        recorded_p95 = prom.values("color:traffic_color_request_duration_milliseconds:p95_5m", "color")
        s = cockpit.wait_stats(lambda s: not s["stale"]
                               and s["colors"].get("canary", {}).get("total") == CANARY_N
                               and s["colors"].get("stable", {}).get("total") == STABLE_N
                               and abs((s["colors"]["canary"].get("error_ratio") or 0) - want_ratio) < 1e-9
                               and abs(s["colors"]["canary"]["share"] - CANARY_N / (CANARY_N + STABLE_N)) < 1e-9,
                               timeout=WINDOW_TIMEOUT)
        assert s["colors"]["stable"]["error_ratio"] == 0, s
        assert abs(s["colors"]["stable"]["share"] - STABLE_N / (CANARY_N + STABLE_N)) < 1e-9, s
        for color in ("canary", "stable"):
            assert abs(s["colors"][color]["p95_ms"] - recorded_p95[color]) < 1e-9 * max(1, recorded_p95[color]), \
                (s["colors"][color], recorded_p95)
        hits = {r["rule"]: r["total"] for r in s["rules"] if r["total"]}
        assert hits == {"1": CANARY_N, "default": STABLE_N}, s["rules"]
        # The two gateways run different configs: no single hash is claimed.
        assert s["config"]["hash"] is None, s["config"]
    finally:
        cockpit.stop()

"""The filter's labels under Istio, through the real Envoy: the `stats_config` Istio 1.30.3's
bootstrap template renders for `extraStatTags: [color, rule, name, class, hash]` (and for a
gateway's default stats inclusion list, with `use_all_default_tags: false`) replaces the one in
envoy/envoy.yaml, and /stats/prometheus must show every series of the filter with its labels
and the exact counts of a known mix. The template is vendored byte for byte
(tests/fixtures/istio/, its git blob id checked) and rendered by
traffic_color_harness.istio_stats; Istio's control plane itself is not run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from traffic_color_harness import envoy_config, istio_stats, metrics
from traffic_color_harness.client import request

LABELS = ["color", "rule", "name", "class", "hash"]
RULES = "\n".join([
    'match { header["x-canary"] == "true" } -> "canary"',
    'match "beta-cookie" { cookie["beta"] == "1" } -> "blue"',
    'default -> "stable"',
])
# The statsHistogramBuckets annotation's map (prefix of the stat name -> buckets).
BUCKETS = {"wasmcustom.traffic_color_request_duration_milliseconds": [7, 70, 700]}


def test_the_vendored_template_is_istios():
    assert istio_stats.git_blob_id(istio_stats.TEMPLATE.read_bytes()) == istio_stats.TEMPLATE_BLOB


def test_istio_generates_the_regexes_envoy_yaml_carries():
    rendered = istio_stats.stats_config(istio_stats.gateway_values(LABELS))
    assert rendered["use_all_default_tags"] is False
    istio_tags = {t["tag_name"]: t["regex"] for t in rendered["stats_tags"] if t["tag_name"] in LABELS}
    assert istio_tags == {t: f"({t}=\\.=(.*?);\\.;)" for t in LABELS}
    ours = {t["tag_name"]: t["regex"] for t in envoy_config.load()["stats_config"]["stats_tags"]}
    assert ours == istio_tags
    # Without the names, Istio installs none of these.
    bare = istio_stats.stats_config(istio_stats.gateway_values([]))
    assert not {t["tag_name"] for t in bare["stats_tags"]} & set(LABELS)


@pytest.fixture(scope="module")
def istio_envoy(envoys):
    cfg = envoys.render(config={"rules": RULES, "outcome_metrics": True})
    cfg["stats_config"] = istio_stats.stats_config(istio_stats.gateway_values(LABELS, BUCKETS))
    cfg["stats_flush_interval"] = "1s"
    return envoys.start_rendered(cfg, "istio-stats")


def test_labelled_series_with_istios_stats_config(istio_envoy, cli, tmp_path):
    mix = ([([["x-canary", "true"]], "canary", 200)] * 4
           + [([["x-canary", "true"], ["x-upstream-status", "503"]], "canary", 503)] * 2
           + [([["cookie", "beta=1"], ["x-upstream-status", "404"]], "blue", 404)] * 3
           + [([], "stable", 200)] * 5
           + [([["x-version-route", "canary"]], "stable", 200)] * 2)
    for headers, color, status in mix:
        r = request(istio_envoy.port, "GET", "/", headers)
        assert (r.status, r.json["x-version-route"]) == (status, color)
    s = metrics.scrape_until(istio_envoy.admin_port, lambda s: s.value(
        "traffic_color_request_duration_milliseconds_count", color="stable") == 7)

    assert s.get_sample("traffic_color_requests_total", color="canary") == 6
    assert s.get_sample("traffic_color_requests_total", color="blue") == 3
    assert s.get_sample("traffic_color_requests_total", color="stable") == 7
    assert s.get_sample("traffic_color_requests_total", color="unset") == 0
    assert s.get_sample("traffic_color_rule_hits_total", rule="1") == 6
    assert s.get_sample("traffic_color_rule_hits_total", rule="2", name="beta-cookie") == 3
    assert s.get_sample("traffic_color_rule_hits_total", rule="default") == 7
    assert s.get_sample("traffic_color_unmatched_total") == 7
    assert s.get_sample("traffic_color_client_color_stripped_total") == 2
    want = {("canary", "2xx"): 4, ("canary", "5xx"): 2, ("blue", "4xx"): 3, ("stable", "2xx"): 7}
    for color in ["canary", "blue", "stable", "unset"]:
        for cls in ["1xx", "2xx", "3xx", "4xx", "5xx"]:
            got = s.get_sample("traffic_color_responses_total", **{"color": color, "class": cls})
            assert got == want.get((color, cls), 0), (color, cls, got)
    for color, n in (("canary", 6), ("blue", 3), ("stable", 7)):
        assert s.get_sample("traffic_color_request_duration_milliseconds_count", color=color) == n
        # The statsHistogramBuckets annotation's buckets, as Istio renders them.
        assert list(s.buckets("traffic_color_request_duration_milliseconds", color=color)) == [
            7, 70, 700, float("inf")]

    # The hash label: what `traffic-color check` prints for the string the filter was given.
    given = envoy_config.wasm_filter(json.loads(Path(istio_envoy.config_path).read_text()))[
        "typed_config"]["config"]["configuration"]["value"]
    path = tmp_path / "config.json"
    path.write_text(given, encoding="utf-8")
    out = subprocess.run([str(cli), "check", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert s.series("traffic_color_config_info") == [{"hash": out.strip().rsplit(" ", 1)[-1]}], out
    # Nothing of the filter's is left unlabelled (a name with `=.=` in it).
    _, body = istio_envoy.admin("/stats/prometheus")
    assert "___" not in "".join(ln for ln in body.decode().splitlines() if "traffic_color" in ln)


def test_without_the_tags_the_labels_fold_into_the_name(envoys):
    """Plain Envoy with none of the regexes (Istio without extraStatTags): the metrics are
    there, the labels part of the name."""
    cfg = envoys.render(config={"rules": RULES, "outcome_metrics": True})
    cfg["stats_config"] = istio_stats.stats_config(istio_stats.gateway_values([]))
    envoy = envoys.start_rendered(cfg, "istio-stats-bare")
    assert request(envoy.port, "GET", "/", [["x-canary", "true"]]).status == 200
    # The response is counted when Envoy logs the stream, just after the client has it.
    s = metrics.scrape_until(envoy.admin_port, lambda s: s.value(
        "traffic_color_responses_total_color___canary___class___2xx___") == 1)
    assert s.get_sample("traffic_color_requests_total_color___canary___") == 1
    assert s.get_sample("traffic_color_responses_total_color___canary___class___2xx___") == 1

"""Propagation (`keep`, `baggage`) and the filter's Prometheus counters, through the real Envoy.

The metrics test sends a known mix of requests to a fresh Envoy and requires the counters on
/stats/prometheus to equal that mix exactly.
"""

from __future__ import annotations

import re
import time

import pytest

from traffic_color_harness.client import request

RULES = "\n".join([
    'match { header["x-canary"] == "true" } -> "canary"',
    'match "beta-cookie" { cookie["beta"] == "1" } -> "blue"',
    'default -> "stable"',
])


def received(r, name):
    return [v for k, v in r.json["headers"] if k.lower() == name]


@pytest.fixture(scope="module")
def keeper(envoys):
    cfg = {"rules": RULES, "keep": True, "baggage": "traffic-color", "debug_header": "x-rule"}
    return envoys.start("keep", config=cfg)


@pytest.fixture(scope="module")
def edge(envoys):
    cfg = {"rules": RULES, "baggage": "traffic-color", "debug_header": "x-rule"}
    return envoys.start("edge-baggage", config=cfg)


def test_keep_trusts_a_known_incoming_color(keeper):
    r = request(keeper.port, "GET", "/", [["x-version-route", "canary"]])
    assert (r.status, r.json["version"], r.json["x-version-route"]) == (200, "canary", "canary")
    assert r.header("x-rule") == "kept from header"
    # Kept even when the rules would say otherwise.
    r = request(keeper.port, "GET", "/", [["x-version-route", "stable"], ["x-canary", "true"]])
    assert (r.json["version"], r.json["x-version-route"], r.header("x-rule")) == ("stable", "stable", "kept from header")


def test_keep_recomputes_an_unknown_color(keeper):
    r = request(keeper.port, "GET", "/", [["x-version-route", "hacked"], ["x-canary", "true"]])
    assert (r.json["version"], r.json["x-version-route"], r.header("x-rule")) == ("canary", "canary", "rule 1")


def test_keep_reads_the_color_back_from_baggage(keeper):
    r = request(keeper.port, "GET", "/", [["baggage", "userId=alice,traffic-color=canary"]])
    assert (r.json["version"], r.json["x-version-route"], r.header("x-rule")) == ("canary", "canary", "kept from baggage")
    assert received(r, "baggage") == ["userId=alice,traffic-color=canary"]


def test_edge_writes_baggage_without_clobbering_other_members(edge):
    r = request(edge.port, "GET", "/", [["cookie", "beta=1"], ["baggage", "userId=alice;p=1, traffic-color=canary"]])
    assert (r.json["version"], r.json["x-version-route"]) == ("canary", "blue")
    assert received(r, "baggage") == ["userId=alice;p=1,traffic-color=blue"]
    r = request(edge.port, "GET", "/", [])
    assert received(r, "baggage") == ["traffic-color=stable"]


def test_edge_does_not_keep_a_client_color(edge):
    r = request(edge.port, "GET", "/", [["x-version-route", "canary"], ["baggage", "traffic-color=canary"]])
    assert (r.json["version"], r.json["x-version-route"], r.header("x-rule")) == ("stable", "stable", "default")
    assert received(r, "baggage") == ["traffic-color=stable"]


# The filter's tick is 1 s; a loaded machine may run it late.
COUNTS_WAIT_S = 3.0


def prometheus(envoy) -> dict[str, float]:
    status, body = envoy.admin("/stats/prometheus")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^(traffic_color_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "{}")] = float(m.group(3))
    return out


def test_metrics_match_the_request_mix_exactly(envoys):
    envoy = envoys.start("metrics", config={"rules": RULES})
    mix = (
        [([["x-canary", "true"]], "canary")] * 7
        + [([["cookie", "beta=1"]], "blue")] * 3
        + [([], "stable")] * 5
        + [([["x-version-route", "canary"]], "stable")] * 2
    )
    for headers, color in mix:
        r = request(envoy.port, "GET", "/", headers)
        assert (r.status, r.json["x-version-route"]) == (200, color)
    # The filter hands its counts to Envoy once a second (on its root context's tick), so they
    # may show up to a second after the last response.
    deadline = time.monotonic() + COUNTS_WAIT_S
    while True:
        m = prometheus(envoy)
        total = sum(v for k, v in m.items() if k.startswith("traffic_color_requests_total{"))
        if total >= len(mix) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert m['traffic_color_requests_total{color="canary"}'] == 7
    assert m['traffic_color_requests_total{color="blue"}'] == 3
    assert m['traffic_color_requests_total{color="stable"}'] == 7
    assert m['traffic_color_requests_total{color="unset"}'] == 0
    assert m['traffic_color_rule_hits_total{rule="1"}'] == 7
    assert m['traffic_color_rule_hits_total{rule="2",name="beta-cookie"}'] == 3
    assert m['traffic_color_rule_hits_total{rule="default"}'] == 7
    assert m["traffic_color_unmatched_total{}"] == 7
    assert m["traffic_color_client_color_stripped_total{}"] == 2
    assert m["traffic_color_kept_total{}"] == 0
    # One load per VM that configured the plugin (the main thread's and each worker's).
    assert m["traffic_color_config_loads_total{}"] >= 1
    assert m.get("traffic_color_config_rejections_total{}", 0) == 0

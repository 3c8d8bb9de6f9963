"""The same Envoy config without the filter: why the filter must strip a client's color header."""

from __future__ import annotations

import pytest

from traffic_color_harness.client import request


@pytest.fixture(scope="module")
def baseline(baseline_envoys):
    return baseline_envoys.start("baseline", with_filter=False)


@pytest.fixture(scope="module")
def filtered(envoys):
    return envoys.start("example")  # envoy.yaml as shipped, the example rules


def test_baseline_plain_request_goes_to_stable(baseline):
    r = request(baseline.port, "GET", "/", [])
    assert r.status == 200 and r.json["version"] == "stable" and r.json["x-version-route"] is None


def test_baseline_client_can_pick_canary_by_sending_the_header(baseline):
    r = request(baseline.port, "GET", "/", [["x-version-route", "canary"]])
    assert r.status == 200
    assert (r.json["version"], r.json["x-version-route"]) == ("canary", "canary")


def test_baseline_ignores_the_rules(baseline):
    r = request(baseline.port, "GET", "/", [["x-canary", "true"]])
    assert r.json["version"] == "stable"
    assert r.header("x-version-route-rule") is None


def test_with_the_filter_the_spoofed_header_is_replaced(filtered):
    r = request(filtered.port, "GET", "/", [["x-version-route", "canary"]])
    assert r.status == 200
    assert (r.json["version"], r.json["x-version-route"]) == ("stable", "stable")
    assert r.header("x-version-route-rule") == "default"


def test_with_the_filter_rules_route(filtered):
    r = request(filtered.port, "GET", "/", [["x-canary", "true"]])
    assert (r.json["version"], r.json["x-version-route"]) == ("canary", "canary")
    assert r.header("x-version-route-rule") == "rule 1"

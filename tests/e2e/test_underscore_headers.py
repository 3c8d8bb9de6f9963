"""Underscore twins: envoy.yaml drops request headers with `_` in their names, so
`x_version_route` never reaches an application that maps `_` and `-` to one name."""

from __future__ import annotations

from traffic_color_harness.client import request


def test_underscore_twin_of_the_color_header_is_dropped(envoys):
    envoy = envoys.start("underscores")
    r = request(envoy.port, "GET", "/", [("x_version_route", "canary"), ("x-canary", "true")])
    assert r.status == 200 and r.json is not None, (r.status, r.body[:300])
    names = [k.lower() for k, _ in r.json["headers"]]
    assert "x_version_route" not in names, r.json["headers"]
    # The filter still ran: rule 1 (x-canary) decided, and only its color went upstream.
    assert r.json["x-version-route"] == "canary"
    status, body = envoy.admin("/stats?filter=dropped_headers_with_underscores")
    assert status == 200 and b"http1.dropped_headers_with_underscores: 1" in body, body

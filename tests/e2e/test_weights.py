"""Weighted splits and sticky visitors through the real Envoy: the share of each weighted rule
over a few thousand requests, a visitor keeping its version across visits through the cookie
the filter sets, and the decision published as filter state for the access log.

Tolerances: each share is checked within four standard deviations of a binomial count
(sqrt(n·p·(1-p))), so a correct filter fails about once in 15,000 runs.
"""

from __future__ import annotations

import math
import re
import time

import pytest

from traffic_color_harness.client import request

WEIGHTS = "\n".join([
    'match { split("rollout") < 10 } -> "canary"',
    'match { split("rollout") < 30 } -> "blue"',
    'default -> "stable"',
])
VISITORS = "\n".join([
    'match { split(visitor, "beta") < 40 } -> "canary"',
    'default -> "stable"',
])
COOKIE = "tcv"


def within(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_weighted_rules_take_their_share_of_all_requests(envoys):
    e = envoys.start("weights", config={"rules": WEIGHTS})
    n = 3000
    counts = {"canary": 0, "blue": 0, "stable": 0}
    for i in range(n):
        r = request(e.port, "GET", f"/w/{i}", [])
        assert r.status == 200
        counts[r.json["x-version-route"]] += 1
    assert within(counts["canary"], n, 0.10), counts
    assert within(counts["blue"], n, 0.20), counts
    assert within(counts["stable"], n, 0.70), counts


def visitor_cookie(r) -> tuple[str, str] | None:
    """(id, attributes) of the visitor cookie a response sets, if any."""
    for k, v in r.headers:
        if k.lower() == "set-cookie" and v.startswith(f"{COOKIE}="):
            value, _, attrs = v.partition(";")
            return value.split("=", 1)[1], attrs.strip()
    return None


@pytest.fixture(scope="module")
def visitors(envoys):
    return envoys.start("visitors", config={
        "rules": VISITORS, "debug_header": "x-rule",
        "visitor": {"cookie": COOKIE, "max_age": 3600, "path": "/shop", "same_site": "Strict"},
    })


def test_a_visitor_keeps_its_version_across_visits(visitors):
    n = 300
    firsts = {"canary": 0, "stable": 0}
    for i in range(n):
        r = request(visitors.port, "GET", "/shop", [])
        set_cookie = visitor_cookie(r)
        assert set_cookie is not None, r.headers
        vid, attrs = set_cookie
        assert re.fullmatch(r"[0-9a-f]{32}", vid), vid
        assert attrs == "Max-Age=3600; Path=/shop; Secure; HttpOnly; SameSite=Strict"
        color = r.json["x-version-route"]
        firsts[color] += 1
        if i < 20:
            # Every later visit carries the cookie: the same color, and no new cookie.
            for j in range(10):
                again = request(visitors.port, "GET", f"/shop/{j}", [["cookie", f"a=1; {COOKIE}={vid}"]])
                assert again.json["x-version-route"] == color, (vid, j)
                assert visitor_cookie(again) is None
    assert within(firsts["canary"], n, 0.40), firsts


def test_a_malformed_visitor_cookie_is_replaced(visitors):
    for bad in ["", "x", "Z" * 32, "0123456789abcdef0123456789ABCDEF", "%zz"]:
        r = request(visitors.port, "GET", "/shop", [["cookie", f"{COOKIE}={bad}"]])
        assert r.status == 200, bad
        new = visitor_cookie(r)
        assert new is not None and new[0] != bad, bad


def test_the_decision_is_in_the_access_log(envoys):
    e = envoys.start("state", config={"rules": WEIGHTS, "filter_state": True, "debug_header": "x-rule"})
    rules = []
    for i in range(40):
        r = request(e.port, "GET", f"/state/{i}", [])
        rules.append((r.json["x-version-route"], r.header("x-rule")))
    # Envoy flushes the access log about once a second; wait for all 40 lines, boundedly.
    deadline = time.monotonic() + 10
    while (log := e.log()).count("[access] GET /state/") < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = re.findall(r"\[access\] GET /state/(\d+) -> 200 color=(\S+) decided=([^\n]+?) cluster=", log)
    got = {int(i): (c, d) for i, c, d in lines}
    assert got == dict(enumerate(rules))

"""Hostile requests through the real Envoy: huge and many headers, invalid UTF-8,
10,000 cookies, deeply nested and 1 MB tokens, percent-encoding garbage, and a backtracking-
shaped regex against long values.

Each request must get an answer that is not a 5xx, quickly (no hang), from the upstream the
rules choose; and afterwards the filter must still work on every worker (a panic in the Wasm VM
makes every later request on that worker a 503) and Envoy's log must show no Wasm failure.

Two Envoys:
* `default_envoy`: envoy.yaml's limits (60 KiB of request headers, 100 headers). Just beyond
  them Envoy itself answers 431 before any filter runs: that is Envoy, not the filter.
* `roomy_envoy`: the same, with `max_request_headers_kb: 8192` (Envoy's maximum) and
  `max_headers_count: 20000`, edited into the rendered config, so 10,000 cookies and 1 MB
  tokens reach the filter.
Both routes remove the hostile headers before the request goes upstream (the filter runs first
and sees them all), because the test upstream is Python's http.server, which refuses more than
100 headers or 64 KiB lines on its own.
"""

from __future__ import annotations

import re
import time

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.client import Response, raw_request, request
from traffic_color_harness.envoy import Envoy
from traffic_color_harness.tokens import unsigned

COLOR = "x-version-route"
DEBUG = "x-version-route-rule"
# Generous: the point is "no hang", not a latency target (a request here takes milliseconds).
MAX_SECONDS = 2.0

RULES = "\n".join([
    'match { header["x-canary"] == "true" || cookie["canary"] == "always" } -> "canary"',  # 1
    'match { cookie["canary"] == "never" } -> "stable"',  # 2
    'match { header["X-Env"] == "prod" && query["version"] =~ "^v2\\\\..*" '
    '&& token["sub"] in ["user-a", "user-b"] } -> "blue"',  # 3
    'match { bucket(header["x-user-id"], "checkout-v2") <= 5 } -> "canary"',  # 4
    'match { header["ua"] =~ "(a|aa)*b" } -> "canary"',  # 5: exponential for a backtracker
    'match { header["ua2"] =~ "^(a+)+$" && header["ua2"] !~ "c" } -> "blue"',  # 6
    'match { token["deep"]["a"]["b"] == "x" } -> "blue"',  # 7
    'match { query["probe"] == "a b" } -> "canary"',  # 8
    'match { header["x-probe-ne"] != "zzz" } -> "blue"',  # 9: present (and UTF-8) => blue
    'default -> "stable"',
]) + "\n"
CONFIG = {"rules": RULES, "jwt": {"trust": "unverified"}, "debug_header": DEBUG}
HOSTILE_HEADERS = ["cookie", "authorization", "ua", "ua2", "x-big", "x-many", "x-probe-ne",
                   "x-junk"]


def _start(envoys, name: str, *, roomy: bool) -> Envoy:
    cfg = envoys.render(config=CONFIG)
    hcm = envoy_config.hcm(cfg)
    if roomy:
        hcm["max_request_headers_kb"] = 8192
        hcm.setdefault("common_http_protocol_options", {})["max_headers_count"] = 20000
    for route in envoy_config.routes(cfg):
        route["request_headers_to_remove"] = HOSTILE_HEADERS
    return envoys.start_rendered(cfg, name)


@pytest.fixture(scope="module")
def default_envoy(envoys):
    return _start(envoys, "hostile-default", roomy=False)


@pytest.fixture(scope="module")
def roomy_envoy(envoys):
    return _start(envoys, "hostile-roomy", roomy=True)


def timed(fn, *args, **kw) -> tuple[Response, float]:
    t = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t


TIMES: list[tuple[float, str]] = []  # (seconds, case) of every request checked by expect()


def expect(r: Response, secs: float, color: str | None, rule: str | None, base_config: dict,
           what: str) -> None:
    TIMES.append((secs, what[:60]))
    assert secs < MAX_SECONDS, f"{what}: took {secs:.2f}s"
    assert r.status < 500, f"{what}: {r.status} {r.body[:200]!r}"
    assert r.status == 200, f"{what}: {r.status} {r.body[:200]!r}"
    assert r.json is not None, f"{what}: not an upstream answer {r.body[:200]!r}"
    want = envoy_config.cluster_for(base_config, color)
    got = (r.json["version"], r.json[COLOR])
    assert got == (want, color), f"{what}: {got}, expected {(want, color)} (rule {r.header(DEBUG)})"
    if rule is not None:
        assert r.header(DEBUG) == rule, f"{what}: rule {r.header(DEBUG)!r}, expected {rule!r}"


def raw(port: int, target: bytes, headers: list[bytes]) -> Response:
    """Raw bytes on a fresh connection."""
    return raw_request(port, b"GET " + target + b" HTTP/1.1\r\nhost: localhost\r\n"
                       + b"".join(h + b"\r\n" for h in headers) + b"connection: close\r\n\r\n")


def wasm_failures(e: Envoy) -> list[str]:
    """Lines of Envoy's log that show the Wasm VM failing (a panic, a trap, a failed callback)."""
    bad = re.compile(r"panicked|RuntimeError|Function: proxy_on\w+ failed|wasm_fail|"
                     r"Plugin .* failed|unreachable", re.I)
    return [ln for ln in e.log().splitlines() if bad.search(ln)]


def healthy_on_every_worker(e: Envoy, base_config: dict) -> None:
    """20 fresh connections (spread over both workers): every one colored and routed."""
    for i in range(20):
        r, secs = timed(request, e.port, "GET", "/", [("x-canary", "true")])
        expect(r, secs, "canary", "rule 1", base_config, f"health check {i}")
        r, secs = timed(request, e.port, "GET", "/", [])
        expect(r, secs, "stable", "default", base_config, f"health check {i} (default)")


# ------------------------------------------------------------ Envoy's own limits (default)


def test_many_headers_up_to_envoys_limit(default_envoy, base_config):
    # 100 headers is Envoy's default cap; host, connection and the rule's header count too.
    # 98 x-many + x-canary + host = 100 headers: the most Envoy accepts by default.
    hs = [("x-many", str(i)) for i in range(98)] + [("x-canary", "true")]
    r, secs = timed(request, default_envoy.port, "GET", "/", hs)
    expect(r, secs, "canary", "rule 1", base_config, "100 headers")


def test_beyond_envoys_header_count_is_envoys_431(default_envoy):
    hs = [("x-many", str(i)) for i in range(150)] + [("x-canary", "true")]
    r, secs = timed(request, default_envoy.port, "GET", "/", hs)
    assert secs < MAX_SECONDS
    assert r.status == 431, r.status  # Envoy's codec, before any filter
    assert r.header("x-served-by") is None and r.header(DEBUG) is None


def test_huge_header_just_under_envoys_limit(default_envoy, base_config):
    hs = [("x-big", "a" * (59 * 1024)), ("x-canary", "true")]
    r, secs = timed(request, default_envoy.port, "GET", "/", hs)
    expect(r, secs, "canary", "rule 1", base_config, "59 KiB header")


def test_beyond_envoys_header_size_is_envoys_431(default_envoy):
    hs = [("x-big", "a" * (61 * 1024)), ("x-canary", "true")]
    r, secs = timed(request, default_envoy.port, "GET", "/", hs)
    assert secs < MAX_SECONDS
    assert r.status == 431, r.status
    assert r.header("x-served-by") is None and r.header(DEBUG) is None


def test_control_bytes_in_headers(default_envoy, base_config):
    # Envoy's codec rejects most of these itself (400); what it lets through, the filter colors.
    for junk in [b"x-junk: a\x00b", b"x-junk: a\x01\x7fb", b"x-ju nk: a", b"x-junk:\ra",
                 b"x-junk: a\x1bb"]:
        r, secs = timed(raw, default_envoy.port, b"/", [junk, b"x-canary: true"])
        if r.status == 200:
            expect(r, secs, "canary", "rule 1", base_config, repr(junk))
        else:
            assert secs < MAX_SECONDS
            assert 400 <= r.status < 500, (junk, r.status)


# ------------------------------------------------------------ past the defaults (roomy)


def test_regex_rule_against_long_values(roomy_envoy, base_config):
    # `(a|aa)*b` and `^(a+)+$` are exponential for a backtracking engine; regex-lite is not.
    for n in [1_000, 60_000, 1_000_000]:
        r, secs = timed(request, roomy_envoy.port, "GET", "/", [("ua", "a" * n)])
        expect(r, secs, "stable", "default", base_config, f"ua of {n} a's, no b")
        r, secs = timed(request, roomy_envoy.port, "GET", "/", [("ua", "a" * n + "b")])
        expect(r, secs, "canary", "rule 5", base_config, f"ua of {n} a's, then b")
        r, secs = timed(request, roomy_envoy.port, "GET", "/", [("ua2", "a" * n + "c")])
        expect(r, secs, "stable", "default", base_config, f"ua2 of {n} a's, then c")
        r, secs = timed(request, roomy_envoy.port, "GET", "/", [("ua2", "a" * n)])
        expect(r, secs, "blue", "rule 6", base_config, f"ua2 of {n} a's")


def test_ten_thousand_cookies_in_one_header(roomy_envoy, base_config):
    jar = "; ".join(f"c{i}=v{i}" for i in range(10_000))
    r, secs = timed(request, roomy_envoy.port, "GET", "/", [("cookie", jar + "; canary=always")])
    expect(r, secs, "canary", "rule 1", base_config, "10,000 cookies, then canary=always")
    r, secs = timed(request, roomy_envoy.port, "GET", "/",
                    [("cookie", "canary=never; " + jar + "; canary=always")])
    expect(r, secs, "stable", "rule 2", base_config, "first occurrence wins across 10,000 cookies")


def test_ten_thousand_cookie_headers(roomy_envoy, base_config):
    hs = [("cookie", f"c{i}=v{i}") for i in range(10_000)] + [("cookie", "canary=always")]
    r, secs = timed(request, roomy_envoy.port, "GET", "/", hs)
    expect(r, secs, "canary", "rule 1", base_config, "10,001 Cookie headers")


def test_many_client_sent_colors_are_all_stripped(roomy_envoy, base_config):
    hs = [(COLOR, "canary") for _ in range(1_000)]
    r, secs = timed(request, roomy_envoy.port, "GET", "/", hs)
    expect(r, secs, "stable", "default", base_config, "1,000 x-version-route: canary")


def test_huge_and_deep_tokens(roomy_envoy, base_config):
    good = {"sub": "user-a"}
    q = "/?version=v2.1"
    base = [("x-env", "prod")]
    cases = [
        ("a valid token", "Bearer " + unsigned(good), "blue", "rule 3"),
        ("a 1 MB token", "Bearer " + unsigned({"sub": "user-a", "pad": "x" * 1_000_000}),
         "stable", "default"),
        ("a 1 MB garbage token", "Bearer " + "A" * 1_000_000 + ".b.c", "stable", "default"),
        ("a 1 MB header of dots", "Bearer " + "." * 1_000_000, "stable", "default"),
        # Claims no rule reads are skipped without being built, at any depth (the token's
        # 16 KiB cap bounds it); a claim a rule reads is built, and past serde_json's
        # recursion limit (128) the whole token is absent.
        ("JSON nested 5,000 deep in a claim no rule reads",
         "Bearer " + unsigned('{"sub":"user-a","n":' + "[" * 5000 + "]" * 5000 + "}"), "blue", "rule 3"),
        ("objects nested 100 deep", "Bearer " + unsigned(nested(100)), "blue", "rule 3"),
        ("objects nested 200 deep in a claim no rule reads", "Bearer " + unsigned(nested(200)),
         "blue", "rule 3"),
        ("objects nested 200 deep in a claim a rule reads",
         "Bearer " + unsigned(nested(200, claim="deep")), "stable", "default"),
        ("a token that is not JSON", "Bearer " + unsigned("{\"sub\":\"user-a\""), "stable", "default"),
        ("a payload that is an array", "Bearer " + unsigned("[\"user-a\"]"), "stable", "default"),
        ("invalid base64", "Bearer a.!!!!.c", "stable", "default"),
        ("a Basic scheme", "Basic " + unsigned(good), "stable", "default"),
    ]
    for what, auth, color, rule in cases:
        r, secs = timed(request, roomy_envoy.port, "GET", q, base + [("authorization", auth)])
        expect(r, secs, color, rule, base_config, what)
    # A claim three objects deep still reads (rule 7), inside a token with padding.
    deep = {"deep": {"a": {"b": "x"}}, "pad": ["y"] * 1000}
    r, secs = timed(request, roomy_envoy.port, "GET", "/", [("authorization", "Bearer " + unsigned(deep))])
    expect(r, secs, "blue", "rule 7", base_config, "a nested claim")


def nested(depth: int, claim: str = "x") -> str:
    return '{"sub":"user-a","' + claim + '":' + '{"a":' * depth + "1" + "}" * depth + "}"


def test_invalid_utf8_in_header_values(roomy_envoy, base_config):
    cases = [
        # (header bytes, expected color, rule)
        ([b"x-probe-ne: abc\xff\xfe"], "stable", "default"),  # not UTF-8 -> absent
        ([b"x-probe-ne: \xc3\xa9t\xc3\xa9"], "blue", "rule 9"),  # valid UTF-8 (obs-text) -> present
        ([b"x-canary: tr\xffue"], "stable", "default"),
        ([b"x-user-id: \xff\xfe\xfd"], "stable", "default"),  # bucket of an absent key
        ([b"ua: " + b"a" * 1000 + b"\xff" + b"b"], "stable", "default"),
        ([b"cookie: junk=\xff; canary=always"], None, None),  # whole header absent or not
        ([b"authorization: Bearer \xff\xfe." + unsigned({"sub": "user-a"}).encode()], "stable",
         "default"),
        ([b"x-version-route: can\xffary"], "stable", "default"),
    ]
    for hs, color, rule in cases:
        r, secs = timed(raw, roomy_envoy.port, b"/", hs)
        if color is None:
            assert secs < MAX_SECONDS and r.status == 200, (hs, r.status)
            assert r.json[COLOR] in ("canary", "stable")
            continue
        expect(r, secs, color, rule, base_config, repr(hs)[:80])


def test_percent_encoding_garbage(roomy_envoy, base_config):
    hs = [("x-env", "prod"), ("authorization", "Bearer " + unsigned({"sub": "user-a"}))]
    garbage = [
        "/?version=%zz", "/?version=%", "/?version=%2", "/?version=%ff%fe", "/?version=%c3%28",
        "/?version=v2%2", "/?%=%&version=%%%", "/?version=" + "%" * 5000,
        "/?version=" + "%e9" * 3000, "/?" + "&" * 20000 + "version=x",
        "/?version=%ed%a0%80",  # an encoded UTF-16 surrogate: not UTF-8
    ]
    for path in garbage:
        r, secs = timed(request, roomy_envoy.port, "GET", path, hs)
        expect(r, secs, "stable", "default", base_config, path[:60])
    # Well-formed encodings still decode (and `+` is a space), also after 5,000 junk pairs.
    junk = "&".join(f"k{i}=%zz" for i in range(5_000))  # the upstream takes 64 KiB lines
    for path, color, rule in [
        ("/?version=v2%2E1", "blue", "rule 3"),
        ("/?" + junk + "&version=v2.1", "blue", "rule 3"),  # 5,000 undecodable pairs first
        ("/?probe=a+b", "canary", "rule 8"),
        ("/?probe=a%20b", "canary", "rule 8"),
        ("/?probe=a%2Bb", "stable", "default"),
    ]:
        want_hs = hs if rule == "rule 3" else []
        r, secs = timed(request, roomy_envoy.port, "GET", path, want_hs)
        expect(r, secs, color, rule, base_config, path[-40:])


def test_raw_bytes_in_the_request_target(roomy_envoy):
    for target in [b"/?version=\xff\xfe", b"/\xc3\x28?probe=a", b"/?probe=%00", b"/" + b"\x80" * 100]:
        r, secs = timed(raw, roomy_envoy.port, target, [b"x-env: prod"])
        assert secs < MAX_SECONDS
        assert r.status < 500, (target, r.status)


def test_filter_still_healthy_and_no_wasm_failure(default_envoy, roomy_envoy, base_config):
    """Runs last in this module: after everything above, both Envoys color every request on
    every worker, and neither log shows the VM failing."""
    for e in (default_envoy, roomy_envoy):
        healthy_on_every_worker(e, base_config)
        assert e.proc.alive()
        assert wasm_failures(e) == []
        status, body = e.admin("/stats?filter=wasm")
        assert status == 200
        stats = dict(ln.split(": ", 1) for ln in body.decode().splitlines() if ": " in ln)
        # One VM per worker plus the main thread's, none of them recreated after a crash.
        failed = {k: v for k, v in stats.items() if "fail" in k and v.strip() not in ("0", "")}
        assert failed == {}, failed
        assert any(k.startswith("wasm.envoy.wasm.runtime.v8.") for k in stats), sorted(stats)
    slowest = sorted(TIMES, reverse=True)[:3]
    print(f"\nhostile: {len(TIMES)} requests checked; slowest: "
          + ", ".join(f"{secs * 1000:.0f} ms ({what})" for secs, what in slowest))

"""Every case of tests/fixtures/routing.json through the real Envoy, plus inputs JSON can't carry."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.client import Response, raw_request, request
from traffic_color_harness.repo import routing_table

TABLE = routing_table()
CASES = TABLE["cases"]
COLOR = TABLE["config"].get("header", "x-version-route")
DEBUG = TABLE["config"]["debug_header"]


@pytest.fixture(scope="module")
def table_envoy(envoys):
    """Envoy running envoy.yaml with the table's filter configuration."""
    return envoys.start("table", config=TABLE["config"])


def check(r: Response, expect: str | None, rule: str | None, base_config: dict, what: str) -> None:
    assert r.status < 500, f"{what}: got {r.status} {r.body[:300]!r}"
    assert r.status == 200, f"{what}: got {r.status} {r.body[:300]!r}"
    assert r.json is not None, f"{what}: not an upstream answer: {r.body[:300]!r}"
    want_upstream = envoy_config.cluster_for(base_config, expect)
    got = (r.json["version"], r.json["x-version-route"])
    assert got == (want_upstream, expect), (
        f"{what}: answered by {got[0]!r} with {COLOR}={got[1]!r}; "
        f"expected {want_upstream!r} with {COLOR}={expect!r} (debug rule: {r.header(DEBUG)!r})")
    assert r.header("x-served-by") == want_upstream
    if rule is not None:
        assert r.header(DEBUG) == rule, f"{what}: deciding rule {r.header(DEBUG)!r}, expected {rule!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(table_envoy, base_config, case):
    r = request(table_envoy.port, case["method"], case["path"], case["headers"])
    check(r, case["expect"], case.get("rule"), base_config, case["name"])


# ------------------------------------------------------- inputs that JSON strings can't carry


def raw(port: int, request_line: bytes, headers: list[bytes]) -> Response:
    data = request_line + b"\r\nhost: localhost\r\n" + b"".join(h + b"\r\n" for h in headers)
    return raw_request(port, data + b"connection: close\r\n\r\n")


def test_invalid_utf8_in_another_header_does_not_break_the_rules(table_envoy, base_config):
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"x-junk: \xff\xfe\x80 latin-1 \xe9", b"x-canary: true"])
    check(r, "canary", "rule 1", base_config, "obs-text in x-junk")


def test_invalid_utf8_header_value_is_absent(table_envoy, base_config):
    # Rule 10 is `header["x-probe-ne"] != "zzz"`: true for any present value, false if absent.
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"x-probe-ne: abc\xff\xfe"])
    check(r, "stable", "default", base_config, "obs-text in x-probe-ne")


def test_invalid_utf8_in_compared_header(table_envoy, base_config):
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"x-canary: tr\xffue"])
    check(r, "stable", "default", base_config, "obs-text in x-canary")


def test_invalid_utf8_cookie_header(table_envoy, base_config):
    """A Cookie header that is not UTF-8 is absent as a whole (README: Foot-guns): over HTTP/1.1
    only that header line is lost, and a cookie in another line still counts."""
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"cookie: junk=\xff\xfe; canary=always"])
    check(r, "stable", "default", base_config, "one Cookie line with a non-UTF-8 byte")
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"cookie: junk=\xff\xfe", b"cookie: canary=always"])
    check(r, "canary", "rule 1", base_config, "the non-UTF-8 byte in another Cookie line")


def test_invalid_utf8_cookie_over_http2(table_envoy, base_config):
    """Over HTTP/2 Envoy joins every cookie into one Cookie header, so one non-UTF-8 byte hides
    them all (README: Foot-guns)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed for HTTP/2 (the Makefile installs it)")
    def h2(*cookies: bytes) -> dict:
        args = [curl, "-s", "--http2-prior-knowledge", "--max-time", "10"]
        for c in cookies:
            args += ["-H", b"cookie: " + c]
        out = subprocess.run(args + [f"http://127.0.0.1:{table_envoy.port}/"], capture_output=True,
                             timeout=20, check=True).stdout
        return json.loads(out)
    assert h2(b"canary=always")["x-version-route"] == "canary"
    assert h2(b"junk=\xff\xfe", b"canary=always")["x-version-route"] == "stable"


def test_raw_invalid_utf8_query_bytes(table_envoy, base_config):
    # Raw non-ASCII bytes in the request target: Envoy may reject them (4xx); if it passes
    # them on, the value is not UTF-8, so it is absent for rule 7 (`!= "zzz"`).
    r = raw(table_envoy.port, b"GET /?probe-ne=\xff\xfe HTTP/1.1", [])
    assert r.status < 500, r
    print(f"raw bytes in the query: HTTP {r.status}")
    if r.status == 200:
        check(r, "stable", "default", base_config, "raw bytes in the query")


def test_percent_encoded_invalid_utf8_query(table_envoy, base_config):
    for q in (b"%FF%FE", b"%C3%28", b"%ED%A0%80", b"%F0%28%8C%BC", b"%C0%AF"):  # overlong, surrogate, ...
        r = raw(table_envoy.port, b"GET /?probe-ne=" + q + b" HTTP/1.1", [])
        check(r, "stable", "default", base_config, f"query probe-ne={q.decode()}")


def test_huge_cookie_header(table_envoy, base_config):
    filler = "; ".join(f"k{i}=v{i:05d}" for i in range(3000)).encode()  # ~36 KB
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"cookie: " + filler + b"; canary=always"])
    check(r, "canary", "rule 1", base_config, f"{len(filler)}-byte cookie with canary=always at the end")
    r = raw(table_envoy.port, b"GET / HTTP/1.1", [b"cookie: " + filler.replace(b"=", b"==;;")])
    check(r, "stable", "default", base_config, "huge garbage cookie")


def test_many_cookie_headers(table_envoy, base_config):
    hs = [f"cookie: c{i}=x".encode() for i in range(60)] + [b"cookie: canary=never"]
    r = raw(table_envoy.port, b"GET /api/v2/x HTTP/1.1", hs)
    check(r, "stable", "rule 2", base_config, "61 cookie headers, canary=never in the last")


def test_huge_bearer_token(table_envoy, base_config):
    junk = b"A" * 30000
    r = raw(table_envoy.port, b"GET /?version=v2.1 HTTP/1.1",
            [b"x-env: prod", b"authorization: Bearer " + junk + b"." + junk + b".x"])
    check(r, "stable", "default", base_config, "30 KB garbage token")


def test_keepalive_connection_many_requests(table_envoy, base_config):
    """Several requests on one connection: per-request state must not leak between them."""
    conn = http.client.HTTPConnection("127.0.0.1", table_envoy.port, timeout=10)
    try:
        for hdrs, expect in ([("x-canary", "true")], "canary"), ([], "stable"), \
                ([("x-version-route", "canary")], "stable"), ([("cookie", "canary=always")], "canary"):
            conn.request("GET", "/", headers=dict(hdrs))
            r = conn.getresponse()
            body = r.read()
            check(Response(r.status, r.getheaders(), body, json.loads(body)),
                  expect, None, base_config, f"keep-alive {hdrs}")
    finally:
        conn.close()


# ------------------------------------------------------------------------- debug header


def test_debug_header_is_off_by_default(envoys, base_config):
    cfg = {k: v for k, v in TABLE["config"].items() if k != "debug_header"}
    e = envoys.start("no-debug-header", config=cfg)
    r = request(e.port, "GET", "/", [["x-canary", "true"]])
    check(r, "canary", None, base_config, "no debug_header")
    assert r.header(DEBUG) is None
    e.stop()


def test_no_default_rule_leaves_no_header_and_still_strips_spoofs(envoys, base_config):
    """Without a default rule an unmatched request gets no color header at all (debug: none),
    and a client-sent color header is removed anyway."""
    cfg = {"rules": 'match { header["x-canary"] == "true" } -> "canary"\n', "debug_header": DEBUG}
    e = envoys.start("no-default", config=cfg)
    check(request(e.port, "GET", "/", []), None, "none", base_config, "no rule matched")
    check(request(e.port, "GET", "/", [["x-version-route", "canary"]]), None, "none", base_config,
          "spoofed header, no rule matched")
    check(request(e.port, "GET", "/", [["x-canary", "true"]]), "canary", "rule 1", base_config, "rule 1")
    e.stop()


def test_custom_header_name(envoys, base_config):
    """`header` picks the request header to set; routes here only know x-version-route."""
    cfg = {"rules": 'default -> "canary"\n', "header": "x-color", "debug_header": DEBUG}
    e = envoys.start("custom-header", config=cfg)
    r = request(e.port, "GET", "/", [["x-color", "spoofed"]])
    assert r.status == 200 and r.json["version"] == "stable"
    assert [v for k, v in r.json["headers"] if k.lower() == "x-color"] == ["canary"], r.json["headers"]
    assert r.header(DEBUG) == "default"
    e.stop()

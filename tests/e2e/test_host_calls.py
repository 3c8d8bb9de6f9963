"""The host calls a request costs (issue 12): each crosses the Wasm boundary, so each must be
needed on that request. bench/node_host.js (a proxy-wasm host in Node's V8, the engine Envoy
embeds) runs the built module and counts every import it calls, by name, per request."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_HOST = Path(__file__).resolve().parents[2] / "bench" / "node_host.js"
BASE = [[":method", "GET"], [":path", "/products/3?ref=home"], [":authority", "shop.example.com"],
        ["user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"], ["accept", "*/*"],
        ["x-request-id", "5e1f0c2a-0000-4000-8000-000000000001"]]


def calls(wasm: Path, tmp_path: Path, rules: str, headers: list[list[str]], expect: str,
          **config) -> dict[str, float]:
    """Host calls per request, by name, of `rules` on one request that must come out `expect`."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (make wasm-test installs what it needs)")
    spec = {"iterations": 50, "repeats": 1, "requests": [{"name": "r", "headers": headers}],
            "variants": {"v": {"wasm": str(wasm), "expect": [expect],
                               "config": json.dumps({"rules": rules, **config})}}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([node, "--no-liftoff", str(NODE_HOST), str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[0])["calls"]


ONE_RULE = 'match { header["x-canary"] == "true" } -> "canary"\ndefault -> "stable"\n'


def test_one_header_rule_reads_each_header_once(wasm, tmp_path):
    """The color header (absent) and the rule's header: one read each, one write, and nothing
    else: no log line (Envoy's default level drops debug), no route-cache call, no counter
    (counts wait in the VM for the root context's tick, which this host never sends), and with
    outcome metrics off no clock and no status read."""
    c = calls(wasm, tmp_path, ONE_RULE, BASE, "stable")
    assert c == {"proxy_get_header_map_value": 2, "proxy_replace_header_map_value": 1}, c


def test_outcome_metrics_read_the_status_and_the_clock(wasm, tmp_path):
    """On, they cost a clock reading with the request and, when the stream ends, the status,
    a second clock reading and a histogram sample; the response's counter waits in the VM."""
    c = calls(wasm, tmp_path, ONE_RULE, BASE, "stable", outcome_metrics=True)
    assert c == {"proxy_get_header_map_value": 2, "proxy_replace_header_map_value": 1,
                 "proxy_get_current_time_nanoseconds": 2, "proxy_get_property": 1,
                 "proxy_record_metric": 1}, c


def test_a_client_color_is_replaced_in_one_call(wasm, tmp_path):
    c = calls(wasm, tmp_path, ONE_RULE, BASE + [["x-version-route", "canary"], ["x-canary", "true"]],
              "canary")
    assert c.get("proxy_replace_header_map_value") == 1
    assert "proxy_remove_header_map_value" not in c, c


def test_cookies_read_the_header_map_in_one_call(wasm, tmp_path):
    rules = 'match { cookie["beta"] == "yes" && header["x-env"] == "qa" } -> "canary"\ndefault -> "stable"\n'
    c = calls(wasm, tmp_path, rules, BASE + [["cookie", "a=1; beta=yes"], ["x-env", "qa"]], "canary")
    assert c.get("proxy_get_header_map_pairs") == 1
    assert "proxy_get_header_map_value" not in c, c
    assert c.get("proxy_replace_header_map_value") == 1

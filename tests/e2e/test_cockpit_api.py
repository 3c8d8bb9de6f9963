"""`traffic-color cockpit`'s HTTP API against a real Envoy running envoy/envoy-cockpit.yaml (the
filter's config delivered by ECDS from a file), two upstreams, loopback only. No browser: the
page has its own test (test_cockpit_browser.py). The cockpit runs with `--no-page`, so these
tests need no browser bundle.

Proven here:
* the live numbers (SSE `stats`) match the traffic sent: totals per color and per rule;
* a push under load changes the color with zero failed requests, new and keep-alive
  connections alike, and without a listener rebuild (listener_manager.listener_modified stays 0);
* a rule that does not compile is refused (422, positioned diagnostics), nothing is written,
  Envoy reloads nothing, and the refusal is in the audit log;
* rollback restores the previous config, also after the cockpit restarted (audit log);
* "everyone to stable" sends every request to the stable tag;
* Envoy going away shows as stale (with the last good read) and the numbers recover when it
  returns;
* cross-origin, non-JSON, wrong-Host and token-less POSTs are refused and write nothing;
* mesh mode renders the WasmPlugin manifest (the file is never written) and reads Prometheus.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from ruamel.yaml import YAML

from traffic_color_harness import envoy_config, metrics
from traffic_color_harness.cockpit import CockpitEnvoy, CockpitServer
from traffic_color_harness.load import Load, Outcome
from traffic_color_harness.repo import ISTIO_DIR

PROBE = {"x-probe": "1"}
HEADER_RULE = 'match {{ header["x-probe"] == "1" }} -> "{color}"\ndefault -> "stable"\n'
START = {"rules": HEADER_RULE.format(color="stable"), "debug_header": "x-version-route-rule",
         "outcome_metrics": True}


@pytest.fixture
def cockpit_envoy(tmp_path, wasm, upstreams):
    e = CockpitEnvoy(tmp_path, wasm, upstreams, config=START)
    yield e
    e.stop()


@pytest.fixture
def run_dir(tmp_path):
    return tmp_path


def start_cockpit(cli, run_dir, e: CockpitEnvoy, *extra: str, **kw) -> CockpitServer:
    return CockpitServer(cli, run_dir, ["--no-page", "--envoy-admin", e.admin_url,
                                        "--ecds", str(e.ecds_path), "--push-timeout", "10", *extra],
                         **kw)


@pytest.fixture
def cockpit(cli, run_dir, cockpit_envoy):
    c = start_cockpit(cli, run_dir, cockpit_envoy, "--operator", "tester")
    yield c
    c.stop()


def send(port: int, n: int, headers: dict[str, str]) -> list[str]:
    """n requests on one keep-alive connection; the upstream that answered each."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(n):
            conn.request("GET", "/", headers=headers)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, body
            out.append(json.loads(body)["version"])
    finally:
        conn.close()
    return out


def probes(port: int) -> Load:
    """Probe requests back to back: two threads on keep-alive connections, one on new ones."""
    return Load(port, headers=PROBE, keep_alive=(True, True, False))


def answered(r: Outcome) -> bool:
    """A 200 from an upstream, with the body it sends (which names the color it saw)."""
    return r.status == 200 and r.upstream is not None and r.color is not None


def wait_served(load: Load, since: float, upstream: str, timeout: float = 10.0) -> None:
    """Until requests started after `since` are all served by `upstream` for 1 s, on new and
    keep-alive connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        recent = load.since(since)
        last_wrong = max((r.started for r in recent if r.upstream != upstream), default=since)
        settled = [r for r in recent if r.started > last_wrong]
        if settled and settled[-1].started - last_wrong >= 1.0 and \
                {r.keep_alive for r in settled} == {True, False}:
            return
    raise AssertionError(f"not all served by {upstream} within {timeout}s: "
                         f"{sorted({str(r.upstream) for r in load.since(since)})}")


def listener_stats(e: CockpitEnvoy) -> dict[str, int]:
    _, body = e.envoy.admin("/stats?filter=^listener_manager\\.")
    return {k: int(v) for k, _, v in (ln.partition(": ") for ln in body.decode().splitlines())
            if v.strip().isdigit()}


def test_live_stats_match_the_traffic(cockpit, cockpit_envoy):
    e = cockpit_envoy
    assert send(e.port, 30, PROBE) == ["stable"] * 30  # rule 1 -> stable
    assert send(e.port, 50, {}) == ["stable"] * 50     # default
    # The same config, pushed: rule 1 now says canary; 20 more probes.
    status, body = cockpit.post("/api/push", {"rules": HEADER_RULE.format(color="canary"),
                                              "outcome_metrics": True})
    assert status == 200, body
    assert send(e.port, 20, PROBE) == ["canary"] * 20

    def done(s):
        return s["colors"].get("canary", {}).get("total") == 20 and \
            s["colors"].get("stable", {}).get("total") == 80
    s = cockpit.wait_stats(done)
    assert not s["stale"] and s["error"] is None and s["last_good"]
    rules = {(r["rule"], r["name"]): r["total"] for r in s["rules"]}
    assert rules == {("1", None): 50, ("default", None): 50}, s["rules"]
    state = cockpit.state()
    assert s["config"]["hash"] == state["config"]["hash"] == metrics.config_hash(state["config"]["json"])
    # Shares and rates are per second over the last poll: with no traffic now they settle to 0.
    idle = cockpit.wait_stats(lambda s: all(c["rps"] == 0 for c in s["colors"].values()))
    assert idle["colors"]["stable"]["share"] == 0

    # While traffic flows, the shares follow it (2 default requests per probe).
    with probes(e.port) as load:  # probes only: all canary now
        s = cockpit.wait_stats(lambda s: s["colors"].get("canary", {}).get("rps", 0) > 5
                               and s["colors"]["canary"]["share"] == 1.0)
    assert not load.failures
    assert all(answered(r) for r in load.outcomes), [r for r in load.outcomes if not answered(r)][:5]
    assert s["colors"]["canary"]["error_ratio"] == 0.0


def test_push_under_load_has_zero_failed_requests(cockpit, cockpit_envoy):
    e = cockpit_envoy
    before = listener_stats(e)
    reloads = e.ecds_stats().get("config_reload", 0)
    with probes(e.port) as load:
        t0 = time.monotonic()
        wait_served(load, t0, "stable")
        timeline = []
        for action, body, upstream in (
            ("/api/push", {"rules": HEADER_RULE.format(color="canary")}, "canary"),
            ("/api/rollback", {}, "stable"),
            ("/api/push", {"rules": HEADER_RULE.format(color="canary"), "operator": "ann"}, "canary"),
            ("/api/stop", {}, "stable"),
        ):
            t = time.monotonic()
            status, answer = cockpit.post(action, body)
            took = time.monotonic() - t
            assert status == 200, answer
            entry = answer["entry"]
            assert entry["outcome"] == "accepted", entry
            assert answer["state"]["config"]["hash"] == entry["new_hash"]
            wait_served(load, t, upstream)
            timeline.append(f"{action} -> {upstream}: answered in {took:.2f}s")
        time.sleep(0.5)
    print("\n".join(timeline))
    assert not load.failures, load.failures[:5]
    bad = [r for r in load.outcomes if not answered(r)]
    assert not bad, bad[:5]
    assert len(load.outcomes) > 200
    # ECDS, not a listener rebuild: the listener was never modified or re-created.
    after = listener_stats(e)
    for k in ("listener_modified", "listener_create_success", "listener_in_place_updated"):
        key = f"listener_manager.{k}"
        assert after.get(key, 0) == before.get(key, 0), (k, before, after)
    assert e.ecds_stats().get("config_reload", 0) == reloads + 4
    # The stop rule is the one the page promised.
    assert json.loads(cockpit.state()["config"]["json"])["rules"] == 'default -> "stable"\n'
    audit = cockpit.request("GET", "/api/audit")[1]
    assert [(a["action"], a["outcome"], a["operator"]) for a in audit] == [
        ("push", "accepted", "tester"), ("rollback", "accepted", "tester"),
        ("push", "accepted", "ann"), ("stop", "accepted", "tester")]
    assert audit[1]["new_hash"] == audit[0]["old_hash"]
    assert "-match { header[\"x-probe\"] == \"1\" } -> \"canary\"" in audit[3]["diff"]


def test_a_bad_rule_is_refused_with_a_positioned_diagnostic(cockpit, cockpit_envoy):
    e = cockpit_envoy
    before_file = e.ecds_path.read_bytes()
    reloads = e.ecds_stats().get("config_reload", 0)
    rules = ('match { header["a"] == "b" } -> "canary"\n'
             'match { header["x-probe"] === "1" } -> "canary"\ndefault -> "stable"\n')
    status, body = cockpit.post("/api/push", {"rules": rules})
    assert status == 422, body
    d = body["diagnostics"][0]
    assert d["where"] == "rules" and d["line"] == 2 and d["column"] > 1, d
    assert "--> line 2" in d["text"]
    assert body["entry"]["outcome"] == "rejected" and "rules rejected" in body["entry"]["reason"]
    time.sleep(1.0)
    assert e.ecds_path.read_bytes() == before_file
    assert e.ecds_stats().get("config_reload", 0) == reloads
    assert send(e.port, 5, PROBE) == ["stable"] * 5
    assert cockpit.request("GET", "/api/audit")[1][-1]["outcome"] == "rejected"


def test_rollback_after_a_cockpit_restart(cli, run_dir, cockpit, cockpit_envoy):
    e = cockpit_envoy
    first = cockpit.state()["config"]["hash"]
    assert cockpit.state()["previous"] is None
    assert cockpit.post("/api/rollback")[0] == 409  # no history yet
    status, body = cockpit.post("/api/push", {"rules": HEADER_RULE.format(color="canary")})
    assert status == 200, body
    pushed = body["entry"]["new_hash"]
    assert send(e.port, 3, PROBE) == ["canary"] * 3
    cockpit.stop()

    again = start_cockpit(cli, run_dir, e, name="cockpit-again")
    try:
        state = again.state()
        assert state["config"]["hash"] == pushed
        assert state["previous"] == {"hash": first}
        assert state["config"]["loaded_at"] == body["entry"]["time"]
        audit = again.request("GET", "/api/audit")[1]
        assert [a["new_hash"] for a in audit] == [pushed]
        status, answer = again.post("/api/rollback")
        assert status == 200, answer
        assert answer["entry"]["new_hash"] == first
        assert answer["state"]["config"]["hash"] == first
        assert send(e.port, 3, PROBE) == ["stable"] * 3
        log = Path(str(e.ecds_path) + ".audit.jsonl").read_text().splitlines()
        assert [json.loads(ln)["action"] for ln in log] == ["push", "rollback"]
    finally:
        again.stop()


def test_envoy_going_away_shows_stale_then_recovers(cockpit, cockpit_envoy):
    e = cockpit_envoy
    send(e.port, 7, PROBE)
    good = cockpit.wait_stats(lambda s: s["colors"].get("stable", {}).get("total") == 7)
    e.envoy.stop()
    stale = cockpit.wait_stats(lambda s: s["stale"])
    assert stale["error"] and stale["last_good"] >= good["at"]
    assert stale["colors"]["stable"]["total"] == 7  # the last good numbers, marked stale
    # The API keeps answering while the source is down.
    assert cockpit.state()["mode"] == "local"
    e.restart()
    send(e.port, 4, PROBE)
    back = cockpit.wait_stats(lambda s: not s["stale"] and s["colors"].get("stable", {}).get("total") == 4)
    assert back["error"] is None and back["last_good"] == back["at"]


def refused_post(c: CockpitServer, status: int, headers: dict[str, str], body: bytes | str | None = None):
    s, answer = c.request("POST", "/api/push", body if body is not None else
                          json.dumps({"rules": 'default -> "canary"\n'}), headers=headers)
    assert s == status, answer
    return answer


def test_unsafe_posts_are_refused_and_write_nothing(cli, run_dir, cockpit, cockpit_envoy):
    e = cockpit_envoy
    before = e.ecds_path.read_bytes()
    json_type = {"Content-Type": "application/json"}
    refused_post(cockpit, 403, {**json_type, "Origin": "http://evil.example"})
    refused_post(cockpit, 403, {**json_type, "Origin": "null"})
    refused_post(cockpit, 415, {"Content-Type": "text/plain"})
    refused_post(cockpit, 415, {"Content-Type": "application/x-www-form-urlencoded"}, "rules=x")
    refused_post(cockpit, 403, {**json_type, "Host": "rebound.example:80"})
    assert cockpit.request("GET", "/api/state", headers={"Host": "rebound.example"})[0] == 403
    assert e.ecds_path.read_bytes() == before
    assert cockpit.request("GET", "/api/audit")[1] == []

    token = "t-" + "x" * 30
    guarded = start_cockpit(cli, run_dir, e, name="cockpit-token",
                            env={"TRAFFIC_COLOR_COCKPIT_TOKEN": token})
    try:
        assert guarded.state()["token_required"] is True
        refused_post(guarded, 401, json_type)
        refused_post(guarded, 401, {**json_type, "Authorization": "Bearer wrong"})
        assert e.ecds_path.read_bytes() == before
        status, body = guarded.post("/api/push", {"rules": HEADER_RULE.format(color="canary")},
                                    headers={"Authorization": f"Bearer {token}",
                                             "Origin": guarded.origin})
        assert status == 200, body
    finally:
        guarded.stop()


def test_off_loopback_without_a_token_does_not_start(cli, run_dir, cockpit_envoy, tmp_path):
    import subprocess
    r = subprocess.run([cli, "cockpit", "--no-page", "--listen", "0.0.0.0:0", "--envoy-admin",
                        cockpit_envoy.admin_url, "--ecds", str(cockpit_envoy.ecds_path)],
                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "token is required" in r.stderr, r.stderr


class FakePrometheus:
    """Answers /api/v1/query with canned vectors (keyed by the query), or 503 when down."""

    def __init__(self, answers: dict[str, list[tuple[dict, str]]]):
        self.answers, self.down, self.queries = answers, False, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                q = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                outer.queries.append(q)
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                result = [{"metric": m, "value": [0, v]} for m, v in outer.answers.get(q, [])]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_mesh_mode_renders_manifests_and_reads_prometheus(cli, run_dir, tmp_path):
    rules_file = [ln for ln in (ISTIO_DIR / "wasmplugin.yaml").read_text().splitlines(keepends=True)]
    manifest = tmp_path / "wasmplugin.yaml"
    manifest.write_text("".join(rules_file))
    original = YAML(typ="safe").load(manifest.read_text())
    prom = FakePrometheus({
        "color:traffic_color_requests:rate5m": [({"color": "canary"}, "3"), ({"color": "stable"}, "9")],
        "color:traffic_color_requests:share5m": [({"color": "canary"}, "0.25"), ({"color": "stable"}, "0.75")],
        "color:traffic_color_error_ratio:rate5m": [({"color": "canary"}, "0.01")],
        "color:traffic_color_request_duration_milliseconds:p95_5m": [({"color": "canary"}, "NaN")],
        "sum by (color) (traffic_color_requests_total)": [({"color": "canary"}, "300"), ({"color": "stable"}, "900")],
        "count by (hash) (traffic_color_config_info == 1)": [({"hash": "ab" * 16}, "4")],
    })
    c = CockpitServer(cli, run_dir, ["--no-page", "--prometheus", prom.url, "--wasmplugin", str(manifest)])
    try:
        state = c.state()
        assert state["mode"] == "mesh" and state["source"] == {"kind": "prometheus", "url": prom.url}
        assert state["config"]["rules"] == original["spec"]["pluginConfig"]["rules"]
        s = c.wait_stats(lambda s: "canary" in s["colors"])
        assert s["colors"]["canary"] == {"rps": 3.0, "share": 0.25, "error_ratio": 0.01,
                                         "p95_ms": None, "total": 300}
        assert s["config"]["hash"] == "ab" * 16 and not s["stale"]

        new_rules = 'match { header["x-canary"] == "true" } -> "canary"\ndefault -> "stable"\n'
        status, body = c.post("/api/push", {"rules": new_rules})
        assert status == 200, body
        assert body["entry"]["outcome"] == "rendered"
        rendered = YAML(typ="safe").load(body["manifest"])
        assert rendered["spec"]["pluginConfig"]["rules"] == new_rules
        for k in ("url", "selector", "phase", "priority", "failStrategy", "pluginName"):
            assert rendered["spec"].get(k) == original["spec"].get(k), k
        assert {k: v for k, v in rendered["spec"]["pluginConfig"].items() if k != "rules"} == \
            {k: v for k, v in original["spec"]["pluginConfig"].items() if k != "rules"}
        assert rendered["metadata"] == original["metadata"]
        assert manifest.read_text() == "".join(rules_file)  # never written
        assert c.post("/api/push", {"rules": "match {"})[0] == 422

        prom.down = True
        stale = c.wait_stats(lambda s: s["stale"])
        assert "503" in stale["error"] and stale["colors"]["canary"]["total"] == 300
        prom.down = False
        c.wait_stats(lambda s: not s["stale"])
    finally:
        c.stop()
        prom.close()


def test_ecds_envoy_config_is_the_documented_one():
    """The demo rules the cockpit starts from are envoy.yaml's (tests/config_check.py checks
    the rest of the file); the test above pushes over exactly this filter name."""
    cfg = envoy_config.load()
    from traffic_color_harness import cockpit as ck
    doc = json.loads(ck.ECDS_RESOURCE.read_text())
    assert ck.filter_config(doc) == envoy_config.filter_config(cfg)


def test_the_page_is_served_or_the_binary_says_how_to_build_it(cli, run_dir, cockpit_envoy):
    """Without `--no-page` the binary serves the page and the bundle it was built with; one
    built without the bundle refuses to start and says how to build it."""
    import subprocess
    argv = [cli, "cockpit", "--listen", "127.0.0.1:0", "--envoy-admin", cockpit_envoy.admin_url,
            "--ecds", str(cockpit_envoy.ecds_path)]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        r = None  # still running: it serves the page
    if r is not None:
        assert r.returncode == 2, r.stderr
        assert "built without the browser bundle: run `make cockpit-web` then rebuild" in r.stderr
        return
    c = CockpitServer(cli, run_dir, ["--envoy-admin", cockpit_envoy.admin_url,
                                     "--ecds", str(cockpit_envoy.ecds_path)], name="cockpit-page")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
        for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css"),
                            ("/pkg/traffic_color.js", "text/javascript"),
                            ("/pkg/traffic_color_bg.wasm", "application/wasm")):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200 and resp.getheader("content-type").startswith(ctype), path
            assert "frame-ancestors 'none'" in resp.getheader("content-security-policy")
            if path.endswith(".wasm"):
                assert body.startswith(b"\0asm")
        conn.close()
    finally:
        c.stop()


def test_a_push_envoy_rejects_is_reported_and_the_file_put_back(cockpit, cockpit_envoy):
    """Rules the compiler accepts can still fail in Envoy when the resource file around them is
    broken (here: a hand edit pointing the VM at a module that does not exist). The push says
    Envoy refused it, the file goes back, and the proxy keeps serving the old config."""
    e = cockpit_envoy
    doc = json.loads(e.ecds_path.read_text())
    doc["resources"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = "/nonexistent.wasm"
    attempts = e.ecds_stats().get("update_attempt", 0)
    e.ecds_path.write_text(json.dumps(doc))  # in place: no move, so Envoy does not reload it
    broken = e.ecds_path.read_text()
    time.sleep(1.0)
    assert e.ecds_stats().get("update_attempt", 0) == attempts
    hash_before = cockpit.state()["config"]["hash"]
    status, body = cockpit.post("/api/push", {"rules": HEADER_RULE.format(color="canary")})
    assert status == 502, body
    assert body["entry"]["outcome"] == "rejected"
    assert "Envoy rejected the update" in body["entry"]["reason"] and "put back" in body["entry"]["reason"]
    assert e.ecds_path.read_text() == broken
    assert e.ecds_stats().get("update_rejected", 0) >= 1
    assert cockpit.state()["config"]["hash"] == hash_before
    assert send(e.port, 5, PROBE) == ["stable"] * 5

"""Outcomes per color and the config hash, through the real Envoy (envoy/envoy.yaml's stats tags).

A known mix is sent one request at a time: upstreams asked for a status and a delay
(envoy/upstream.py's `x-upstream-status` / `x-upstream-delay-ms`), Envoy's own 503 for a
cluster without endpoints, and a client that leaves before the answer. Then:

* `traffic_color_responses_total{color,class}` equals the mix exactly, for every color and
  class (the series exist at 0 before anything happens), and `requests_total` with it;
* `traffic_color_request_duration_milliseconds{color}`: `_count` exactly; each cumulative
  bucket `le=B` holds no request whose delay exceeds B (none can be faster than its delay), and
  every request whose delay is at least SLACK_MS below B but for at most LATE_SHARE of a color's
  requests (rounded up): the time a loaded 2-core machine may add. `_sum` within the same slack
  (Envoy sums two-digit bins, so within 10% of the delays);
* `traffic_color_config_info{hash}` is 1 for the hash `traffic-color check` prints for the very
  string the filter was given, and an independent implementation agrees; after a push of other
  rules the new hash is 1 and the old one 0; after a push that keeps the hash it stays 1.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
from pathlib import Path

import pytest

from traffic_color_harness import envoy_config, metrics
from traffic_color_harness.client import request
from traffic_color_harness.lds import LdsEnvoy

RULES = "\n".join([
    'match { header["x-canary"] == "true" } -> "canary"',
    'match "beta" { cookie["beta"] == "1" } -> "blue"',
    'default -> "stable"',
])
COLORS = ["canary", "blue", "stable", "unset"]
CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"]
DURATION = "traffic_color_request_duration_milliseconds"
SLACK_MS = 20
LATE_SHARE = 0.10

CANARY = [["x-canary", "true"]]
BLUE = [["cookie", "beta=1"]]


def knobs(status: int | None = None, delay_ms: int | None = None) -> list[list[str]]:
    out = []
    if status is not None:
        out.append(["x-upstream-status", str(status)])
    if delay_ms is not None:
        out.append(["x-upstream-delay-ms", str(delay_ms)])
    return out


# (path, headers, expected status, color, class or None, delay in ms)
MIX = (
    [("/", CANARY, 200, "canary", "2xx", 0)] * 10
    + [("/", CANARY + knobs(delay_ms=30), 200, "canary", "2xx", 30)] * 6
    + [("/", CANARY + knobs(503, 150), 503, "canary", "5xx", 150)] * 4
    + [("/", BLUE + knobs(404), 404, "blue", "4xx", 0)] * 3
    + [("/", BLUE + knobs(302), 302, "blue", "3xx", 0)]
    + [("/", BLUE + knobs(204), 204, "blue", "2xx", 0)]
    + [("/", [], 200, "stable", "2xx", 0)] * 5
    # Envoy answers these itself: the `dead` cluster has no endpoints (no_healthy_upstream).
    + [("/dead", [], 503, "stable", "5xx", 0)] * 3
)
# A client that sends a request asking for a slow answer and leaves after LEAVE_AFTER_S.
LEAVE_AFTER_S = 0.3


def with_dead_cluster(cfg: dict) -> dict:
    cfg["static_resources"]["clusters"].append({
        "name": "dead", "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "dead"}})
    envoy_config.routes(cfg).insert(0, {"match": {"prefix": "/dead"}, "route": {"cluster": "dead"}})
    # Histograms reach /stats/prometheus at each flush: 1 s here, 5 s by default.
    cfg["stats_flush_interval"] = "1s"
    return cfg


def leave_early(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: shop\r\nx-upstream-delay-ms: 2000\r\n\r\n")
        time.sleep(LEAVE_AFTER_S)


def check_histogram(s: metrics.Samples, color: str, delays: list[int]) -> None:
    n = len(delays)
    count = s.value(f"{DURATION}_count", color=color)
    assert count == n, f"{color}: {count} durations recorded for {n} requests"
    buckets = s.buckets(DURATION, color=color)
    assert buckets, f"{color}: no buckets in {s.series(DURATION + '_bucket')}"
    late = math.ceil(LATE_SHARE * n)
    for le, got in buckets.items():
        at_most = sum(1 for d in delays if d <= le)
        surely = sum(1 for d in delays if d + SLACK_MS <= le)
        assert surely - late <= got <= at_most, (
            f"{color}: bucket le={le} holds {got}; expected {surely - late}..{at_most} "
            f"(delays {sorted(delays)})")
    total = s.value(f"{DURATION}_sum", color=color)
    assert 0.9 * sum(delays) <= total <= 1.1 * sum(delays) + n * SLACK_MS, (color, total, sum(delays))


@pytest.fixture(scope="module")
def outcomes(envoys):
    """An Envoy that has served MIX and one client that left early, and its scrape."""
    cfg = with_dead_cluster(envoys.render(config={"rules": RULES, "outcome_metrics": True}))
    envoy = envoys.start_rendered(cfg, "outcomes")
    before = metrics.scrape(envoy.admin_port)
    for path, headers, status, color, _, _ in MIX:
        r = request(envoy.port, "GET", path, headers)
        assert r.status == status, (path, headers, r.status, r.body[:200])
        if path == "/" and status != 204:
            assert r.json["x-version-route"] == color
    leave_early(envoy.port)
    per_color = {c: [d for _, _, _, col, _, d in MIX if col == c] for c in COLORS}
    per_color["stable"].append(int(LEAVE_AFTER_S * 1000))
    want = {c: len(v) for c, v in per_color.items()}
    responses = sum(1 for *_, cls, _ in MIX if cls in CLASSES)
    # Histograms reach the scrape at Envoy's stats flush, counters when the filter hands them
    # over on its 1 s tick: wait for both.
    s = metrics.scrape_until(envoy.admin_port, lambda s: all(
        s.value(f"{DURATION}_count", color=c) >= want[c]
        and s.value("traffic_color_requests_total", color=c) >= want[c] for c in COLORS)
        and sum(s.value("traffic_color_responses_total", color=c, **{"class": k})
                for c in COLORS for k in CLASSES) >= responses)
    return envoy, before, s, per_color


def test_every_series_exists_before_any_request(outcomes):
    _, before, _, _ = outcomes
    for color in COLORS:
        for cls in CLASSES:
            assert before.get_sample("traffic_color_responses_total", **{"color": color, "class": cls}) == 0, \
                (color, cls, before.series("traffic_color_responses_total"))


def test_without_outcome_metrics_there_are_no_outcome_series(envoys):
    """Off by default: the colors are counted, the outcomes are not defined at all (so a
    dashboard shows "no data", not zeros that look like no traffic)."""
    envoy = envoys.start_rendered(envoys.render(config={"rules": RULES}), "outcomes-off")
    for path, headers, status, color, _, _ in MIX[:6]:
        assert request(envoy.port, "GET", path, headers).status == status
    s = metrics.scrape_until(envoy.admin_port, lambda s: sum(
        s.value("traffic_color_requests_total", color=c) for c in COLORS) >= 6)
    assert sum(s.value("traffic_color_requests_total", color=c) for c in COLORS) == 6
    assert not s.series("traffic_color_responses_total"), s.series("traffic_color_responses_total")
    assert not s.series(DURATION + "_count"), s.series(DURATION + "_count")


def test_responses_by_color_and_class_match_the_mix_exactly(outcomes):
    _, _, s, _ = outcomes
    for color in COLORS:
        for cls in CLASSES:
            want = sum(1 for *_, col, c, _ in MIX if (col, c) == (color, cls))
            got = s.get_sample("traffic_color_responses_total", **{"color": color, "class": cls})
            assert got == want, (color, cls, got, want)
    # The client that left is a request with no response class.
    for color in COLORS:
        want = sum(1 for *_, col, _, _ in MIX if col == color) + (color == "stable")
        assert s.value("traffic_color_requests_total", color=color) == want, color
    assert s.value("traffic_color_rule_hits_total", rule="2", name="beta") == 5


def test_durations_by_color(outcomes):
    _, _, s, per_color = outcomes
    for color in ("canary", "blue", "stable"):
        check_histogram(s, color, per_color[color])
    # The client that left: recorded when its stream ended, after LEAVE_AFTER_S.
    stable = s.buckets(DURATION, color="stable")
    assert stable[250.0] <= len(per_color["stable"]) - 1
    assert s.value(f"{DURATION}_count", color="unset") == 0


def test_default_buckets_are_envoys(outcomes):
    _, _, s, _ = outcomes
    assert list(s.buckets(DURATION, color="canary")) == [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
        300000, 600000, 1800000, 3600000, float("inf")]


# -------------------------------------------------------------------------------- config hash


def check_hash(cli: Path, config_string: str, tmp: Path) -> str:
    """The hash `traffic-color check` prints for this exact config string."""
    path = tmp / "config.json"
    path.write_text(config_string, encoding="utf-8")
    r = subprocess.run([str(cli), "check", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ", config hash " in r.stdout, r.stdout
    return r.stdout.strip().rsplit(" ", 1)[-1]


def info_series(s: metrics.Samples) -> dict[str, float]:
    return {d["hash"]: s.get_sample("traffic_color_config_info", **d)
            for d in s.series("traffic_color_config_info")}


def test_config_info_carries_the_hash_check_prints(outcomes, cli, tmp_path):
    envoy, _, s, _ = outcomes
    given = envoy_config.wasm_filter(json.loads(Path(envoy.config_path).read_text()))[
        "typed_config"]["config"]["configuration"]["value"]
    from_cli = check_hash(cli, given, tmp_path)
    assert from_cli == metrics.config_hash(given)
    # Reformatted and reordered, it is the same config.
    spaced = json.dumps(dict(reversed(json.loads(given).items())), indent=3)
    assert check_hash(cli, spaced, tmp_path) == from_cli
    assert info_series(s) == {from_cli: 1}
    assert f"config hash {from_cli}" in envoy.log()


def test_a_push_moves_config_info_to_the_new_hash(envoys, cli, tmp_path):
    """Over LDS (as in test_config_push): the new config's hash is set, the old one's drops to
    0 once Envoy has torn the old filter down (after --drain-time-s). A push that keeps the hash
    (the same config, reformatted) keeps it at 1: a root torn down sets 0, and the roots still
    running set 1 again on their next tick (every second)."""
    first = {"rules": 'default -> "stable"'}
    second = {"rules": 'default -> "canary"'}
    lds = LdsEnvoy(envoys, "info-push", first)
    old, new = metrics.config_hash(json.dumps(first)), metrics.config_hash(json.dumps(second))
    assert check_hash(cli, json.dumps(first), tmp_path) == old
    s = metrics.scrape_until(lds.envoy.admin_port, lambda s: info_series(s).get(old) == 1)
    assert info_series(s) == {old: 1}

    t0 = lds.push(second)
    s = metrics.scrape_until(lds.envoy.admin_port,
                             lambda s: info_series(s).get(new) == 1 and info_series(s).get(old) == 0,
                             timeout=30)
    assert info_series(s) == {old: 0, new: 1}
    teardown = time.monotonic() - t0

    lds.push(raw=json.dumps(second, indent=2))
    samples = []
    end = time.monotonic() + teardown + 4
    while time.monotonic() < end:
        samples.append((time.monotonic(), info_series(metrics.scrape(lds.envoy.admin_port)).get(new)))
        time.sleep(0.1)
    assert samples[-1][1] == 1, samples[-5:]
    zero_since = None
    for t, v in samples:
        if v == 1:
            zero_since = None
        elif zero_since is None:
            zero_since = t
        else:
            assert t - zero_since < 1.6, f"config_info{{hash={new}}} at {v} for {t - zero_since:.1f}s"


def test_every_request_is_counted_once_across_a_push(envoys):
    """Counts wait in each VM for its 1 s tick, and a push hands the listener to a new filter
    config while the old one drains and is torn down: whatever was pending then must still
    reach Envoy, once, under the color that request got."""
    lds = LdsEnvoy(envoys, "count-push", {"rules": 'default -> "stable"'})
    seen = {"stable": 0, "canary": 0}

    def send() -> str:
        r = request(lds.envoy.port, "GET", "/", [])
        assert r.status == 200
        color = r.json["x-version-route"]
        seen[color] += 1
        return color

    for _ in range(40):
        send()
    lds.push({"rules": 'default -> "canary"'})
    deadline = time.monotonic() + 30
    while send() != "canary":
        assert time.monotonic() < deadline, "the pushed config never served"
    for _ in range(40):
        assert send() == "canary"
    s = metrics.scrape_until(lds.envoy.admin_port, lambda s: all(
        s.value("traffic_color_requests_total", color=c) >= n for c, n in seen.items()), timeout=30)
    # Past the drain time and a few ticks: nothing more arrives, nothing was counted twice.
    time.sleep(4)
    s = metrics.scrape(lds.envoy.admin_port)
    assert {c: s.value("traffic_color_requests_total", color=c) for c in seen} == seen
    assert s.value("traffic_color_rule_hits_total", rule="default") == sum(seen.values())

"""Two Envoys in a row, as in a mesh: an edge (`keep` off) in front of a hop with `keep`, both
running the filter. The edge's routes drop the color header on the way to the hop (as an
application that forwards only tracing headers would), so the hop sees the color only in
`baggage`.

What must hold: the hop keeps the edge's color or decides the same itself; it never keeps a
color member the client sent, whatever the size of the client's baggage (the member and byte
limits, our member first or last, one header or several); and `split("group")` draws the same
number on both hops, because both read the request id Envoy generated at the edge.
"""

from __future__ import annotations

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.client import request

KEY = "version-route"
RULES = "\n".join([
    'match { header["x-canary"] == "true" } -> "canary"',
    'match { split("hops") < 50 } -> "blue"',
    'default -> "stable"',
])
COLOR_OF = {"rule 1": "canary", "rule 2": "blue", "default": "stable"}
MAX_BYTES, MAX_MEMBERS = 8192, 180


def start_chain(envoys, name: str, extra: dict):
    """(edge, hop) with `extra` in both configs; the edge's every cluster is the hop's listener,
    and the color header is dropped between them. The hop is not an edge
    (`use_remote_address: false`, as a sidecar's inbound listener), so it keeps the request id
    the edge generated; the edge, like envoy.yaml, generates its own for every client."""
    hop_cfg = envoys.render(config={"rules": RULES, "keep": True, "debug_header": "x-hop-rule", **extra})
    envoy_config.hcm(hop_cfg)["use_remote_address"] = False
    hop = envoys.start_rendered(hop_cfg, f"{name}-hop")
    cfg = envoys.render(config={"rules": RULES, "debug_header": "x-edge-rule", **extra})
    for cluster in envoy_config.clusters(cfg).values():
        for e in cluster["load_assignment"]["endpoints"]:
            for lb in e["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"]["port_value"] = hop.port
    envoy_config.hcm(cfg)["route_config"]["request_headers_to_remove"] = ["x-version-route"]
    return envoys.start_rendered(cfg, f"{name}-edge"), hop


@pytest.fixture(scope="module")
def chain(envoys):
    return start_chain(envoys, "baggage", {"baggage": KEY})


@pytest.fixture(scope="module")
def bare_chain(envoys):
    return start_chain(envoys, "bare", {})


def received(r, name):
    return [v for k, v in r.json["headers"] if k.lower() == name]


def members(n: int, ours_at: str, pad: int = 0) -> str:
    """A baggage value of n members with the client's `KEY=canary` first or last."""
    others = [f"m{i}=v" for i in range(n - 1)]
    if pad:
        others.append("pad=" + "x" * pad)
    ours = f"{KEY}=canary"
    return ",".join([ours] + others if ours_at == "first" else others + [ours])


def sized(total: int, ours_at: str) -> str:
    """A baggage value of exactly `total` bytes holding the client's member."""
    ours = f"{KEY}=canary"
    pad = total - len(ours) - len(",pad=")
    return f"{ours},pad={'x' * pad}" if ours_at == "first" else f"pad={'x' * pad},{ours}"


CASES = []
for at in ("first", "last"):
    CASES += [
        (f"{MAX_MEMBERS - 1} members, ours {at}", [members(MAX_MEMBERS - 1, at)]),
        (f"{MAX_MEMBERS} members, ours {at}", [members(MAX_MEMBERS, at)]),
        (f"{MAX_MEMBERS + 1} members, ours {at}", [members(MAX_MEMBERS + 1, at)]),
        (f"{MAX_MEMBERS + 50} members, ours {at}", [members(MAX_MEMBERS + 50, at)]),
        (f"{MAX_BYTES - 2} bytes, ours {at}", [sized(MAX_BYTES - 2, at)]),
        (f"{MAX_BYTES - 1} bytes, ours {at}", [sized(MAX_BYTES - 1, at)]),
        (f"{MAX_BYTES} bytes, ours {at}", [sized(MAX_BYTES, at)]),
        (f"{MAX_BYTES + 1} bytes, ours {at}", [sized(MAX_BYTES + 1, at)]),
        (f"two headers, ours in the {at}", ["a=1", f"{KEY}=canary"] if at == "last" else [f"{KEY}=canary", "a=1"]),
    ]


@pytest.mark.parametrize("what,baggage", CASES, ids=[c[0] for c in CASES])
def test_the_hop_never_keeps_a_client_color(chain, what, baggage):
    edge, _ = chain
    r = request(edge.port, "GET", "/", [["baggage", b] for b in baggage])
    assert r.status == 200, f"{what}: {r.status} {r.body[:200]!r}"
    edge_rule, hop_rule = r.header("x-edge-rule"), r.header("x-hop-rule")
    want = COLOR_OF[edge_rule]
    assert r.json["x-version-route"] == want, f"{what}: edge decided {edge_rule}, hop {hop_rule}"
    sent_on = ",".join(received(r, "baggage"))
    client_member = [m for m in sent_on.split(",") if m.split(";")[0].split("=")[0].strip() == KEY]
    # Only ours (the edge's color) or none at all goes on; the hop then keeps it or decides alike.
    assert client_member in ([f"{KEY}={want}"], []), f"{what}: {client_member}"
    if client_member:
        assert hop_rule == "kept from baggage", what
    else:
        assert hop_rule == edge_rule, f"{what}: the hop recomputed {hop_rule}, the edge {edge_rule}"


def test_a_split_draws_the_same_on_both_hops(bare_chain):
    """Nothing carries the color to the hop, so it decides again: `split("hops")` reads the
    request id the edge generated, and the hop draws the same for every request."""
    edge, _ = bare_chain
    seen = {"rule 2": 0, "default": 0}
    for i in range(200):
        r = request(edge.port, "GET", f"/split/{i}", [])
        edge_rule, hop_rule = r.header("x-edge-rule"), r.header("x-hop-rule")
        assert hop_rule == edge_rule, f"request {i}: edge {edge_rule}, hop {hop_rule}"
        assert r.json["x-version-route"] == COLOR_OF[edge_rule]
        seen[edge_rule] += 1
    # Both sides were drawn: 50% of 200 is 100, and 4 standard deviations are 28.
    assert all(n > 100 - 28 for n in seen.values()), seen


def test_a_client_cannot_choose_its_draw_at_the_edge(bare_chain):
    """The edge replaces a client's x-request-id, so sending one id again and again does not
    pin a request to one side of a split."""
    edge, _ = bare_chain
    rules = {request(edge.port, "GET", "/", [["x-request-id", "0f0f0f0f-aaaa-4bbb-8ccc-000000000001"]]).header("x-edge-rule")
             for _ in range(40)}
    assert rules == {"rule 2", "default"}, rules

"""Checks of the case table and the configs that need no Envoy."""

from __future__ import annotations

import re

from traffic_color_harness import envoy_config
from traffic_color_harness.bucket import bucket, murmur3_x86_32
from traffic_color_harness.repo import routing_table

TABLE = routing_table()


def test_murmur3_reference_vectors():
    assert murmur3_x86_32(b"") == 0
    assert murmur3_x86_32(b"", 1) == 0x514E28B7
    assert murmur3_x86_32(b"hello") == 0x248BFA47
    assert murmur3_x86_32(b"Hello world!") == 0x627B0C2C
    assert murmur3_x86_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723


def test_bucket_matches_unleash():
    # Unleash's normalizedValue vectors (shared by its Node, Java and Go clients).
    assert bucket("123", "gr1") == 73
    assert bucket("999", "groupX") == 25


def test_bucket_cases_say_their_bucket():
    """Case names like `user-148 (bucket 5)` state the bucket; recompute it; include 5 and 6."""
    seen = set()
    for case in TABLE["cases"]:
        m = re.search(r"(\S+) \(bucket (\d+)\)", case["name"])
        if not m:
            continue
        uid, b = m.group(1), int(m.group(2))
        assert [v for k, v in case["headers"] if k.lower() == "x-user-id"] == [uid], case["name"]
        assert bucket(uid, "checkout-v2") == b, case["name"]
        seen.add(b)
    assert {5, 6} <= seen, "the boundary buckets 5 and 6 must be in the table"


def test_table_shape():
    assert set(TABLE) <= {"description", "config", "cases"}
    names = [c["name"] for c in TABLE["cases"]]
    assert len(names) == len(set(names)), "case names must be unique"
    for c in TABLE["cases"]:
        assert set(c) <= {"name", "method", "path", "headers", "expect", "rule"}, c["name"]
        assert c["path"].startswith("/"), c["name"]
        assert all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
                   for h in c["headers"]), c["name"]
        assert c["expect"] is None or isinstance(c["expect"], str), c["name"]


def test_table_starts_with_the_shipped_rules():
    """The table's rules are envoy.yaml's rules (minus its default) plus extra rules."""
    shipped = envoy_config.rules(envoy_config.load())
    lines = shipped.splitlines(keepends=True)
    assert lines[-1].startswith("default"), "envoy.yaml's rules should end with the default rule"
    table = TABLE["config"]["rules"]
    assert table.startswith("".join(lines[:-1])), "tests/fixtures/routing.json drifted from envoy.yaml"
    assert table.endswith(lines[-1]), "the table must keep envoy.yaml's default rule last"
    shipped_cfg = envoy_config.filter_config(envoy_config.load())
    assert {k: v for k, v in TABLE["config"].items() if k != "rules"} == \
        {k: v for k, v in shipped_cfg.items() if k != "rules"}


def test_readable_rules_in_envoy_yaml_match_the_real_ones():
    assert envoy_config.documented_rules() == envoy_config.rules(envoy_config.load())


def test_every_color_has_a_route():
    cfg = envoy_config.load()
    assert envoy_config.cluster_for(cfg, "canary") == "canary"
    assert envoy_config.cluster_for(cfg, "blue") == "canary"
    assert envoy_config.cluster_for(cfg, "stable") == "stable"
    assert envoy_config.cluster_for(cfg, None) == "stable"

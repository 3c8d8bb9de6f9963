"""Config pushes under load: Envoy takes its listener from a file (LDS over
`path_config_source` with a watched directory), and the filter's rules are replaced several
times, with valid and invalid configs, while load generator threads send requests without a
pause. Proven here:

* not one request fails: no 5xx, no connection error, every answer from the upstream the rules
  in force chose;
* a valid push is in force within seconds (new connections at once; keep-alive connections once
  Envoy has drained them from the old filter chain: `--drain-time-s 2` here);
* an invalid push (rules that do not compile, JSON that does not parse, an unknown key, a
  program that once hung the lexer, a megabyte of junk that once exhausted the VM's memory) is
  rejected: `listener_manager.lds.update_rejected` goes up
  and the previous rules keep serving, unchanged.

The listener file is replaced the way Envoy's docs say: write a new file next to it, then
rename it over the watched path (an atomic move, which the directory watch sees).
"""

from __future__ import annotations

import time

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.lds import LdsEnvoy
from traffic_color_harness.load import Load

PROBE = {"x-probe": "1"}
HEADER_RULE = 'match {{ header["x-probe"] == "1" }} -> "{color}"\ndefault -> "stable"\n'
DEBUG = "x-version-route-rule"
IN_FORCE_WITHIN = 10.0  # seconds from the file move until every new answer has the new color


def wait_for_color(load: Load, since: float, color: str,
                   timeout: float = IN_FORCE_WITHIN) -> tuple[float, float]:
    """Seconds from `since` until every request started after some point had `color` (checked
    over a settled window of 1 s), on new and on keep-alive connections; fails after `timeout`."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        recent = load.since(since)
        wrong = [r for r in recent if r.color != color]
        last_wrong = max((r.started for r in wrong), default=since)
        settled = [r for r in recent if r.started > last_wrong]
        if settled and settled[-1].started - last_wrong >= 1.0:
            lag = {keep: max((r.finished for r in wrong if r.keep_alive == keep), default=since) - since
                   for keep in (False, True)}
            return lag[False], lag[True]
    recent = load.since(since)
    seen = sorted({str(r.color) for r in recent})
    raise AssertionError(f"color {color!r} not in force {timeout}s after the push; saw {seen}")


def steady(load: Load, color: str, seconds: float) -> None:
    t = time.monotonic()
    time.sleep(seconds)
    recent = load.since(t)
    assert recent, "no requests completed"
    colors = {r.color for r in recent}
    assert colors == {color}, f"expected only {color!r} after a rejected push, saw {colors}"


@pytest.fixture
def lds_envoy(envoys):
    return LdsEnvoy(envoys, "lds", {"rules": HEADER_RULE.format(color="canary"),
                                    "debug_header": DEBUG})


def test_pushes_under_load(lds_envoy, base_config):
    e = lds_envoy
    timeline = []
    with Load(e.port, headers=PROBE, keep_alive=(True, True, False, False)) as load:
        t0 = time.monotonic()
        wait_for_color(load, t0, "canary")
        rejected = e.stats().get("listener_manager.lds.update_rejected", 0)
        success = e.stats().get("listener_manager.lds.update_success", 0)

        def valid(color: str, rules: str | None = None) -> None:
            nonlocal success
            rules = rules or HEADER_RULE.format(color=color)
            t = e.push({"rules": rules, "debug_header": DEBUG})
            success = e.wait_stat("listener_manager.lds.update_success", success)
            new_conn, kept_conn = wait_for_color(load, t, color)
            timeline.append(f"valid -> {color}: last old answer {new_conn:.2f}s after the move on "
                            f"new connections, {kept_conn:.2f}s on keep-alive ones")

        def invalid(what: str, still: str, config: dict | None = None, raw: str | None = None) -> None:
            nonlocal rejected
            t = e.push(config, raw=raw)
            rejected = e.wait_stat("listener_manager.lds.update_rejected", rejected)
            timeline.append(f"invalid ({what}): rejected after {time.monotonic() - t:.2f}s")
            steady(load, still, 1.0)

        valid("blue")
        invalid("rules do not compile", "blue",
                {"rules": 'match { heade["x-probe"] == "1" } -> "canary"'})
        invalid("JSON does not parse", "blue", raw='{"rules": "default -> \\"canary\\""')
        invalid("unknown key", "blue", {"rules": 'default -> "canary"', "colour": "x"})
        invalid("backslash before a newline in a string", "blue",
                {"rules": 'match { header["x-probe"] == "1\\\n} -> "canary"\n'})
        valid("canary")
        valid("stable", 'match { header["x-probe"] == "2" } -> "canary"\ndefault -> "stable"\n')
        invalid("no rules", "stable", {"rules": "# nothing\n"})
        invalid("1 MiB of junk", "stable", {"rules": "@" * (1 << 20)})
        valid("blue")

    results, errors = load.outcomes, load.failures
    total = len(results)
    bad = [r for r in results if r.status != 200]
    print(f"\nconfig pushes: {e.version - 1} pushes, {total} requests, {len(errors)} errors, "
          f"{len(bad)} non-200\n  " + "\n  ".join(timeline))
    assert total > 200, f"the load generator barely ran: {total} requests"
    assert errors == [], errors[:10]
    assert bad == [], bad[:10]
    # Every answer came from the upstream its color routes to (no stale or mixed routing).
    for r in results:
        assert r.upstream == envoy_config.cluster_for(base_config, r.color), (r.color, r.upstream)
    assert e.envoy.proc.alive()
    # Each rejection told the operator why, in Envoy's log.
    log = e.envoy.log()
    for why in ("unknown source `heade`", "invalid config JSON", "colour", "unterminated string",
                "no rules", "unexpected character `@`"):
        assert why in log, f"no {why!r} in Envoy's log"

"""A bad filter configuration stops Envoy at startup, and its log says exactly what is wrong."""

from __future__ import annotations

import re

import pytest

from traffic_color_harness import envoy_config
from traffic_color_harness.envoy import run_to_exit

# Three mistakes, positions worked out by hand (line and column are 1-based):
#   line 2, column 9:  `heade` is not a source (col 9 = after "match { ")
#   line 4, column 30: the regex "([" is invalid (the string starts at col 28, +2 for the indent)
#   line 5, column 12: the string "stable is never closed (`default -> ` is 11 characters)
BAD_RULES = (
    "# three mistakes, each reported with its position\n"
    'match { heade["x"] == "1" } -> "canary"\n'
    'match { header["x-ok"] == "1" } -> "canary"\n'
    '  match { header["x-env"] =~ "([" } -> "canary"\n'
    'default -> "stable\n'
)
EXPECTED = [
    (2, 9, "unknown source"),
    (4, 30, "regex"),
    (5, 12, "unterminated"),
]


def run_bad(envoys, name: str, **kw) -> str:
    cfg = envoys.render(**kw)
    rc, log = run_to_exit(cfg, envoys.run_dir, name, timeout=30)
    assert rc is not None, f"Envoy did not exit within 30 s on a bad config:\n{log[-8000:]}"
    assert rc != 0, f"Envoy exited 0 on a bad config:\n{log[-8000:]}"
    return log


def diagnostics(log: str) -> dict[tuple[int, int], str]:
    """(line, column) -> the log text since the previous position, i.e. that error's message."""
    out, prev = {}, 0
    for m in re.finditer(r"line (\d+), column (\d+)", log):
        out[(int(m.group(1)), int(m.group(2)))] = log[prev:m.end()]
        prev = m.end()
    return out


def test_bad_rules_stop_envoy_with_every_positioned_error(envoys):
    log = run_bad(envoys, "bad-rules", config={"rules": BAD_RULES})
    found = diagnostics(log)
    for line, col, words in EXPECTED:
        assert (line, col) in found, f"no `line {line}, column {col}` in the log:\n{log[-8000:]}"
        msg = found[(line, col)].lower()
        assert words in msg, f"`line {line}, column {col}` is not about {words!r}: {msg!r}"
    # Nothing is reported at a position where there is no mistake.
    assert set(found) == {(l, c) for l, c, _ in EXPECTED}, f"unexpected positions: {sorted(found)}"


def test_example_of_the_brief(envoys):
    log = run_bad(envoys, "bad-source", config={"rules": 'match { heade["x"] == "1" } -> "canary"'})
    assert "unknown source" in log and "line 1, column 9" in log, log[-8000:]


@pytest.mark.parametrize("raw, words", [
    ('{"rules": "default -> \\"stable\\"", "colour": "blue"}', "colour"),   # unknown key
    ('{"header": "x-version-route"}', "rules"),                             # rules missing
    ('{"rules": "default -> \\"stable\\"", ', "line 1, column"),            # not JSON
    ('{"rules": "default -> \\"stable\\"", "jwt": {"trust": "maybe"}}', "maybe"),
    ('{"rules": "default -> \\"stable\\"", "header": "bad header"}',
     'invalid `header` "bad header" at line 1, column 46'),
    # Headers the filter must never own, each named with where it is and why.
    ('{"rules": "default -> \\"stable\\"",\n "header": "host"}',
     '`header` "host" at line 2, column 12 cannot be the filter\'s: it carries the request\'s authority'),
    ('{"rules": "default -> \\"stable\\"", "debug_header": "set-cookie"}', '`debug_header` "set-cookie"'),
    ('{"rules": "default -> \\"stable\\"", "header": "x-forwarded-for"}', "proxies set it"),
    ('{"rules": "default -> \\"stable\\"", "jwt": {"trust": "unverified", "metadata_key": "p"}}',
     "`jwt.metadata_key` at line 1, column 83"),
    ('  ', "no configuration at line 1, column 1"),
], ids=["unknown-key", "missing-rules", "invalid-json", "bad-jwt-trust", "bad-header-name", "header-host",
        "debug-header-set-cookie", "header-x-forwarded-for", "jwt-key-wrong-trust", "empty"])
def test_bad_config_object_stops_envoy(envoys, raw, words):
    log = run_bad(envoys, "bad-config", raw_config=raw)
    assert words in log, f"{words!r} not in the log:\n{log[-8000:]}"


def test_good_config_validates(envoys, tmp_path):
    """The same harness accepts a good config (so the failures above are about the config)."""
    cfg = envoys.render()
    path = envoy_config.write(cfg, tmp_path / "good.json")
    rc, log = run_to_exit(None, tmp_path, "validate", config_path=path,
                          extra_args=("--mode", "validate"))
    assert rc == 0, log[-8000:]

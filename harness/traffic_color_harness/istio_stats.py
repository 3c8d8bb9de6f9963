"""The `stats_config` Istio's pilot-agent writes into a proxy's bootstrap, rendered here from
Istio's own template (tests/fixtures/istio/, vendored byte for byte) with the values Istio's
`pkg/bootstrap/config.go` passes, so a test can run Envoy with exactly the stats tags a mesh
gets for an `extraStatTags` list.

The template is Go `text/template`; only the part between `"stats_config":` and the next
top-level key is rendered, by a small interpreter of the actions that part uses (`if`, `range`,
`end`, variables, `js`, `toJson`). Any other action raises, so a template that changes shape
fails the test instead of being rendered wrongly.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .repo import REPO

ISTIO_VERSION = "1.30.3"
TEMPLATE = REPO / "tests" / "fixtures" / "istio" / f"envoy_bootstrap-{ISTIO_VERSION}.json"
# `git rev-parse 1.30.3:tools/packaging/common/envoy_bootstrap.json` in istio/istio.
TEMPLATE_BLOB = "f5529f8f6491792849d3de16cf23d8040c318993"

# Istio 1.30.3 pkg/bootstrap/config.go: what a proxy without stats annotations or
# proxyStatsMatcher gets (each list is the user's, if any, plus these).
REQUIRED_INCLUSION_PREFIXES = "cluster_manager,listener_manager,server,cluster.xds-grpc,wasm".split(",")
RBAC_INCLUSION_SUFFIXES = "rbac.allowed,rbac.denied,shadow_allowed,shadow_denied".split(",")
REQUIRED_INCLUSION_REGEXES = [r"vhost\..*\.route\..*"]


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def template_text() -> str:
    data = TEMPLATE.read_bytes()
    if git_blob_id(data) != TEMPLATE_BLOB:
        raise AssertionError(f"{TEMPLATE} is not Istio {ISTIO_VERSION}'s template (blob {git_blob_id(data)})")
    return data.decode("utf-8")


def gateway_values(extra_stat_tags: list[str], histogram_buckets: dict[str, list[float]] | None = None
                   ) -> dict[str, Any]:
    """The template values getStatsOptions computes for a proxy whose ProxyConfig lists
    `extra_stat_tags` (deduplicated, in order) and, optionally, the statsHistogramBuckets
    annotation (prefix -> buckets, sorted by prefix as Istio sorts them)."""
    tags = list(dict.fromkeys(t for t in extra_stat_tags if t))
    values: dict[str, Any] = {
        "extraStatTags": tags,
        "inclusionPrefix": REQUIRED_INCLUSION_PREFIXES,
        "inclusionSuffix": RBAC_INCLUSION_SUFFIXES,
        "inclusionRegexps": REQUIRED_INCLUSION_REGEXES,
    }
    if histogram_buckets:
        values["histogram_buckets"] = [{"match": {"prefix": p}, "buckets": b}
                                       for p, b in sorted(histogram_buckets.items())]
    return values


def stats_config(values: dict[str, Any], template: str | None = None) -> dict[str, Any]:
    """The rendered `stats_config` object."""
    text = template if template is not None else template_text()
    start = text.index('"stats_config":')
    end = text.index('\n  "admin":', start)
    fragment = text[start:end].rstrip().rstrip(",")
    rendered = render(fragment, values)
    return json.loads("{" + rendered + "}")["stats_config"]


# ------------------------------------------------------------------ a text/template subset

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def _parse(src: str) -> list:
    """Nodes: ("text", s) | ("out", expr) | ("if", expr, body) | ("range", var, expr, body)."""
    root: list = []
    stack: list[list] = [root]
    pos = 0
    trim_next = False
    for m in ACTION.finditer(src):
        text = src[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            stack[-1].append(("text", text))
        trim_next = bool(m.group(3))
        pos = m.end()
        action = m.group(2)
        if action.startswith("if "):
            node = ("if", action[3:].strip(), [])
            stack[-1].append(node)
            stack.append(node[2])
        elif r := re.fullmatch(r"range\s+\$\w+\s*,\s*(\$\w+)\s*:=\s*(\.\w+)", action):
            node = ("range", r.group(1), r.group(2), [])
            stack[-1].append(node)
            stack.append(node[3])
        elif action == "end":
            if len(stack) == 1:
                raise ValueError("template: `end` without a block")
            stack.pop()
        else:
            stack[-1].append(("out", action))
    text = src[pos:]
    if trim_next:
        text = text.lstrip()
    if text:
        root.append(("text", text))
    if len(stack) != 1:
        raise ValueError("template: unclosed block")
    return root


def _js(s: str) -> str:
    """Go's template `js` escaping (text/template JSEscapeString) for the characters it changes."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch in "'\"":
            out.append("\\" + ch)
        elif ch in "<>&=":
            out.append("\\u%04X" % ord(ch))
        elif ord(ch) < 0x20:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _value(expr: str, values: dict[str, Any], scope: dict[str, Any]) -> Any:
    if expr.startswith("$"):
        return scope[expr]
    if re.fullmatch(r"\.\w+", expr):
        return values.get(expr[1:])
    raise ValueError(f"template: unsupported expression {expr!r}")


def _render(nodes: list, values: dict[str, Any], scope: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "if":
            if _value(node[1], values, scope):
                _render(node[2], values, scope, out)
        elif kind == "range":
            for item in _value(node[2], values, scope) or []:
                _render(node[3], values, {**scope, node[1]: item}, out)
        else:
            expr = node[1]
            if expr.startswith("js "):
                out.append(_js(str(_value(expr[3:].strip(), values, scope))))
            elif expr.startswith("toJson "):
                out.append(json.dumps(_value(expr[7:].strip(), values, scope)))
            else:
                out.append(str(_value(expr, values, scope)))


def render(src: str, values: dict[str, Any]) -> str:
    out: list[str] = []
    _render(_parse(src), values, {}, out)
    return "".join(out)

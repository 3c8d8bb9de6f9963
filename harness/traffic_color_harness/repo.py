"""Where things are in the checkout this package was installed from.

The harness drives files that live beside it (envoy/envoy.yaml, envoy/upstream.py, istio/,
Cargo.toml), so it is installed editable (`pip install -e harness`, what `make venv` does) and
finds the checkout from its own location.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_DIR = REPO / "envoy"
ENVOY_YAML = ENVOY_DIR / "envoy.yaml"
UPSTREAM_SCRIPT = ENVOY_DIR / "upstream.py"
ISTIO_DIR = REPO / "istio"
CARGO_TOML = REPO / "Cargo.toml"
# The routing table the native and the end-to-end tests both run.
ROUTING_TABLE = REPO / "tests" / "fixtures" / "routing.json"

if not ENVOY_YAML.is_file():
    raise ImportError(
        f"traffic_color_harness is not inside a traffic-color checkout ({REPO}): install it "
        "editable from the checkout, `pip install -e harness` (what `make venv` does)")


def crate_version(cargo_toml: Path = CARGO_TOML) -> str:
    """The [package] version of Cargo.toml: the image tag, the version a release carries."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # older Pythons: the [package] version line is enough
        text = Path(cargo_toml).read_text(encoding="utf-8")
        m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
        if not m:
            raise ValueError(f"{cargo_toml}: no [package] version") from None
        return m.group(1)
    with open(cargo_toml, "rb") as f:
        return tomllib.load(f)["package"]["version"]


def routing_table() -> dict:
    """The routing table: the filter config and the cases (request -> color, deciding rule)."""
    return json.loads(ROUTING_TABLE.read_text(encoding="utf-8"))

"""The filter's metrics as Prometheus reads them, and its config hash computed independently.

* `scrape`: Envoy's /stats/prometheus parsed into samples keyed by name and label set (label
  order does not matter), histograms included;
* `config_hash`: the hash `traffic-color check` prints and the filter exposes as
  `traffic_color_config_info{hash}`, written from its definition (README, "Which configuration
  is each proxy running?") and the reference MurmurHash3, not from the filter's code, so the
  tests check one against the other.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any, Callable

from . import admin

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Key = tuple[str, frozenset]


class Samples(dict):
    """{(name, frozenset of (label, value)): value} with a readable accessor."""

    # `metric` is positional-only: `name` is one of the filter's labels.
    def get_sample(self, metric: str, /, **labels: str) -> float | None:
        return self.get((metric, frozenset(labels.items())))

    def value(self, metric: str, /, **labels: str) -> float:
        """The sample, 0 when Envoy has none (a counter never defined reads as 0 in a sum)."""
        v = self.get_sample(metric, **labels)
        return 0.0 if v is None else v

    def series(self, metric: str) -> list[dict[str, str]]:
        """Label sets of every sample of `metric`."""
        return [dict(k[1]) for k in self if k[0] == metric]

    def buckets(self, metric: str, /, **labels: str) -> dict[float, float]:
        """A histogram's cumulative buckets: le -> count (le = inf for +Inf)."""
        out = {}
        for (n, ls), v in self.items():
            d = dict(ls)
            le = d.pop("le", None)
            if n == f"{metric}_bucket" and le is not None and d == labels:
                out[float("inf") if le == "+Inf" else float(le)] = v
        return dict(sorted(out.items()))


def parse(text: str, prefix: str = "traffic_color_") -> Samples:
    out = Samples()
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or not m.group(1).startswith(prefix):
            continue
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def scrape(admin_port: int) -> Samples:
    status, body = admin.get(admin_port, "/stats/prometheus", timeout=5.0)
    if status != 200:
        raise AssertionError(f"/stats/prometheus answered {status}")
    return parse(body.decode())


def scrape_until(admin_port: int, ready: Callable[[Samples], bool], timeout: float = 20.0) -> Samples:
    """Scrape until `ready` holds: histograms reach /stats/prometheus only at a stats flush
    (stats_flush_interval, 5 s by default). The last scrape is returned either way, so the
    caller's assertions say what was missing."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(admin_port)
        if ready(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.2)


# ------------------------------------------------------------------------------ config hash


def murmur3_x64_128(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x64_128 from the reference algorithm (SMHasher); h2 << 64 | h1."""
    m = (1 << 64) - 1
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (64 - r))) & m

    def fmix(k: int) -> int:
        k ^= k >> 33
        k = (k * 0xFF51AFD7ED558CCD) & m
        k ^= k >> 33
        k = (k * 0xC4CEB9FE1A85EC53) & m
        k ^= k >> 33
        return k

    def mix1(k1: int) -> int:
        return (rotl((k1 * c1) & m, 31) * c2) & m

    def mix2(k2: int) -> int:
        return (rotl((k2 * c2) & m, 33) * c1) & m

    h1 = h2 = seed
    n = len(data)
    nblocks = n // 16
    for i in range(nblocks):
        k1 = int.from_bytes(data[16 * i: 16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8: 16 * i + 16], "little")
        h1 ^= mix1(k1)
        h1 = (((rotl(h1, 27) + h2) & m) * 5 + 0x52DCE729) & m
        h2 ^= mix2(k2)
        h2 = (((rotl(h2, 31) + h1) & m) * 5 + 0x38495AB5) & m
    tail = data[16 * nblocks:]
    if len(tail) > 8:
        h2 ^= mix2(int.from_bytes(tail[8:], "little"))
    if tail:
        h1 ^= mix1(int.from_bytes(tail[:8], "little"))
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & m
    h2 = (h2 + h1) & m
    h1, h2 = fmix(h1), fmix(h2)
    h1 = (h1 + h2) & m
    h2 = (h2 + h1) & m
    return (h2 << 64) | h1


def _number(d: Decimal) -> str:
    """The exact decimal, printed as JavaScript prints numbers (without rounding)."""
    sign, digits, exp = d.as_tuple()
    ds = "".join(map(str, digits)).lstrip("0")
    if not ds:
        return "0"
    trail = len(ds) - len(ds.rstrip("0"))
    ds = ds.rstrip("0")
    exp += trail
    n, point = len(ds), len(ds) + exp
    s = "-" if sign else ""
    if exp >= 0 and point <= 21:
        return s + ds + "0" * exp
    if exp < 0 and point > 0:
        return s + ds[:point] + "." + ds[point:]
    if exp < 0 and point > -6:
        return s + "0." + "0" * -point + ds
    e = point - 1
    return s + ds[0] + ("." + ds[1:] if n > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))


def _canonical(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _canonical(v[k])
                              for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_canonical(x) for x in v) + "]"
    if isinstance(v, Decimal):
        return _number(v)
    return json.dumps(v, ensure_ascii=False)


def canonical_json(text: str) -> str:
    """Keys sorted by code point, no whitespace, strings as JSON escapes them minimally, numbers
    as exact decimals."""
    return _canonical(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def config_hash(config_json: str) -> str:
    return format(murmur3_x64_128(canonical_json(config_json).encode("utf-8")), "032x")

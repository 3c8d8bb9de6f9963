"""A real Prometheus on loopback, and promtool, for the rules, the release analyses and the
dashboard: Debian's `prometheus` package (`make prometheus-tools` installs it).

The server is a Process (its own process group, its own log); it scrapes the given targets
and evaluates the given rule files at short intervals so a test sees recorded series and
alerts within seconds. Every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML

from .process import HarnessError, Process, poll
from .repo import REPO

RULES = REPO / "prometheus" / "traffic-color.rules.yaml"
RULES_TESTS = REPO / "tests" / "prometheus" / "traffic-color.rules.test.yaml"
DASHBOARD = REPO / "prometheus" / "grafana-dashboard.json"


def binary(name: str) -> str:
    """`prometheus` or `promtool` on PATH; a clear failure when missing (never a skip)."""
    found = shutil.which(name)
    if found is None:
        raise HarnessError(f"{name} is not installed: run `make prometheus-tools` "
                           "(apt-get install prometheus)")
    return found


def promtool(*args: str | Path, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([binary("promtool"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def load_rules(path: Path = RULES) -> dict:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def free_port() -> int:
    """A port nothing listens on now (Prometheus cannot report a port 0 it bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A running Prometheus: `query`, `alerts`, `rules`, `targets` over its HTTP API."""

    def __init__(self, proc: Process, port: int):
        self.proc = proc
        self.port = port

    def log(self, tail_bytes: int | None = None) -> str:
        return self.proc.log(tail_bytes)

    def stop(self) -> None:
        self.proc.stop()

    def get(self, path: str, params: dict[str, str] | list[tuple[str, str]] | None = None,
            timeout: float = 10.0) -> Any:
        """GET an API path; the `data` of a success, else HarnessError with Prometheus' error."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path + query)
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        try:
            doc = json.loads(body)
        except ValueError:
            raise HarnessError(f"GET {path}: HTTP {r.status}, not JSON: {body[:300]!r}") from None
        if doc.get("status") != "success":
            raise HarnessError(f"GET {path}{query}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query: the result vector, `[{"metric": {...}, "value": [t, "v"]}, ...]`."""
        data = self.get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] != "vector":
            raise HarnessError(f"{expr}: a {data['resultType']}, not a vector")
        return data["result"]

    def values(self, expr: str, label: str) -> dict[str, float]:
        """The result of `expr` as {value of `label`: number} (NaN stays NaN)."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def alerts(self) -> list[dict]:
        return self.get("/api/v1/alerts")["alerts"]

    def rules(self) -> list[dict]:
        return [rule for g in self.get("/api/v1/rules")["groups"] for rule in g["rules"]]

    def targets(self) -> list[dict]:
        return self.get("/api/v1/targets")["activeTargets"]

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        return self.get(f"/api/v1/label/{label}/values", [("match[]", match)] if match else None)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Polls `check` until it returns a true value (returned); HarnessError after `timeout`
        with the last value and the tail of Prometheus' log."""
        deadline = time.monotonic() + timeout
        last: Any = None
        for _ in poll(timeout + 5, f"waiting for {what}", self.proc, step=0.25):
            try:
                last = check()
            except HarnessError as e:
                last = e
            if last and not isinstance(last, HarnessError):
                return last
            if time.monotonic() > deadline:
                raise HarnessError(f"{what}: not within {timeout:.0f}s (last: {last!r})\n"
                                   f"--- prometheus log ---\n{self.log(4000)}")


def config(jobs: dict[str, list[str]], rule_files: list[Path], *, interval: str = "1s",
           metrics_path: str = "/stats/prometheus") -> dict:
    """prometheus.yml: one static scrape job per entry (`job -> ["127.0.0.1:PORT", ...]`),
    every target scraped and every rule evaluated each `interval`."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": job, "metrics_path": metrics_path,
                            "static_configs": [{"targets": targets}]}
                           for job, targets in jobs.items()],
    }


def start(run_dir: Path, jobs: dict[str, list[str]], rule_files: list[Path], *,
          interval: str = "1s", timeout: float = 30.0, name: str = "prometheus") -> Prometheus:
    """Prometheus on 127.0.0.1 (a free port), data in run_dir; returns once /-/ready."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / f"{name}.yml"
    cfg_path.write_text(json.dumps(config(jobs, rule_files, interval=interval), indent=2) + "\n",
                        encoding="utf-8")
    check = promtool("check", "config", cfg_path)
    if check.returncode != 0:
        raise HarnessError(f"promtool check config {cfg_path}:\n{check.stdout}{check.stderr}")
    last_error = ""
    for _ in range(3):  # the port was free a moment ago; another process may take it first
        port = free_port()
        argv = [binary("prometheus"), f"--config.file={cfg_path}",
                f"--storage.tsdb.path={run_dir / (name + '-data')}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        proc = Process(name, argv, run_dir / f"{name}.log")
        try:
            for _ in poll(timeout, f"starting {name}", proc, step=0.1):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/-/ready")
                    if conn.getresponse().status == 200:
                        return Prometheus(proc, port)
                except OSError:
                    pass
                finally:
                    conn.close()
        except HarnessError as e:
            proc.stop()
            last_error = str(e)
            if "address already in use" not in last_error:
                raise
        except BaseException:
            proc.stop()
            raise
    raise HarnessError(last_error)

"""The cockpit in a real browser: Debian's chromium (headless, through chromedriver) drives the
page `traffic-color cockpit` serves, against a real Envoy whose traffic-color config arrives by
ECDS from a file (harness/traffic_color_harness/cockpit.py) and two upstreams, stable and canary.
Everything binds 127.0.0.1; every process is stopped at the end.

Proven here, each through the page as an operator would use it:

* Watch: the per-color totals on the page equal exactly what this test sent; the page's req/s
  agrees with the rate the test sent at (RPS_TOLERANCE); the rule hits move with the traffic.
* Edit: a bad rule typed on line 2 shows its diagnostic at 2:9, with the caret text, the line
  highlighted, and Push disabled; discarding it clears them.
* Explain: a request whose x-request-id this file's own split() (README's definition) puts under
  30 is shown canary by rule 1 under the edited rules and stable by default under the ones in force.
* Steer: the knob's slider moved from 0 to 30 with the keyboard rewrites the rule, the preview
  shows requests moving stable → canary, and Push makes the share measured by this test's own
  client (which upstream answered) 30% ± 4σ of the binomial (SHARE_SIGMAS), with not one failed
  request while load runs throughout; the page's canary share follows (PAGE_SHARE_TOLERANCE).
  Rollback brings the share back to exactly 0 (the rule selects nobody). The audit table on the
  page shows the push and the rollback, accepted, with their hashes and operator. "Everyone to
  stable", after its confirmation, sends even x-canary requests to stable and is logged too.
* The token: the cockpit runs with one; the page asks for it on load; given a wrong one, the first
  POST is refused (401, nothing written) and the page asks again; with the right one, the push,
  the rollback and the stop all go through without asking again.

COCKPIT_SCREENSHOTS=DIR saves a PNG of each step there (docs/cockpit/ holds the committed ones).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import socket
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from traffic_color_harness import cockpit as cockpit_harness
from traffic_color_harness.bucket import murmur3_x86_32
from traffic_color_harness.load import Load, Outcome
from traffic_color_harness.repo import ISTIO_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "e2e-cockpit-token"
OPERATOR = "e2e"

# Rule 1 is the knob: split() keyed by the x-request-id Envoy generates for each request, so every
# request is an independent draw. At 0 it selects nobody. Rule 2 lets the test send canary traffic
# on purpose for the Watch check.
RULES = ('match { split("cockpit-e2e") < 0 } -> "canary"\n'
         'match { header["x-canary"] == "true" } -> "canary"\n'
         'default -> "stable"\n')
TARGET_SHARE = 30

# Watch: requests sent at a steady pace, per color.
WATCH_SECONDS = 8.0
WATCH_RPS = {"stable": 24.0, "canary": 8.0}
# The page's req/s is a difference of counters over about a second, read on the server's clock:
# the median of its values while the pace is steady must be within 10% of the pace measured here.
RPS_TOLERANCE = 0.10

# Steer: requests counted after a push is in force, and how far the share may be from the target.
SHARE_REQUESTS = 2000
SHARE_SIGMAS = 4.0  # P(|z| > 4) ≈ 6e-5: a failure means the share is wrong, not unlucky
# Requests started this long after the push answered are counted: Envoy has confirmed the hash by
# then (the push waits for it), this allows for every worker to have swapped configs.
IN_FORCE_GRACE = 2.0
# The page's share is per second (about 120 requests): the median of 5 readings, ±10 points.
PAGE_SHARE_TOLERANCE = 0.10
LOAD_THREADS = 4
LOAD_PACE = 30.0  # requests per second per thread


def steer_load(port: int) -> Load:
    """GET / without any color hint, LOAD_PACE per thread: half the threads on keep-alive
    connections (which must pick up a pushed config too), half on new ones."""
    return Load(port, keep_alive=[i % 2 == 0 for i in range(LOAD_THREADS)], pace=LOAD_PACE)


def answered(load: Load, since: float = 0.0) -> list[Outcome]:
    """The requests started at or after `since` that a 200 from stable or canary answered
    (x-served-by); any other answer is a failure (see failed())."""
    return [o for o in load.since(since) if o.status == 200 and o.upstream in ("stable", "canary")]


def failed(load: Load) -> list[tuple[float, str]]:
    """Connection errors, statuses other than 200 and wrong upstream names, with their start."""
    bad = [(o.started, f"status {o.status}, served by {o.upstream}") for o in load.outcomes
           if o.status != 200 or o.upstream not in ("stable", "canary")]
    return sorted(bad + [(f.started, f.error) for f in load.failures])


def split_of(key: str, group: str) -> float:
    """`split(key, group)` as README.md defines it, computed here, not by the core."""
    return murmur3_x86_32(f"{group}:{key}".encode()) % 1_000_000 / 10_000


def wait_for_requests(load: Load, since: float, n: int, timeout: float) -> list[Outcome]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = answered(load, since)
        if len(got) >= n:
            return got[:n]
        time.sleep(0.2)
    got = answered(load, since)
    raise AssertionError(f"only {len(got)} of {n} requests answered within {timeout:.0f}s "
                         f"({len(failed(load))} failures)")


def canary_share(results: list[Outcome]) -> float:
    return sum(1 for o in results if o.upstream == "canary") / len(results)


def send_paced(port: int, seconds: float, rps: dict[str, float]) -> tuple[dict[str, int], float]:
    """Send stable (plain) and canary (x-canary: true) requests at the given paces; return how
    many of each were answered by the expected upstream and the seconds it took."""
    sent = {c: 0 for c in rps}
    schedule = sorted((i / r, c) for c, r in rps.items() for i in range(int(seconds * r)))
    t0 = time.monotonic()
    for at, color in schedule:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/", headers={"x-canary": "true"} if color == "canary" else {})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, f"{color} request answered {r.status}"
            assert r.getheader("x-served-by") == color, \
                f"a {color} request was served by {r.getheader('x-served-by')}"
            sent[color] += 1
        finally:
            conn.close()
    return sent, time.monotonic() - t0


class Page:
    """The cockpit page in headless chromium, with the steps' screenshots."""

    def __init__(self, url: str, shots: Path | None):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1440,900", "--no-first-run", "--disable-extensions",
                  "--disable-background-networking", "--disable-sync", "--disable-default-apps"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        self.url = url
        self.shots = shots

    def quit(self) -> None:
        self.driver.quit()

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def until(self, what: str, check, timeout: float = 20.0):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(lambda d: check())
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {what}") from None

    def colors(self) -> dict[str, dict[str, str]]:
        """The Watch table: color -> {rps, share, errors, p95, total} as the page shows them."""
        return self.driver.execute_script("""
            const out = {};
            for (const tr of document.querySelectorAll('#colors-table tbody tr')) {
              const v = {};
              for (const k of ['rps', 'share', 'errors', 'p95', 'total'])
                v[k] = tr.querySelector('td.' + k).textContent;
              out[tr.dataset.color] = v;
            }
            return out;""")

    def totals(self) -> dict[str, int]:
        return {c: int(v["total"]) for c, v in self.colors().items()}

    def shot(self, name: str) -> None:
        if self.shots is None:
            return
        # The whole page: a viewport as tall as the document for this one picture.
        h = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 1440, "height": h, "deviceScaleFactor": 1, "mobile": False})
        try:
            time.sleep(0.3)
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def cockpit(tmp_path, wasm, cli, upstreams):
    """Envoy on envoy-cockpit.yaml with RULES by ECDS, and `traffic-color cockpit` in local
    mode with a token, all on loopback (the upstreams are the session's stable and canary)."""
    env = server = None
    try:
        env = cockpit_harness.CockpitEnvoy(tmp_path, wasm, upstreams, config={"rules": RULES})
        server = cockpit_harness.CockpitServer(
            cli, tmp_path, ["--token", TOKEN, "--envoy-admin", env.admin_url,
                            "--ecds", str(env.ecds_path), "--audit-log", str(tmp_path / "audit.jsonl"),
                            "--operator", OPERATOR])
        status, page = server.request("GET", "/")
        assert status == 200 and b"app.js" in page, \
            f"the cockpit serves no page (build the bundle with `make cockpit-web`): {page[:300]!r}"
        yield env, server.origin, server
    finally:
        if server is not None:
            server.stop()
        if env is not None:
            env.stop()


def api(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.loads(r.read())


def test_cockpit_in_a_browser(cockpit, request):
    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), \
        f"{CHROMIUM} and {CHROMEDRIVER} are needed: make browser-tools"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    env, url, server = cockpit
    shots = None
    if os.environ.get("COCKPIT_SCREENSHOTS"):
        shots = Path(os.environ["COCKPIT_SCREENSHOTS"]).resolve()
        shots.mkdir(parents=True, exist_ok=True)
    page = Page(url, shots)
    load = None
    try:
        initial = api(url, "/api/state")
        assert initial["token_required"] is True and initial["mode"] == "local"

        # --- the token: asked at once; a wrong one is asked again at the first POST ---
        page.driver.get(url + "/")
        page.until("the token dialog", lambda: page.find("#token-dialog").get_attribute("open") is not None)
        page.find("#token-input").send_keys("wrong-" + TOKEN)
        page.find("#token-save").click()
        page.until("the page ready", lambda: page.driver.execute_script("return document.body.dataset.ready") == "1")

        # --- Watch: the page's numbers are the traffic sent here ---
        page.until("a first stats event", lambda: page.text("#updated-at") != "never")
        assert page.text("#config-hash") == initial["config"]["hash"]
        # This config leaves outcome metrics off: the page says why errors and p95 are empty.
        assert page.find("#outcomes-off").is_displayed()
        time.sleep(1.5)  # counters settled: nothing else talks to this Envoy's listener
        before = {c: page.totals().get(c, 0) for c in ("stable", "canary")}
        rps_seen: dict[str, list[float]] = {"stable": [], "canary": []}
        sender = threading.Thread(target=lambda: sent_box.append(send_paced(env.port, WATCH_SECONDS, WATCH_RPS)))
        sent_box: list = []
        sender.start()
        started = time.monotonic()
        shot_taken = False
        while sender.is_alive():
            time.sleep(0.5)
            if not shot_taken and time.monotonic() - started > WATCH_SECONDS - 2.5:
                page.shot("1-watch")  # while the traffic flows
                shot_taken = True
            # Past the ramp (the first 2.5 s) and before the end: the pace is steady there.
            if 2.5 < time.monotonic() - started < WATCH_SECONDS - 0.5:
                for c, v in page.colors().items():
                    if c in rps_seen and v["rps"] != "–":
                        rps_seen[c].append(float(v["rps"]))
        sender.join()
        assert sent_box, "the paced sender failed (see the traceback above)"
        sent, took = sent_box[0]
        want = {c: before[c] + sent[c] for c in sent}
        page.until(f"the page's totals to reach {want}",
                   lambda: {c: page.totals().get(c, 0) for c in want} == want, timeout=15)
        time.sleep(2.5)  # and stay there: the page must not count more than was sent
        assert {c: page.totals().get(c, 0) for c in want} == want
        for c, seen in rps_seen.items():
            pace = sent[c] / took
            assert len(seen) >= 5, f"too few req/s readings for {c}: {seen}"
            med = statistics.median(seen)
            assert abs(med - pace) <= RPS_TOLERANCE * pace, \
                f"{c}: page req/s median {med:.1f} vs sent {pace:.1f}/s (readings {seen})"
        hits = page.driver.execute_script("""
            return Object.fromEntries([...document.querySelectorAll('#rules-table tbody tr')]
              .map(tr => [tr.dataset.rule, +tr.querySelector('td.total').textContent]));""")
        assert hits.get("2", 0) >= sent["canary"] and hits.get("default", 0) >= sent["stable"], hits
        assert hits.get("1", 0) == 0, f"rule 1 selects nobody yet: {hits}"

        # --- Edit: a bad rule on line 2 ---
        editor = page.find("#editor")
        assert editor.get_attribute("value") == initial["config"]["rules"]
        editor.click()
        editor.send_keys(Keys.CONTROL, Keys.HOME)
        editor.send_keys(Keys.DOWN)
        editor.send_keys('match { heade["x"] == "1" } -> "canary"' + Keys.ENTER)
        page.until("a diagnostic", lambda: len(page.driver.find_elements(By.CSS_SELECTOR, "#diagnostics li")) > 0)
        diag = page.find("#diagnostics li")
        assert (diag.get_attribute("data-where"), diag.get_attribute("data-line"),
                diag.get_attribute("data-column")) == ("rules", "2", "9"), diag.text
        caret = diag.find_element(By.CSS_SELECTOR, ".caret").text
        assert "heade" in caret and "^" in caret and "line 2, column 9" in caret, caret
        assert page.find("#push").get_attribute("disabled") is not None, "Push must be disabled"
        assert "bad" in page.find("#gutter div:nth-child(2)").get_attribute("class")
        assert "bad" in page.find("#backdrop div:nth-child(2)").get_attribute("class")
        page.shot("2-diagnostic")
        page.find("#revert-editor").click()
        page.until("the diagnostics cleared", lambda: not page.driver.find_elements(By.CSS_SELECTOR, "#diagnostics li"))
        assert page.find("#push").get_attribute("disabled") is not None, "nothing to push: disabled"

        # --- Steer: load from now on; the slider from 0 to 30 ---
        load = steer_load(env.port).start()
        t = time.monotonic()
        base_results = wait_for_requests(load, t, 300, timeout=30)
        assert canary_share(base_results) == 0.0, "rule 1 at 0 must send nobody to the canary"

        slider = page.find("#knob-0")
        assert float(slider.get_attribute("value")) == 0
        slider.send_keys(Keys.HOME)
        for _ in range(TARGET_SHARE):
            slider.send_keys(Keys.ARROW_RIGHT)
        page.until("the knob at 30%", lambda: page.text("#knob-value-0") == f"{TARGET_SHARE}%")
        page.until("the rule rewritten", lambda: f"< {TARGET_SHARE}" in page.find("#editor").get_attribute("value"))
        edited = page.find("#editor").get_attribute("value")
        assert edited.splitlines()[1:] == RULES.splitlines()[1:], "only rule 1 may change"
        page.until("Push enabled", lambda: page.find("#push").get_attribute("disabled") is None)
        page.until("the preview of what changes",
                   lambda: page.driver.execute_script("""
                     return [...document.querySelectorAll('#changes-moves tbody tr')]
                       .some(tr => tr.cells[0].textContent === 'stable' && tr.cells[1].textContent === 'canary'
                                   && +tr.cells[2].textContent > 0);"""))
        # Explain, with the compiler in the page: a request id that this file's own split()
        # puts under 30 is canary by rule 1 under the edited rules, stable by default now.
        rid = next(f"req-{i}" for i in range(1000) if split_of(f"req-{i}", "cockpit-e2e") < TARGET_SHARE)
        headers = page.find("#req-headers")
        headers.clear()
        headers.send_keys(f"x-request-id: {rid}")
        page.until("the explanation of that request", lambda: "decided by rule 1" in page.text("#explain-color"))
        said = page.text("#explain-color")
        assert said.startswith("color canary") and "in force now: stable, default" in said, said
        page.shot("3-knob")

        page.find("#push").click()
        # The server refuses the wrong token (401): nothing is written, and the page asks again.
        page.until("the token asked again", lambda: page.find("#token-dialog").get_attribute("open") is not None)
        assert api(url, "/api/state")["config"]["hash"] == initial["config"]["hash"]
        page.find("#token-input").send_keys(TOKEN)
        page.find("#token-save").click()
        page.until("the push accepted", lambda: page.text("#push-result").startswith("push: accepted"), timeout=40)
        assert page.driver.execute_script("return Object.values(sessionStorage)") == [TOKEN]
        pushed_at = time.monotonic()
        pushed = api(url, "/api/state")
        assert pushed["config"]["hash"] != initial["config"]["hash"]
        assert pushed["config"]["rules"] == edited
        assert pushed["previous"]["hash"] == initial["config"]["hash"]
        page.until("the page showing the new hash", lambda: page.text("#config-hash") == pushed["config"]["hash"])

        counted = wait_for_requests(load, pushed_at + IN_FORCE_GRACE, SHARE_REQUESTS, timeout=90)
        share = canary_share(counted)
        p = TARGET_SHARE / 100
        sigma = math.sqrt(p * (1 - p) / len(counted))
        assert abs(share - p) <= SHARE_SIGMAS * sigma, \
            f"canary share {share:.3%} over {len(counted)} requests; want {p:.0%} ± {SHARE_SIGMAS * sigma:.2%}"
        page_shares = []
        for _ in range(5):
            page_shares.append(float(page.colors()["canary"]["share"].rstrip("%")) / 100)
            time.sleep(1.0)
        assert abs(statistics.median(page_shares) - p) <= PAGE_SHARE_TOLERANCE, \
            f"the page's canary share {page_shares} vs {p:.0%}"
        page.shot("4-pushed")
        measured = {"pushed": (share, len(counted), sigma)}

        # --- Rollback: back to the previous config, the share back to 0 ---
        page.find("#rollback").click()
        page.until("the rollback accepted", lambda: page.text("#push-result").startswith("rollback: accepted"), timeout=40)
        rolled_at = time.monotonic()
        rolled = api(url, "/api/state")
        assert rolled["config"]["hash"] == initial["config"]["hash"]
        assert rolled["config"]["rules"] == initial["config"]["rules"]
        page.until("the editor back on the previous rules",
                   lambda: page.find("#editor").get_attribute("value") == initial["config"]["rules"])
        after = wait_for_requests(load, rolled_at + IN_FORCE_GRACE, 600, timeout=60)
        assert canary_share(after) == 0.0, f"{canary_share(after):.2%} canary after the rollback"
        measured["rolled back"] = (0.0, len(after), 0.0)

        load.stop()
        failures = failed(load)
        assert not failures, f"{len(failures)} failed requests, first: {failures[:5]}"
        # All the load's answers are on the page too, per color, exactly.
        served = {c: sum(1 for o in answered(load) if o.upstream == c) for c in ("stable", "canary")}
        want = {c: want[c] + served[c] for c in want}
        page.until(f"the page's totals to reach {want} after the load",
                   lambda: {c: page.totals().get(c, 0) for c in want} == want, timeout=15)

        # --- the audit log on the page: push then rollback, newest first ---
        page.until("two audit rows", lambda: len(page.driver.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")) >= 2)
        rows = page.driver.execute_script("""
            return [...document.querySelectorAll('#audit-table tbody tr')].map(tr => ({
              action: tr.dataset.action, outcome: tr.dataset.outcome,
              operator: tr.querySelector('.operator').textContent,
              hashes: tr.querySelector('.hashes').textContent}));""")
        short = lambda h: h[:12]  # noqa: E731
        assert [(r["action"], r["outcome"]) for r in rows[:2]] == [("rollback", "accepted"), ("push", "accepted")], rows
        assert rows[1]["hashes"] == f"{short(initial['config']['hash'])} → {short(pushed['config']['hash'])}"
        assert rows[0]["hashes"] == f"{short(pushed['config']['hash'])} → {short(initial['config']['hash'])}"
        assert all(r["operator"] == OPERATOR for r in rows[:2]), rows
        audit = api(url, "/api/audit")
        assert [(e["action"], e["outcome"]) for e in audit[-2:]] == [("push", "accepted"), ("rollback", "accepted")]
        page.driver.execute_script("document.querySelector('#audit-table tbody tr:nth-child(2) details').open = true")
        page.shot("5-rolled-back")

        # --- Everyone to stable, confirmed in the dialog ---
        page.find("#stop").click()
        page.until("the confirmation", lambda: page.find("#stop-dialog").get_attribute("open") is not None)
        page.find("#stop-confirm").click()
        page.until("the stop accepted", lambda: page.text("#push-result").startswith("everyone to stable: accepted"), timeout=40)
        stopped = api(url, "/api/state")
        assert stopped["config"]["rules"].strip() == 'default -> "stable"', stopped["config"]["rules"]
        page.until("the editor on the stop rules", lambda: page.find("#editor").get_attribute("value") == stopped["config"]["rules"])
        for _ in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=5)
            try:
                conn.request("GET", "/", headers={"x-canary": "true"})
                r = conn.getresponse()
                r.read()
                assert (r.status, r.getheader("x-served-by")) == (200, "stable")
            finally:
                conn.close()
        page.until("three audit rows", lambda: len(page.driver.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")) >= 3)
        top = page.find("#audit-table tbody tr")
        assert (top.get_attribute("data-action"), top.get_attribute("data-outcome")) == ("stop", "accepted")
        page.driver.execute_script("document.querySelector('#audit-table tbody tr:nth-child(3) details').open = true")
        page.shot("6-audit")

        errors = page.console_errors()
        refused = [e for e in errors if "/api/push - " in e and "status of 401" in e]
        assert len(refused) == 1, f"the wrong token's push is the one 401: {errors}"
        assert [e for e in errors if e not in refused] == [], f"browser console errors: {errors}"
        request.node.user_properties.append(("measured", measured))
        print(f"\nwatch: sent {sent} in {took:.1f}s; rps readings {rps_seen}")
        for k, (s, n, sg) in measured.items():
            print(f"{k}: canary share {s:.2%} over {n} requests (σ {sg:.2%})")
        print(f"load: {sum(served.values())} requests, {len(failures)} failed")
    finally:
        if load is not None:
            load.stop()
        page.quit()


def test_mesh_mode_in_a_browser(cli, tmp_path):
    """Mesh mode with a Prometheus that does not answer: the page says the source is stale and
    since when, says it is read-only, and a push shows the rendered WasmPlugin manifest with a
    Copy button, saying nothing was applied; the manifest file is not written."""
    os.environ["SE_OFFLINE"] = "true"
    manifest = tmp_path / "wasmplugin.yaml"
    original = (ISTIO_DIR / "wasmplugin.yaml").read_text()
    manifest.write_text(original)
    with socket.socket() as s:  # a loopback port nothing listens on: Prometheus is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    server = cockpit_harness.CockpitServer(
        cli, tmp_path, ["--prometheus", f"http://127.0.0.1:{dead}", "--wasmplugin", str(manifest),
                        "--audit-log", str(tmp_path / "audit.jsonl"), "--operator", OPERATOR])
    page = Page(server.origin, None)
    try:
        page.driver.get(server.origin + "/")
        page.until("the page ready", lambda: page.driver.execute_script("return document.body.dataset.ready") == "1")
        assert page.text("#mode") == "mesh"
        assert not page.find("#outcomes-off").is_displayed()  # the gateway plugin counts outcomes
        assert page.find("#mesh-banner").is_displayed()
        page.until("the stale banner", lambda: page.find("#stale-banner").is_displayed(), timeout=20)
        banner = page.text("#stale-banner")
        assert banner.startswith("Stale: no good read from the source yet: ") and "127.0.0.1" in banner or "refused" in banner, banner

        slider = page.find("#knob-0")  # istio/wasmplugin.yaml's bucket(..) <= 5
        slider.send_keys(Keys.ARROW_RIGHT)
        page.until("Push enabled", lambda: page.find("#push").get_attribute("disabled") is None)
        edited = page.find("#editor").get_attribute("value")
        page.find("#push").click()
        page.until("the manifest", lambda: page.find("#manifest-panel").is_displayed(), timeout=20)
        assert "nothing applied to the cluster" in page.text("#push-result")
        assert "Nothing was applied to the cluster." in page.text("#manifest-panel")
        shown = page.text("#manifest")
        assert "kind: WasmPlugin" in shown and "<= 6" in shown, shown[:500]
        assert page.find("#copy-manifest").is_displayed()
        assert manifest.read_text() == original, "mesh mode must never write the manifest"
        assert page.find("#editor").get_attribute("value") == edited
        page.until("the rendered entry in the audit table",
                   lambda: page.driver.execute_script(
                       "const tr = document.querySelector('#audit-table tbody tr');"
                       "return tr && tr.dataset.outcome;") == "rendered")
        if os.environ.get("COCKPIT_SCREENSHOTS"):
            page.shots = Path(os.environ["COCKPIT_SCREENSHOTS"]).resolve()
            page.shot("7-mesh")
        errors = page.console_errors()
        assert not errors, f"browser console errors: {errors}"
    finally:
        page.quit()
        server.stop()

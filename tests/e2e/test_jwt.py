"""JWT claims that can be trusted, through the real Envoy.

With `"jwt": {"trust": "verified"}` (the default), `token[...]` reads only the payload that
Envoy's `jwt_authn` filter verified and stored in dynamic metadata
(`filter_metadata["envoy.filters.http.jwt_authn"][<payload_in_metadata>]`). Keys are made at
test time; tokens are signed here; Envoy gets the JWKS inline (`local_jwks`), and its
`jwt_authn` filter runs right before traffic-color.

Envoys started (about half a second each):
  verified[payload]      jwt_authn `payload_in_metadata: payload`, our config without `jwt`;
                         both verified Envoys also run a decoy set_metadata filter that writes
                         the beta claims under another namespace on every request
  verified[jwt_payload]  jwt_authn (named `shop.jwt-check`) `payload_in_metadata: jwt_payload`;
                         our config has `"metadata_key": "jwt_payload"`
  unverified-header      no jwt_authn, `"trust": "unverified"` reading the Authorization header
  unverified-cookie      no jwt_authn, `"trust": "unverified"` reading the `id_token` cookie
  other-namespace        no jwt_authn; set_metadata writes claims that `metadata_namespace`
                         and `metadata_key` point at
  jwt-docs-example       docs/jwt.md's plain-Envoy example as written, the JWKS inline
                         (plus one `envoy --mode validate` of it with its remote JWKS)

jwt_authn requirements by path (see jwt_authn_filter):
  /strict/       provider required: a missing or failed token gets 401 from jwt_authn
  /istio/        requires_any [provider, allow_missing]: what Istio's RequestAuthentication
                 generates: no token passes, a bad token gets 401
  /lenient/      requires_any [provider, allow_missing_or_failed]: a bad token passes on,
                 without a verified payload
  /best-effort/  allow_missing_or_failed: nothing is refused, valid tokens still verified
  /other/        provider `other` (another issuer), payload stored under `other_payload`
  /open/         no jwt_authn rule: nothing is verified
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from traffic_color_harness import envoy_config, tokens
from traffic_color_harness.bucket import bucket
from traffic_color_harness.client import Response, request
from traffic_color_harness.envoy import run_to_exit
from traffic_color_harness.repo import REPO

DEBUG = "x-version-route-rule"
GROUP = "beta-cohort"
WARNING = "jwt trust is `unverified`"

# One rule per kind of claim, so the debug header says which claim decided.
RULES = """\
# traffic-color JWT end-to-end rules
match { token["beta"] == true } -> "canary"                       # 1 boolean
match { token["realm_access"]["roles"] contains "beta" } -> "canary"   # 2 nested (Keycloak)
match { token["groups"] in ["early-access", "qa"] } -> "canary"   # 3 array claim, any element
match { token["level"] >= 3 } -> "canary"                         # 4 number
match { bucket(token["sub"], "beta-cohort") <= 10 } -> "canary"   # 5 a sticky 10% of subjects
match { token["tier"] == "platinum" } -> "canary"                 # 6 string (8 bytes, like an f64)
match { token["scope"] contains "beta" } -> "canary"              # 7 space-delimited, normalized
match { token["https://claims.example/flags"] contains "beta" } -> "canary"   # 8 namespaced
default -> "stable"
"""


def _sub_with_bucket(b: int) -> str:
    return next(f"user-{i}" for i in range(100_000) if bucket(f"user-{i}", GROUP) == b)


SUB_IN = _sub_with_bucket(10)    # the last bucket inside `<= 10`
SUB_OUT = _sub_with_bucket(11)   # the first bucket outside

# Claims that select the canary through every rule at once: what a forger would write.
BETA = {"sub": SUB_IN, "beta": True, "realm_access": {"roles": ["beta"]}, "groups": ["qa"],
        "level": 9, "tier": "platinum", "scope": "read beta",
        "https://claims.example/flags": ["beta"]}
# A subject in none of the rules.
PLAIN = {"sub": SUB_OUT}

ALGS = ["RS256", "ES256"]


# ---------------------------------------------------------- the jwt_authn provider of these tests

JWT_AUTHN = "envoy.filters.http.jwt_authn"
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"

ISSUER = "https://issuer.traffic-color.test"
OTHER_ISSUER = "https://other-issuer.traffic-color.test"
AUDIENCE = "traffic-color-e2e"


def valid_claims(**extra) -> dict:
    """Registered claims that pass the provider below (issuer, audience, 10 minutes of life),
    plus `extra`."""
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now - 5, "exp": now + 600, **extra}


def jwt_authn_filter(jwks_json: str, payload_in_metadata: str,
                     other: dict[str, str] | None = None) -> dict:
    """An `envoy.filters.http.jwt_authn` http filter with provider `tests` (the keys inline,
    payload stored under `payload_in_metadata`, `scope` split on spaces as Istio does) and one
    requirement per path prefix, as the module docstring lists them.

    `other` = {"issuer": .., "jwks": .., "payload_in_metadata": ..} adds a second provider, to
    show that the filter reads only the key it is told to.
    """
    providers: dict = {
        "tests": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": jwks_json},
            "payload_in_metadata": payload_in_metadata,
            # Istio's RequestAuthentication normalizes `scope` and `permission` this way.
            "normalize_payload_in_metadata": {"space_delimited_claims": ["scope", "permission"]},
            "forward": True,
        },
    }
    rules: list[dict] = [
        {"match": {"prefix": "/strict/"}, "requires": {"provider_name": "tests"}},
        {"match": {"prefix": "/istio/"},
         "requires": {"requires_any": {"requirements": [
             {"provider_name": "tests"}, {"allow_missing": {}}]}}},
        {"match": {"prefix": "/lenient/"},
         "requires": {"requires_any": {"requirements": [
             {"provider_name": "tests"}, {"allow_missing_or_failed": {}}]}}},
        {"match": {"prefix": "/best-effort/"}, "requires": {"allow_missing_or_failed": {}}},
    ]
    if other is not None:
        providers["other"] = {
            "issuer": other["issuer"],
            "audiences": [AUDIENCE],
            "local_jwks": {"inline_string": other["jwks"]},
            "payload_in_metadata": other["payload_in_metadata"],
            "forward": True,
        }
        rules.append({"match": {"prefix": "/other/"}, "requires": {"provider_name": "other"}})
    return {"name": JWT_AUTHN, "typed_config": {"@type": JWT_AUTHN_TYPE,
                                                 "providers": providers, "rules": rules}}


# ------------------------------------------------------------------------------ fixtures


@dataclass
class Keys:
    signer: dict[str, tokens.SigningKey]     # in the JWKS Envoy trusts
    stranger: dict[str, tokens.SigningKey]   # same kid and alg, a different key: not trusted


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        signer={"RS256": tokens.SigningKey.generate("RS256", "rsa-1"),
                "ES256": tokens.SigningKey.generate("ES256", "ec-1")},
        stranger={"RS256": tokens.SigningKey.generate("RS256", "rsa-1"),
                  "ES256": tokens.SigningKey.generate("ES256", "ec-1")},
    )


# What a decoy filter writes on every request, under another namespace: never read.
DECOY_NAMESPACE = "decoy.authn"


def jwt_envoy_base(keys: Keys, payload_in_metadata: str) -> dict:
    jwks = tokens.jwks(keys.signer["RS256"], keys.signer["ES256"])
    jf = jwt_authn_filter(jwks, payload_in_metadata,
                            other={"issuer": OTHER_ISSUER, "jwks": jwks,
                                   "payload_in_metadata": "other_payload"})
    if payload_in_metadata != "payload":
        # jwt_authn writes under `envoy.filters.http.jwt_authn` whatever the filter is called.
        jf["name"] = "shop.jwt-check"
    decoy = envoy_config.set_metadata_filter(DECOY_NAMESPACE, {"payload": BETA, "jwt_payload": BETA})
    return envoy_config.with_filters_before_wasm(envoy_config.load(), decoy, jf)


@pytest.fixture(scope="module", params=["payload", "jwt_payload"])
def verified(request, envoys, keys):
    """Envoy with jwt_authn before traffic-color in verified mode; `payload` is the default key
    (no `jwt` in our config at all), `jwt_payload` needs `"metadata_key"`."""
    key = request.param
    config = {"rules": RULES, "debug_header": DEBUG}
    if key != "payload":
        config["jwt"] = {"trust": "verified", "metadata_key": key}
    e = envoys.start(f"jwt-verified-{key}", base=jwt_envoy_base(keys, key), config=config)
    yield e
    e.stop()


@pytest.fixture(scope="module")
def other_namespace(envoys):
    """No jwt_authn: set_metadata writes claims under another namespace, as another authn
    filter might; `metadata_namespace` + `metadata_key` point the filter there."""
    md = envoy_config.set_metadata_filter("example.authn", {"claims": {"sub": SUB_OUT, "level": 5}})
    config = {"rules": RULES, "debug_header": DEBUG,
              "jwt": {"metadata_namespace": "example.authn", "metadata_key": "claims"}}
    base = envoy_config.with_filters_before_wasm(envoy_config.load(), md)
    e = envoys.start("jwt-other-namespace", base=base, config=config)
    yield e
    e.stop()


@pytest.fixture(scope="module")
def unverified(envoys):
    config = {"rules": RULES, "debug_header": DEBUG,
              "jwt": {"trust": "unverified", "from": {"header": "authorization"}}}
    e = envoys.start("jwt-unverified-header", config=config)
    yield e
    e.stop()


@pytest.fixture(scope="module")
def unverified_cookie(envoys):
    config = {"rules": RULES, "debug_header": DEBUG,
              "jwt": {"trust": "unverified", "from": {"cookie": "id_token"}}}
    e = envoys.start("jwt-unverified-cookie", config=config)
    yield e
    e.stop()


# ------------------------------------------------------------------------------- checks


@functools.cache
def _routes() -> dict:
    return envoy_config.load()


def colored(r: Response, expect: str, rule: str | None, what: str) -> None:
    """The request reached the upstream `expect` routes to, colored `expect` by `rule` (the
    debug header; None: not checked)."""
    assert r.status == 200, f"{what}: HTTP {r.status} {r.body[:300]!r}"
    assert r.json is not None, f"{what}: not an upstream answer: {r.body[:300]!r}"
    want = envoy_config.cluster_for(_routes(), expect)
    got = (r.json["version"], r.json["x-version-route"], r.header(DEBUG) if rule else None)
    assert got == (want, expect, rule), (
        f"{what}: answered by {got[0]!r} with x-version-route={got[1]!r}, "
        f"deciding rule {got[2]!r}; "
        f"expected {want!r}, {expect!r}, rule {rule!r}")
    assert r.header("x-served-by") == want


def refused(r: Response, what: str, status: int = 401) -> None:
    """jwt_authn answered `status` itself: no upstream, so certainly not the canary."""
    assert r.status == status, (
        f"{what}: expected {status} from jwt_authn, got {r.status} {r.body[:300]!r}")
    assert r.header("x-served-by") is None and (r.json is None or "version" not in r.json), (
        f"{what}: a refused request reached an upstream: {r.body[:300]!r}")


def all_of(checks) -> None:
    """Run every check, then fail with all the failures at once."""
    failures = []
    for check in checks:
        try:
            check()
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


def get(e, path: str, token: str | None, extra: list[list[str]] | None = None) -> Response:
    headers = (tokens.bearer(token) if token is not None else []) + (extra or [])
    return request(e.port, "GET", path, headers)


# ------------------------------------------------------------------- verified: the basics


def test_subjects_are_where_the_rules_say():
    assert bucket(SUB_IN, GROUP) == 10 and bucket(SUB_OUT, GROUP) == 11


@pytest.mark.parametrize("path", ["/strict/", "/istio/", "/lenient/", "/best-effort/"])
@pytest.mark.parametrize("alg", ALGS)
def test_valid_token_with_the_beta_claim_goes_to_canary(verified, keys, alg, path):
    r = get(verified, path + "x", keys.signer[alg].token(valid_claims(**PLAIN, beta=True)))
    colored(r, "canary", "rule 1", f"{alg} beta=true on {path}")


@pytest.mark.parametrize("path", ["/strict/", "/istio/", "/lenient/", "/best-effort/"])
@pytest.mark.parametrize("alg", ALGS)
def test_valid_token_without_the_claim_stays_stable(verified, keys, alg, path):
    r = get(verified, path + "x", keys.signer[alg].token(valid_claims(**PLAIN)))
    colored(r, "stable", "default", f"{alg} without beta claims on {path}")


def test_no_token(verified):
    """Without a token there are no claims, though a decoy filter wrote BETA claims under the
    same keys in another namespace on every request."""
    refused(get(verified, "/strict/x", None), "no token on /strict/")
    for path in ("/istio/", "/lenient/", "/best-effort/", "/open/"):
        colored(get(verified, path + "x", None), "stable", "default", f"no token on {path}")


def test_metadata_namespace_and_key_pick_where_claims_are_read(other_namespace):
    """Also the control for the decoy above: set_metadata's claims are readable when asked for."""
    colored(get(other_namespace, "/", None), "canary", "rule 4", "claims in example.authn/claims")
    assert WARNING not in other_namespace.log()


def test_verified_mode_logs_no_unverified_warning(verified):
    assert "traffic-color: loaded 8 rules and a default" in verified.log()
    assert WARNING not in verified.log()


# ----------------------------------------------------------- verified: tokens that must fail


def _hs256_keyed_with_public_key(key: tokens.SigningKey, claims: dict) -> str:
    """The classic algorithm confusion: HMAC 'signed' with the verifier's public key."""
    secret = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = tokens.segment({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    signing_input = f"{head}.{tokens.segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{tokens.b64url(mac)}"


def forgeries(keys: Keys, alg: str) -> dict[str, str]:
    """Tokens whose payload says BETA but that a verifier must refuse."""
    now = int(time.time())
    key, stranger = keys.signer[alg], keys.stranger[alg]
    beta = valid_claims(**BETA)
    return {
        "alg-none": tokens.unsigned(beta),
        "alg-none-with-signature": tokens.unsigned(beta) + tokens.b64url(b"not a signature"),
        "signed-by-another-key": stranger.token(beta),
        "expired": key.token({**beta, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not-yet-valid": key.token({**beta, "nbf": now + 3600, "exp": now + 7200}),
        "tampered-payload": tokens.with_payload(key.token(valid_claims(**PLAIN)), beta),
        "wrong-audience": key.token({**beta, "aud": "someone-else"}),
        "unknown-issuer": key.token({**beta, "iss": "https://evil.example"}),
        "hs256-keyed-with-public-key": _hs256_keyed_with_public_key(key, beta),
    }


FORGERY_NAMES = [
    "alg-none", "alg-none-with-signature", "signed-by-another-key", "expired", "not-yet-valid",
    "tampered-payload", "wrong-audience", "unknown-issuer", "hs256-keyed-with-public-key"]


# jwt_authn answers 401, except for a token whose audience is not allowed: 403.
REFUSAL_STATUS = {"wrong-audience": 403}


@pytest.mark.parametrize("alg", ALGS)
def test_forged_tokens_are_refused_where_a_token_must_verify(verified, keys, alg):
    """/strict/ (provider required) and /istio/ (RequestAuthentication: a token, if present,
    must verify) answer 401 (403 for the audience) from jwt_authn; the request never reaches
    an upstream."""
    tokens = forgeries(keys, alg)
    assert sorted(tokens) == sorted(FORGERY_NAMES)
    # The control: the same claims, validly signed, do select the canary.
    colored(get(verified, "/strict/x", keys.signer[alg].token(valid_claims(**BETA))), "canary", "rule 1",
            f"{alg} valid token with the forged claims")
    all_of(
        lambda name=name, token=token, path=path: refused(
            get(verified, path + "x", token), f"{alg} {name} on {path}",
            REFUSAL_STATUS.get(name, 401))
        for name, token in tokens.items() for path in ("/strict/", "/istio/"))


@pytest.mark.parametrize("alg", ALGS)
def test_forged_tokens_pass_without_claims_where_failure_is_allowed(verified, keys, alg):
    """/lenient/ and /best-effort/ let a failed token through, with no verified payload: the
    claims in it are absent, so the request stays stable (and a sent color is stripped)."""
    all_of(
        lambda name=name, token=token, path=path: colored(
            get(verified, path + "x", token, [["x-version-route", "canary"]]),
            "stable", "default", f"{alg} {name} on {path}")
        for name, token in forgeries(keys, alg).items() for path in ("/lenient/", "/best-effort/"))


def test_a_verified_payload_under_another_key_is_not_read(verified, keys):
    """Provider `other` verifies this token (200 on a path that requires it) and stores its
    payload under `other_payload`: the filter reads only its own key."""
    token = keys.signer["RS256"].token(valid_claims(**{**BETA, "iss": OTHER_ISSUER}))
    colored(get(verified, "/other/x", token), "stable", "default", "other provider's payload")
    # ... and on a path jwt_authn has no rule for, a valid token is not verified at all.
    token = keys.signer["ES256"].token(valid_claims(**BETA))
    colored(get(verified, "/open/x", token), "stable", "default", "valid token, no jwt_authn rule")


# ----------------------------------------------------------- verified: every kind of claim


CLAIM_CASES = [
    # (extra claims, deciding rule)
    ({"beta": True}, "rule 1"),
    ({"beta": False}, "default"),
    ({"beta": "yes"}, "default"),
    ({"beta": "true"}, "rule 1"),                            # text "true" reads as true (as headers do)
    ({"realm_access": {"roles": ["user", "beta"]}}, "rule 2"),
    ({"realm_access": {"roles": ["user"]}}, "default"),
    ({"realm_access": {"roles": "beta"}}, "rule 2"),         # contains on a string: substring
    ({"realm_access": "beta"}, "default"),              # not an object: .roles is absent
    ({"roles": ["beta"]}, "default"),                   # not nested where the rule looks
    ({"groups": ["staff", "early-access"]}, "rule 3"),
    ({"groups": ["staff"]}, "default"),
    ({"groups": []}, "default"),
    ({"level": 3}, "rule 4"),
    ({"level": 7.5}, "rule 4"),
    ({"level": 2}, "default"),
    ({"level": 2.999}, "default"),
    ({"level": None}, "default"),
    ({"level": "5"}, "rule 4"),                              # text that is a number reads as one
    ({"level": "high"}, "default"),
    ({"sub": SUB_IN}, "rule 5"),
    ({"tier": "platinum"}, "rule 6"),
    ({"tier": "gold"}, "default"),
    ({"scope": "read beta"}, "rule 7"),                      # normalized to ["read", "beta"]
    ({"scope": "read beta-tester"}, "default"),         # ... so it is an element test
    ({"https://claims.example/flags": ["beta"]}, "rule 8"),
    ({"https://claims.example/flags": ["dark-mode"]}, "default"),
]


@pytest.mark.parametrize("alg", ALGS)
def test_claim_kinds_on_verified_claims(verified, keys, alg):
    all_of(
        lambda extra=extra, rule=rule: colored(
            get(verified, "/strict/x", keys.signer[alg].token(valid_claims(**{**PLAIN, **extra}))),
            "stable" if rule == "default" else "canary", rule, f"{alg} {extra}")
        for extra, rule in CLAIM_CASES)


# ------------------------------------------------------------------------------ unverified


def test_unverified_mode_reads_unsigned_claims_and_warns(unverified, keys):
    colored(get(unverified, "/", tokens.unsigned(valid_claims(**PLAIN, beta=True))), "canary", "rule 1",
            "unsigned beta=true")
    colored(get(unverified, "/", tokens.unsigned(valid_claims(**PLAIN, level=4))), "canary", "rule 4",
            "unsigned level=4")
    colored(get(unverified, "/", tokens.unsigned(valid_claims(**PLAIN))), "stable", "default",
            "unsigned, no beta claim")
    colored(get(unverified, "/", None), "stable", "default", "no token")
    # The bare token (no `Bearer `) is read too.
    r = request(unverified.port, "GET", "/", [["authorization", tokens.unsigned({"tier": "platinum"})]])
    colored(r, "canary", "rule 6", "bare unsigned token")
    assert WARNING in unverified.log(), unverified.log(8000)


@pytest.mark.parametrize("alg", ALGS)
def test_unverified_mode_believes_any_signature(unverified, keys, alg):
    """Why `unverified` is opt-in: without a verifier in front, every forgery above colors."""
    tokens = forgeries(keys, alg)
    all_of(
        lambda name=name: colored(get(unverified, "/", tokens[name]), "canary", "rule 1",
                                  f"{alg} {name}, unverified mode")
        for name in ("alg-none", "alg-none-with-signature", "signed-by-another-key",
                     "tampered-payload", "hs256-keyed-with-public-key"))


def test_unverified_mode_from_a_cookie(unverified_cookie):
    token = tokens.unsigned(valid_claims(**PLAIN, beta=True))
    r = request(unverified_cookie.port, "GET", "/", [["cookie", f"session=x; id_token={token}"]])
    colored(r, "canary", "rule 1", "token in the id_token cookie")
    # The configured source is the cookie: the Authorization header is not read.
    colored(get(unverified_cookie, "/", token), "stable", "default", "token in Authorization only")
    assert WARNING in unverified_cookie.log(), unverified_cookie.log(8000)


# ------------------------------------------------------------------ docs/jwt.md's examples


DOCS = REPO / "docs" / "jwt.md"


@dataclass
class DocsExamples:
    """The YAML blocks of docs/jwt.md: the plain-Envoy http_filters and JWKS cluster, and the
    Istio manifests."""

    http_filters: list
    clusters: list
    istio: dict[str, dict]   # kind -> manifest

    @classmethod
    def load(cls, path: Path = DOCS) -> DocsExamples:
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        docs = [d for block in re.findall(r"```yaml\n(.*?)```", path.read_text("utf-8"), re.S)
                for d in yaml.load_all(block)]
        found = {"http_filters": [], "clusters": [], "istio": {}}
        for d in docs:
            if "http_filters" in d:
                found["http_filters"].append(d["http_filters"])
            elif "clusters" in d:
                found["clusters"].append(d["clusters"])
            elif "kind" in d:
                found["istio"][d["kind"]] = d
        assert len(found["http_filters"]) == 1 and len(found["clusters"]) == 1, (
            f"{path}: expected one http_filters block and one clusters block")
        return cls(found["http_filters"][0], found["clusters"][0], found["istio"])

    def jwt_authn(self) -> dict:
        (f,) = [f for f in self.http_filters if f["name"] == JWT_AUTHN]
        return f["typed_config"]

    def provider(self) -> dict:
        (p,) = self.jwt_authn()["providers"].values()
        return p

    def filter_config(self) -> dict:
        (f,) = [f for f in self.http_filters if f["name"] == envoy_config.WASM_FILTER]
        return json.loads(f["typed_config"]["config"]["configuration"]["value"])

    def envoy_base(self) -> dict:
        """envoy.yaml with the docs' http_filters (routes and upstreams as they are)."""
        cfg = envoy_config.load()
        envoy_config.http_filters(cfg)[:] = copy.deepcopy(self.http_filters)
        return cfg


@pytest.fixture(scope="module")
def docs() -> DocsExamples:
    return DocsExamples.load()


@pytest.fixture(scope="module")
def docs_envoy(envoys, keys, docs):
    """The docs' plain-Envoy example as written, except that the JWKS is inline (our test keys)
    instead of fetched from the identity provider."""
    base = docs.envoy_base()
    (f,) = [f for f in envoy_config.http_filters(base) if f["name"] == JWT_AUTHN]
    (provider,) = f["typed_config"]["providers"].values()
    del provider["remote_jwks"]
    provider["local_jwks"] = {"inline_string": tokens.jwks(keys.signer["RS256"], keys.signer["ES256"])}
    e = envoys.start("jwt-docs-example", base=base)
    yield e
    e.stop()


def test_docs_envoy_example_validates_as_written(envoys, docs, tmp_path):
    """`envoy --mode validate` on the docs' filters and JWKS cluster, remote_jwks and all."""
    cfg = envoys.render(base=docs.envoy_base())
    cfg["static_resources"]["clusters"] += copy.deepcopy(docs.clusters)
    path = envoy_config.write(cfg, tmp_path / "docs-example.json")
    rc, log = run_to_exit(None, tmp_path, "docs-validate", config_path=path,
                          extra_args=("--mode", "validate"))
    assert rc == 0, log[-8000:]


@pytest.mark.parametrize("alg", ALGS)
def test_docs_envoy_example_does_what_its_table_says(docs_envoy, docs, keys, alg):
    p = docs.provider()
    assert p["payload_in_metadata"] == docs.filter_config()["jwt"].get("metadata_key", "payload")
    key = keys.signer[alg]

    def token(**extra) -> str:
        return key.token(valid_claims(**{"iss": p["issuer"], "aud": p["audiences"][0], **extra}))

    sub_in = next(f"u-{i}" for i in range(1000) if bucket(f"u-{i}", "checkout-v2") <= 10)
    sub_out = next(f"u-{i}" for i in range(1000) if bucket(f"u-{i}", "checkout-v2") > 10)
    role = {"realm_access": {"roles": ["user", "beta-tester"]}}
    all_of([
        lambda: colored(get(docs_envoy, "/", None), "stable", None, "no token"),
        lambda: colored(get(docs_envoy, "/", token(sub=sub_out, **role)), "canary", None,
                        "valid token, role beta-tester"),
        lambda: colored(get(docs_envoy, "/", token(sub=sub_in)), "canary", None,
                        f"valid token, sub in bucket {bucket(sub_in, 'checkout-v2')}"),
        lambda: colored(get(docs_envoy, "/", token(sub=sub_out)), "stable", None,
                        "valid token, neither"),
        lambda: refused(get(docs_envoy, "/", tokens.unsigned(valid_claims(sub=sub_in, **role))),
                        "alg none with the role"),
        lambda: refused(get(docs_envoy, "/", keys.stranger[alg].token(
            valid_claims(**{"iss": p["issuer"], "aud": p["audiences"][0], "sub": sub_in}))),
            "signed by another key"),
        lambda: refused(get(docs_envoy, "/", token(sub=sub_in, aud="someone-else")),
                        "wrong audience", 403),
    ])


def test_docs_istio_example_matches_the_envoy_example(docs):
    """The Istio manifests configure the same filter, in phase AUTHZ, for the same issuer."""
    plugin, reqauth = docs.istio["WasmPlugin"], docs.istio["RequestAuthentication"]
    assert plugin["spec"]["phase"] == "AUTHZ"
    assert plugin["spec"]["pluginConfig"] == docs.filter_config()
    assert plugin["spec"]["selector"] == reqauth["spec"]["selector"]
    (rule,) = reqauth["spec"]["jwtRules"]
    p = docs.provider()
    assert (rule["issuer"], rule["audiences"]) == (p["issuer"], p["audiences"])
    assert rule["jwksUri"] == p["remote_jwks"]["http_uri"]["uri"]

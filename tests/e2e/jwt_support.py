"""JWTs for the end-to-end tests: keys made at test time, tokens signed here, and Envoy's
`jwt_authn` filter configured with those keys inline.

Keys are generated per test session with the `cryptography` package (RS256: RSA 2048,
ES256: EC P-256); nothing is read from disk or fetched. Tokens are compact JWS
(`header.payload.signature`, base64url without padding), built by hand so the tests can also
make the broken ones a verifier must refuse: unsigned (`alg: none`), signed by a key that is
not in the JWKS, expired, or with the payload swapped after signing.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import envoy_config
from helpers import b64url

JWT_AUTHN = "envoy.filters.http.jwt_authn"
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"

ISSUER = "https://issuer.traffic-color.test"
OTHER_ISSUER = "https://other-issuer.traffic-color.test"
AUDIENCE = "traffic-color-e2e"


def _b64_int(n: int, length: int | None = None) -> str:
    length = length if length is not None else max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


@dataclass
class SigningKey:
    """A private key with its JWK `kid` and JWS `alg` (RS256 or ES256)."""

    alg: str
    kid: str
    private: Any

    @classmethod
    def generate(cls, alg: str, kid: str) -> SigningKey:
        if alg == "RS256":
            return cls(alg, kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if alg == "ES256":
            return cls(alg, kid, ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(f"unsupported alg {alg}")

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 7517/7518)."""
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                    "n": _b64_int(pub.n), "e": _b64_int(pub.e)}
        return {"kty": "EC", "kid": self.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                "x": _b64_int(pub.x, 32), "y": _b64_int(pub.y, 32)}

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4), not DER.
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def token(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A compact JWS of `claims` signed with this key."""
        head = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        signing_input = f"{segment(head)}.{segment(claims)}"
        return f"{signing_input}.{b64url(self.sign(signing_input.encode('ascii')))}"


def jwks(*keys: SigningKey) -> str:
    return json.dumps({"keys": [k.jwk() for k in keys]})


def claims(**extra: Any) -> dict[str, Any]:
    """Registered claims that pass the provider below (issuer, audience, 10 minutes of life),
    plus `extra`."""
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now - 5, "exp": now + 600, **extra}


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none`, empty signature."""
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """`token` with its payload replaced and its original signature kept (tampering)."""
    head, _, sig = token.split(".")
    return f"{head}.{segment(claims)}.{sig}"


def bearer(token: str) -> list[list[str]]:
    return [["authorization", f"Bearer {token}"]]


# ------------------------------------------------------------------------- Envoy config


def jwt_authn_filter(jwks_json: str, payload_in_metadata: str,
                     other: dict[str, str] | None = None) -> dict[str, Any]:
    """An `envoy.filters.http.jwt_authn` http filter with provider `tests` (the keys inline,
    payload stored under `payload_in_metadata`, `scope` split on spaces as Istio does) and one
    requirement per path prefix:

      /strict/       the token must verify: a missing or failed token gets 401 from jwt_authn
      /istio/        requires_any [tests, allow_missing]: what Istio generates for a
                     RequestAuthentication: no token passes, a failed token gets 401
      /lenient/      requires_any [tests, allow_missing_or_failed]: a failed token passes on,
                     without a verified payload
      /best-effort/  allow_missing_or_failed alone: every provider is tried, nothing is refused
      /other/        (only with `other`) provider `other`, whose payload goes to another key
      anything else  no rule: jwt_authn verifies nothing

    `other` = {"issuer": .., "jwks": .., "payload_in_metadata": ..} adds a second provider, to
    show that the filter reads only the key it is told to.
    """
    providers: dict[str, Any] = {
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
    rules: list[dict[str, Any]] = [
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


def http_filters(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The HTTP connection manager's http_filters list of a loaded envoy.yaml."""
    for chain in envoy_config.listener(cfg).get("filter_chains", []):
        for f in chain.get("filters", []):
            if f.get("name") == envoy_config.HCM:
                return f["typed_config"]["http_filters"]
    raise envoy_config.ConfigError("no http_connection_manager in the listener")


def set_metadata_filter(namespace: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An `envoy.filters.http.set_metadata` http filter that writes `fields` into
    `filter_metadata[namespace]` on every request (a stand-in for another authn filter)."""
    return {"name": "envoy.filters.http.set_metadata", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
        "metadata": [{"metadata_namespace": namespace, "value": fields}]}}


def with_filters_before_wasm(base: dict[str, Any], *new: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` (loaded envoy.yaml) with the http filters `new` right before the Wasm
    filter, so, e.g., jwt_authn has verified the token and stored its payload in the dynamic
    metadata when traffic-color evaluates its rules."""
    cfg = copy.deepcopy(base)
    filters = http_filters(cfg)
    at = [i for i, f in enumerate(filters) if f.get("name") == envoy_config.WASM_FILTER]
    if len(at) != 1:
        raise envoy_config.ConfigError(f"expected one {envoy_config.WASM_FILTER}, found {len(at)}")
    filters[at[0]:at[0]] = list(new)
    return cfg

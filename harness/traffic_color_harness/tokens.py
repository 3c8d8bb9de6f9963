"""JWTs for the demo, the tests, the benchmark and the soak: unsigned tokens, and tokens signed
with keys made at run time.

Tokens are compact JWS (`header.payload.signature`, base64url without padding), built by hand
so the tests can also make the broken ones a verifier must refuse: unsigned (`alg: none`),
signed by a key that is not in the JWKS, or with the payload swapped after signing. Keys come
from the `cryptography` package (RS256: RSA 2048, ES256: EC P-256); nothing is read from disk
or fetched.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

UNSIGNED_HEADER = {"alg": "none", "typ": "JWT"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(part: dict[str, Any] | str) -> str:
    """One encoded segment: an object as compact JSON, or text as it is (a payload that is not
    a JSON object, for tests of what a decoder must refuse)."""
    text = part if isinstance(part, str) else json.dumps(part, separators=(",", ":"))
    return b64url(text.encode("utf-8"))


def compact(header: dict[str, Any], payload: dict[str, Any] | str, signature: bytes = b"") -> str:
    """`header.payload.signature`; an empty signature leaves the last segment empty."""
    return f"{segment(header)}.{segment(payload)}.{b64url(signature)}"


def unsigned(claims: dict[str, Any] | str) -> str:
    """`alg: none`, empty signature: only meaningful to a filter with jwt trust `unverified`."""
    return compact(UNSIGNED_HEADER, claims)


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """`token` with its payload replaced and its original signature kept (tampering)."""
    head, _, sig = token.split(".")
    return f"{head}.{segment(claims)}.{sig}"


def bearer(token: str) -> list[list[str]]:
    """The request header that carries `token`."""
    return [["authorization", f"Bearer {token}"]]


def _b64_int(n: int, length: int | None = None) -> str:
    length = length if length is not None else max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


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
    """The public keys as a JWKS document (what Envoy's `local_jwks` takes inline)."""
    return json.dumps({"keys": [k.jwk() for k in keys]})

//! Reading claims out of a bearer token *without* verifying it. Only used when the config says
//! `"jwt": {"trust": "unverified"}`; anything malformed or oversized is simply no claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Larger tokens are ignored rather than decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The token from an `Authorization`-style value: `Bearer <token>`, scheme case-insensitive.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The token in a header or cookie value: `Bearer <token>`, or the bare token. Any other
/// scheme (`Basic ...`) is not a token.
pub fn token_in(value: &str) -> Option<&str> {
    let value = value.trim();
    if value.contains(' ') {
        bearer(value)
    } else {
        Some(value).filter(|v| !v.is_empty())
    }
}

/// The payload of a compact JWS (`header.payload.signature`) as a JSON object.
pub fn unverified_claims(token: &str) -> Option<Value> {
    let claims: Value = serde_json::from_slice(&payload(token)?).ok()?;
    claims.is_object().then_some(claims)
}

/// Like [`unverified_claims`], but keeps only the top-level claims that start one of `paths`,
/// and `exp`/`nbf`, which decide whether the token counts at all. Tokens carry many claims a
/// program never reads (`iss`, `aud`, names, scopes); skipping them instead of building them
/// is most of the cost of reading a token. Lookups along `paths` see the same values.
pub fn unverified_claims_for(token: &str, paths: &[Vec<String>]) -> Option<Value> {
    let bytes = payload(token)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let claims = Only { paths }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(Value::Object(claims))
}

/// The decoded payload segment of a compact JWS.
fn payload(token: &str) -> Option<Vec<u8>> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
}

/// Reads a JSON object, keeping the members a program can reach.
struct Only<'p> {
    paths: &'p [Vec<String>],
}

impl Only<'_> {
    fn wanted(&self, key: &str) -> bool {
        key == "exp"
            || key == "nbf"
            || self
                .paths
                .iter()
                .any(|p| p.first().is_some_and(|k| k == key))
    }
}

impl<'de> DeserializeSeed<'de> for Only<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Only<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if self.wanted(&key.0) {
                // A repeated key: the last one wins, as when the whole payload is read.
                out.insert(key.0.into_owned(), map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// An object key, borrowed from the payload unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Whether `exp`/`nbf` (if present) admit the token at `now` (Unix nanoseconds). Even an
/// unverified token that has expired must not color a request; without a clock, it does not.
pub fn in_time(claims: &Value, now: Option<i64>) -> bool {
    let seconds = |k: &str| claims.get(k).map(|v| v.as_f64());
    let (exp, nbf) = (seconds("exp"), seconds("nbf"));
    if exp.is_none() && nbf.is_none() {
        return true;
    }
    let Some(now) = now else { return false };
    let now = now as f64 / 1e9;
    // A present but non-numeric exp/nbf is malformed: the token is not used.
    exp.is_none_or(|e| e.is_some_and(|e| now < e))
        && nbf.is_none_or(|n| n.is_some_and(|n| now >= n))
}

/// Follows a claim path through nested objects.
pub fn lookup<'a>(claims: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(claims, |v, key| v.get(key.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn token(payload: &str) -> String {
        format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(payload))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_payload_and_nested_claims() {
        let t = token(r#"{"sub":"user-a","realm":{"roles":["beta"]},"n":5}"#);
        let claims = unverified_claims(&t).unwrap();
        assert_eq!(
            lookup(&claims, &["sub".into()]),
            Some(&Value::from("user-a"))
        );
        assert_eq!(
            lookup(&claims, &["realm".into(), "roles".into()]),
            Some(&serde_json::json!(["beta"]))
        );
        assert_eq!(lookup(&claims, &["sub".into(), "x".into()]), None);
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn expiry_and_not_before() {
        let at = |s: i64| Some(s * 1_000_000_000);
        let c = serde_json::json!({"exp": 2000, "nbf": 1000});
        assert!(in_time(&c, at(1000)));
        assert!(in_time(&c, at(1999)));
        assert!(!in_time(&c, at(2000)));
        assert!(!in_time(&c, at(999)));
        assert!(!in_time(&c, None));
        assert!(in_time(&serde_json::json!({"sub": "a"}), None));
        assert!(!in_time(&serde_json::json!({"exp": "soon"}), at(1)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_tokens_have_no_claims() {
        for bad in [
            "".to_string(),
            "abc".to_string(),
            "a.b".to_string(),
            "a.!!!.c".to_string(),
            token("[1,2]"),
            token("{not json"),
            format!("{}.x", token("{}")),
            token(&format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_TOKEN_BYTES))),
            token(&format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000))),
        ] {
            assert_eq!(unverified_claims(&bad), None, "{bad:.40}");
        }
    }
}

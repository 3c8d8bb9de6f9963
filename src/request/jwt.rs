//! Reading claims out of a bearer token *without* verifying it. Only used when the config says
//! `"jwt": {"trust": "unverified"}`; anything malformed or oversized is simply no claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

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
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.is_object().then_some(claims)
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

//! A short, stable name for a configuration, so an operator can tell which rules each proxy
//! runs: the filter logs it when a config loads and exposes it as the `hash` label of
//! `traffic_color_config_info`; `traffic-color check` prints it for a file. Both call [`of_json`]
//! on the JSON the filter receives, so they cannot disagree.
//!
//! The hash is over a canonical form of the JSON, so that how a tool lays a config out does not
//! matter: Envoy passes the `configuration` string as written, while Istio re-serializes
//! `pluginConfig` from a protobuf `Struct` (its own key order and spacing, every number a
//! double). Canonical form: objects with keys sorted by code point, no whitespace, strings as
//! serde_json escapes them (`"`, `\`, control characters; nothing else), and an integral number
//! within ±2^53 written as an integer (`3600.0` and `3600` are the same value, as they are once
//! Istio has made it a double). Anything else changes the hash: a key given its default value
//! explicitly, and any edit to the rules' text, comments and spacing included.
//!
//! MurmurHash3 x64_128, seed 0, printed as the 32 hex digits of the 128-bit number
//! `h2 · 2^64 + h1` (the `murmur3` crate's `u128`). Not a cryptographic hash: it names configs
//! that were reviewed, it does not authenticate them (a deliberate collision is easy to build).
//! Murmur3 is already in the module for `bucket()`, so naming configs adds no code to it.

use serde_json::Value;
use std::fmt;

/// The hash of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigHash(pub u128);

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The hash of a JSON configuration; `None` when the bytes are not JSON (such a config is
/// rejected anyway, and has no hash).
pub fn of_json(json: &[u8]) -> Option<ConfigHash> {
    let canonical = canonical(json)?;
    murmur3::murmur3_x64_128(&mut canonical.as_bytes(), 0)
        .ok()
        .map(ConfigHash)
}

/// The canonical form of a JSON document (see the module's docs); `None` when it is not JSON.
pub fn canonical(json: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(json).ok()?;
    let mut out = String::with_capacity(json.len());
    write(&value, &mut out)?;
    Some(out)
}

/// Integers beyond this are not all representable as doubles: left as serde_json prints them.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

fn write(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.push_str(&serde_json::to_string(value).ok()?);
        }
        Value::Number(n) => match n.as_f64() {
            Some(f)
                if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() <= EXACT_INTEGER =>
            {
                // Exact: |f| <= 2^53 and integral.
                #[allow(clippy::cast_possible_truncation)]
                out.push_str(&(f as i64).to_string());
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order: serde_json keeps insertion
            // order when any crate in the build enables its `preserve_order` feature.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).ok()?);
                out.push(':');
                write(item, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn hash(json: &str) -> String {
        of_json(json.as_bytes()).unwrap().to_string()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn layout_and_key_order_do_not_matter() {
        let a = r#"{"rules": "default -> \"stable\"", "keep": true, "jwt": {"trust": "verified", "metadata_key": "payload"}}"#;
        let b = "{\n  \"jwt\" : { \"metadata_key\":\"payload\",\n \"trust\":\"verified\" },\n\t\"keep\":true,\"rules\":\"default -> \\\"stable\\\"\"\n}\n";
        assert_eq!(hash(a), hash(b));
        assert_eq!(
            canonical(b.as_bytes()).unwrap(),
            r#"{"jwt":{"metadata_key":"payload","trust":"verified"},"keep":true,"rules":"default -> \"stable\""}"#
        );
        assert_eq!(hash(a).len(), 32);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn what_is_said_changes_it() {
        let base = hash(r#"{"rules": "default -> \"stable\""}"#);
        for other in [
            r#"{"rules": "default -> \"canary\""}"#,
            r#"{"rules": "default  -> \"stable\""}"#,
            r#"{"rules": "default -> \"stable\"", "header": "x-version-route"}"#,
            r#"{"rules": "default -> \"stable\"", "keep": false}"#,
        ] {
            assert_ne!(hash(other), base, "{other}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numbers_as_istio_delivers_them() {
        // Istio's pluginConfig numbers are doubles: 3600.0 arrives as 3600.
        assert_eq!(hash(r#"{"n": 3600.0}"#), hash(r#"{"n": 3600}"#));
        assert_eq!(hash(r#"{"n": -2.0}"#), hash(r#"{"n": -2}"#));
        assert_eq!(
            canonical(br#"{"n": [1.5, 1e3, 0.0, -0.0]}"#).unwrap(),
            r#"{"n":[1.5,1000,0,0]}"#
        );
        assert_ne!(hash(r#"{"n": 1.5}"#), hash(r#"{"n": 1}"#));
        // Beyond 2^53 a double is not exact: left as serde_json prints it.
        assert_eq!(canonical(br#"[1e300]"#).unwrap(), "[1e+300]");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn strings_are_escaped_one_way() {
        assert_eq!(
            canonical("{\"k\": \"\\u00e9\\/\\t\\u0001 é \\\"\"}".as_bytes()).unwrap(),
            "{\"k\":\"é/\\t\\u0001 é \\\"\"}"
        );
        // Key order is by code point, as the bytes of UTF-8 sort.
        assert_eq!(
            canonical("{\"é\":1,\"z\":2,\"A\":3}".as_bytes()).unwrap(),
            "{\"A\":3,\"z\":2,\"é\":1}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reference_vectors() {
        // MurmurHash3_x64_128 with seed 0 from the reference C++ (SMHasher), printed h2 then h1:
        // (Guava's `murmur3_128` prints the same two words as little-endian bytes, h1 first).
        let h = |s: &str| {
            murmur3::murmur3_x64_128(&mut s.as_bytes(), 0)
                .ok()
                .map(|h| ConfigHash(h).to_string())
        };
        assert_eq!(h("").as_deref(), Some("00000000000000000000000000000000"));
        assert_eq!(
            h("hello").as_deref(),
            Some("5b1e906a48ae1d19cbd8a7b341bd9b02")
        );
        assert_eq!(
            h("The quick brown fox jumps over the lazy dog").as_deref(),
            Some("7a433ca9c49a9347e34bbc7bbc071b6c")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn not_json_has_no_hash() {
        assert_eq!(of_json(b"{"), None);
        assert_eq!(of_json(b""), None);
        assert_eq!(of_json(b"\xff"), None);
    }
}

//! Verified JWT claims from Envoy's dynamic metadata. `jwt_authn` (and Istio's
//! RequestAuthentication) stores the verified payload as a `google.protobuf.Struct` under
//! `filter_metadata[<namespace>][<key>]`; Envoy hands the whole `metadata` property over as a
//! serialized `envoy.config.core.v3.Metadata`. Decoding that protobuf keeps every claim's type
//! exact (the proxy-wasm pairs encoding of nested properties cannot tell an 8-byte string from a
//! number). The decoder is a few dozen lines over the wire format, bounded in depth and size; any
//! malformation means no claims.

use serde_json::{Map, Number, Value};

/// Metadata bigger than this is not decoded.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Nesting of claim objects and arrays.
const MAX_DEPTH: usize = 32;

/// The claims stored at `filter_metadata[namespace][key]`, if they are there and well-formed.
pub fn verified_claims(metadata: &[u8], namespace: &str, key: &str) -> Option<Value> {
    if metadata.len() > MAX_METADATA_BYTES {
        return None;
    }
    // Metadata { map<string, Struct> filter_metadata = 1; ... }
    let filter_struct = map_entry(metadata, 1, namespace)?;
    // Struct { map<string, Value> fields = 1; }
    let value = map_entry(filter_struct, 1, key)?;
    let claims = decode_value(value, 0)?;
    claims.is_object().then_some(claims)
}

/// The value of the entry with `key` in a `map<string, _>` field, last one winning as in protobuf.
fn map_entry<'a>(message: &'a [u8], field: u64, key: &str) -> Option<&'a [u8]> {
    let mut found = None;
    for f in Fields::new(message) {
        let (number, wire) = f?;
        if number != field {
            continue;
        }
        let Wire::Bytes(entry) = wire else {
            return None;
        };
        let mut entry_key = None;
        let mut entry_value: &[u8] = &[];
        for ef in Fields::new(entry) {
            match ef? {
                (1, Wire::Bytes(k)) => entry_key = Some(k),
                (2, Wire::Bytes(v)) => entry_value = v,
                _ => {}
            }
        }
        if entry_key == Some(key.as_bytes()) {
            found = Some(entry_value);
        }
    }
    found
}

/// `google.protobuf.Value` → JSON.
fn decode_value(bytes: &[u8], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut out = Value::Null;
    for f in Fields::new(bytes) {
        out = match f? {
            (1, Wire::Varint(_)) => Value::Null,
            (2, Wire::Fixed64(bits)) => {
                Number::from_f64(f64::from_bits(bits)).map_or(Value::Null, Value::Number)
            }
            (3, Wire::Bytes(s)) => Value::String(std::str::from_utf8(s).ok()?.to_string()),
            (4, Wire::Varint(b)) => Value::Bool(b != 0),
            (5, Wire::Bytes(s)) => decode_struct(s, depth + 1)?,
            (6, Wire::Bytes(l)) => {
                let mut items = Vec::new();
                for lf in Fields::new(l) {
                    if let (1, Wire::Bytes(v)) = lf? {
                        items.push(decode_value(v, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            _ => continue,
        };
    }
    Some(out)
}

/// `google.protobuf.Struct` → JSON object.
fn decode_struct(bytes: &[u8], depth: usize) -> Option<Value> {
    let mut map = Map::new();
    for f in Fields::new(bytes) {
        let (1, Wire::Bytes(entry)) = f? else {
            continue;
        };
        let mut key = None;
        let mut value = Value::Null;
        for ef in Fields::new(entry) {
            match ef? {
                (1, Wire::Bytes(k)) => key = Some(std::str::from_utf8(k).ok()?.to_string()),
                (2, Wire::Bytes(v)) => value = decode_value(v, depth)?,
                _ => {}
            }
        }
        map.insert(key?, value);
    }
    Some(Value::Object(map))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// Iterates a message's fields; yields `None` once and stops on malformed input.
struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields {
            rest: bytes,
            failed: false,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn field(&mut self) -> Option<(u64, Wire<'a>)> {
        let tag = self.varint()?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            _ => return None,
        };
        Some((tag >> 3, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        self.failed = field.is_none();
        Some(field)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A minimal protobuf encoder for building test metadata.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        bytes_field(1, key.as_bytes(), &mut e);
        bytes_field(2, value, &mut e);
        e
    }

    fn value(j: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        match j {
            Value::Null => {
                varint(1 << 3, &mut out);
                varint(0, &mut out);
            }
            Value::Number(n) => {
                varint(2 << 3 | 1, &mut out);
                out.extend_from_slice(&n.as_f64().unwrap().to_bits().to_le_bytes());
            }
            Value::String(s) => bytes_field(3, s.as_bytes(), &mut out),
            Value::Bool(b) => {
                varint(4 << 3, &mut out);
                varint(u64::from(*b), &mut out);
            }
            Value::Object(_) => bytes_field(5, &structure(j), &mut out),
            Value::Array(items) => {
                let mut list = Vec::new();
                for item in items {
                    bytes_field(1, &value(item), &mut list);
                }
                bytes_field(6, &list, &mut out);
            }
        }
        out
    }

    fn structure(j: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in j.as_object().unwrap() {
            bytes_field(1, &entry(k, &value(v)), &mut out);
        }
        out
    }

    /// Serialized `Metadata` with `filter_metadata[namespace] = {key: claims}` plus noise.
    pub(crate) fn metadata(namespace: &str, key: &str, claims: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        let other = structure(&json!({"x": 1}));
        bytes_field(1, &entry("envoy.other", &other), &mut out);
        let inner = structure(&json!({ key: claims.clone(), "other": "y" }));
        bytes_field(1, &entry(namespace, &inner), &mut out);
        out
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn round_trips_claims_with_exact_types() {
        let claims = json!({
            "sub": "user-a", "n": 8.0, "eightchr": "abcdefgh", "admin": true, "nothing": null,
            "groups": ["beta", "staff"], "realm": {"roles": ["canary"], "level": {"deep": 1.5}}
        });
        let md = metadata("envoy.filters.http.jwt_authn", "payload", &claims);
        assert_eq!(
            verified_claims(&md, "envoy.filters.http.jwt_authn", "payload"),
            Some(claims)
        );
        assert_eq!(
            verified_claims(&md, "envoy.filters.http.jwt_authn", "nope"),
            None
        );
        assert_eq!(verified_claims(&md, "other.ns", "payload"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_metadata_has_no_claims() {
        let md = metadata("ns", "payload", &json!({"sub": "a"}));
        for cut in 0..md.len() {
            // Every truncation either fails or yields a smaller, still well-formed object.
            if let Some(c) = verified_claims(&md[..cut], "ns", "payload") {
                assert!(c.is_object());
            }
        }
        assert_eq!(verified_claims(&[0xff; 64], "ns", "payload"), None);
        assert_eq!(
            verified_claims(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], "ns", "payload"),
            None
        );
        // A payload that is not an object is not claims.
        let md = metadata("ns", "payload", &json!("just a string"));
        assert_eq!(verified_claims(&md, "ns", "payload"), None);
        // Nesting beyond the bound is refused, not recursed into.
        let mut deep = json!({"sub": "a"});
        for _ in 0..100 {
            deep = json!({ "d": deep });
        }
        let md = metadata("ns", "payload", &deep);
        assert_eq!(verified_claims(&md, "ns", "payload"), None);
        assert_eq!(
            verified_claims(&vec![0; MAX_METADATA_BYTES + 1], "ns", "payload"),
            None
        );
    }
}

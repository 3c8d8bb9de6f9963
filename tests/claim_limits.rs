//! The nesting limits README.md ("Foot-guns") documents for token claims, pinned at their
//! exact boundaries: past a limit every claim of the token is lost, not just the deep one.
//! Runs natively and, compiled to wasm32-unknown-unknown, under Node with wasm-bindgen-test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::unsigned_token;
use traffic_color::request::{jwt, metadata};
use wasm_bindgen_test::wasm_bindgen_test;

/// `{"sub": "user-a", "deep": {"d": {"d": ... "x"}}}` with `objects` objects under `deep`: a
/// payload whose deepest value sits inside `objects + 1` objects, the payload included.
fn payload(objects: usize) -> Value {
    let mut deep = json!("x");
    for _ in 0..objects {
        deep = json!({ "d": deep });
    }
    json!({ "sub": "user-a", "deep": deep })
}

// ---------------------------------------------------------------- verified: jwt_authn metadata

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes_field(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(field << 3 | 2);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// A `google.protobuf.Struct` map entry: `key` (1) and its value (2).
fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(1, key.as_bytes(), &mut out);
    bytes_field(2, value, &mut out);
    out
}

/// `google.protobuf.Value`, as jwt_authn writes the payload (numbers as doubles).
fn value(j: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match j {
        Value::Null => out.extend_from_slice(&[1 << 3, 0]),
        Value::Number(n) => {
            out.push(2 << 3 | 1);
            out.extend_from_slice(&n.as_f64().unwrap().to_bits().to_le_bytes());
        }
        Value::String(s) => bytes_field(3, s.as_bytes(), &mut out),
        Value::Bool(b) => out.extend_from_slice(&[4 << 3, u8::from(*b)]),
        Value::Object(m) => {
            let mut fields = Vec::new();
            for (k, v) in m {
                bytes_field(1, &entry(k, &value(v)), &mut fields);
            }
            bytes_field(5, &fields, &mut out);
        }
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

const NS: &str = "envoy.filters.http.jwt_authn";

/// The serialized `envoy.config.core.v3.Metadata` with `filter_metadata[NS]["payload"]`.
fn metadata_with(claims: &Value) -> Vec<u8> {
    let mut filter_struct = Vec::new();
    bytes_field(1, &entry("payload", &value(claims)), &mut filter_struct);
    let mut out = Vec::new();
    bytes_field(1, &entry(NS, &filter_struct), &mut out);
    out
}

#[wasm_bindgen_test(unsupported = test)]
fn verified_claims_keep_32_levels_and_lose_everything_at_33() {
    let at_limit = payload(31); // deepest value inside 32 objects
    assert_eq!(
        metadata::verified_claims(&metadata_with(&at_limit), NS, "payload"),
        Some(at_limit)
    );
    // One level more, anywhere in the payload: `sub` is lost with it.
    assert_eq!(
        metadata::verified_claims(&metadata_with(&payload(32)), NS, "payload"),
        None
    );
    // Arrays count as levels too.
    let mut list = json!("x");
    for _ in 0..32 {
        list = json!([list]);
    }
    let md = metadata_with(&json!({ "sub": "user-a", "l": list }));
    assert_eq!(metadata::verified_claims(&md, NS, "payload"), None);
}

// -------------------------------------------------------------- unverified: decoding the token

fn claims_for(token: &str, paths: &[&[&str]]) -> Option<Value> {
    let paths: Vec<Vec<String>> = paths
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    jwt::unverified_claims_for(token, &paths)
}

#[wasm_bindgen_test(unsupported = test)]
fn unverified_claims_a_rule_reads_keep_127_levels_and_lose_everything_at_128() {
    // serde_json's recursion limit (128), counted from the payload object.
    let at_limit = unsigned_token(&payload(126).to_string());
    let claims = claims_for(&at_limit, &[&["sub"], &["deep"]]).unwrap();
    assert_eq!(claims["sub"], "user-a");
    let past = unsigned_token(&payload(127).to_string());
    assert_eq!(claims_for(&past, &[&["sub"], &["deep"]]), None);
    // A claim no rule reads is skipped without being built, at any depth.
    let claims = claims_for(&past, &[&["sub"]]).unwrap();
    assert_eq!(claims["sub"], "user-a");
}

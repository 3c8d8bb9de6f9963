//! Every decoder of request data on arbitrary input: JWT payloads, query strings, cookies,
//! jwt_authn metadata (protobuf), W3C baggage, the host's serialized header map. Never a panic, and the invariants each one
//! promises.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use traffic_color::request::baggage;
use traffic_color::request::header_map::HeaderMap;
use traffic_color::request::{cookie, jwt, metadata, query};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    names: Vec<&'a str>,
    headers: Vec<String>,
    bytes: &'a [u8],
    key: &'a str,
    value: Option<&'a str>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fuzz_target!(|input: Input<'_>| {
    let names: Vec<String> = input.names.iter().map(|s| s.to_string()).collect();

    // JWT (unverified): claims are always an object.
    if let Some(claims) = jwt::token_in(input.text).and_then(jwt::unverified_claims) {
        assert!(claims.is_object());
        let _ = jwt::lookup(&claims, &names);
    }
    if let Some(claims) = jwt::unverified_claims(input.text) {
        assert!(claims.is_object());
    }
    let _ = jwt::bearer(input.text);
    // Reading only the needed claims answers every lookup as reading them all does.
    let paths: Vec<Vec<String>> = names.iter().map(|n| vec![n.clone()]).collect();
    let whole = jwt::unverified_claims(input.text);
    let needed = jwt::unverified_claims_for(input.text, &paths);
    if let (Some(whole), Some(needed)) = (&whole, &needed) {
        for p in &paths {
            assert_eq!(jwt::lookup(whole, p), jwt::lookup(needed, p));
        }
        assert_eq!(jwt::in_time(whole, Some(0)), jwt::in_time(needed, Some(0)));
    }

    // The host's header map, serialized: any bytes index safely, every pair lies inside them.
    let map = HeaderMap::parse(input.bytes.to_vec());
    for (k, v) in map.iter() {
        assert!(k.len() + v.len() <= input.bytes.len());
    }
    for n in &names {
        let _ = map.get(n);
    }

    // Query strings: one answer per name; a string without `%`/`+` decodes to itself.
    let q = query::first_values(input.text, &names);
    assert_eq!(q.len(), names.len());
    let decoded = query::decode(input.text);
    if !input.text.contains(['%', '+']) {
        assert_eq!(decoded.as_deref(), Some(input.text));
    }
    let _ = query::decode_percent(input.text);

    // Cookies: one answer per name; a found value is a substring of some header.
    let c = cookie::first_values(&input.headers, &names);
    assert_eq!(c.len(), names.len());
    for v in c.into_iter().flatten() {
        assert!(input.headers.iter().any(|h| h.contains(v.as_str())));
    }

    // jwt_authn metadata (protobuf): claims are always an object.
    if let Some(claims) = metadata::verified_claims(input.bytes, input.key, input.text) {
        assert!(claims.is_object());
    }

    // Baggage: no member with our key survives unless it is ours; what was added reads back.
    let _ = baggage::member(input.text, input.key);
    let out = baggage::rewrite(Some(input.text), input.key, input.value);
    if is_token(input.key) && input.value.is_none_or(is_token) {
        let has_key = |h: &str| {
            h.split(',').any(|m| {
                m.split(';')
                    .next()
                    .and_then(|kv| kv.split_once('='))
                    .is_some_and(|(k, _)| k.trim() == input.key)
            })
        };
        assert_eq!(has_key(&out.header), out.added, "{:?}", out.header);
        if out.added {
            assert!(out.header.len() <= baggage::MAX_BYTES);
            assert_eq!(
                baggage::member(&out.header, input.key).as_deref(),
                input.value,
                "{:?}",
                out.header
            );
        }
    }
    let _ = baggage::rewrite(None, input.key, input.value);
});

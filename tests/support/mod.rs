//! Shared helpers for the native and Wasm test binaries.
#![allow(dead_code)]

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod golden;

use traffic_color::config::{ClaimSource, ClaimTrust, FilterConfig};
use traffic_color::lang::eval::DecidedBy;
use traffic_color::request::{RequestFacts, SimpleRequest};

/// Compiles `rules` or fails the test with the rendered diagnostics.
pub fn program(rules: &str) -> traffic_color::lang::Program {
    match traffic_color::lang::compile(rules) {
        Ok(p) => p,
        Err(d) => panic!("{}", traffic_color::lang::render_all(&d, rules)),
    }
}

/// The color `rules` give `req`, with claims read as `trust` says.
pub fn color_with(
    rules: &str,
    trust: ClaimTrust,
    req: &SimpleRequest,
) -> (Option<String>, DecidedBy) {
    let p = program(rules);
    let source = ClaimSource::of(trust);
    let facts = RequestFacts::new(req, &p.needs, &source);
    let d = p.decide(&facts);
    (d.tag.map(|t| t.as_str().to_string()), d.by)
}

pub fn color(rules: &str, req: &SimpleRequest) -> Option<String> {
    color_with(rules, ClaimTrust::Unverified, req).0
}

/// The color a config's verdict gives `req`, as the filter would set it.
pub fn config_color(config: &FilterConfig, req: &SimpleRequest) -> Option<String> {
    traffic_color::verdict::Verdict::for_request(config, req, None)
        .color
        .map(|t| t.as_str().to_string())
}

/// An unsigned JWT (`alg: none`) carrying `claims`.
pub fn unsigned_token(claims: &str) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.", e.encode(r#"{"alg":"none"}"#), e.encode(claims))
}

/// The kinds of the errors `src` is rejected with (empty when it compiles).
pub fn error_kinds(src: &str) -> Vec<traffic_color::lang::ErrorKind> {
    traffic_color::lang::compile(src)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.kind)
        .collect()
}

/// Fragments of the language, valid and not, so token soup reaches deep into the parser and
/// compiler (the property tests and the knobs' robustness test).
pub const FRAGMENTS: &[&str] = &[
    "match",
    "default",
    "{",
    "}",
    "->",
    "\"canary\"",
    "\"stable\"",
    "header",
    "query",
    "cookie",
    "token",
    "[",
    "]",
    "\"x\"",
    "\"a b\"",
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "in",
    "not",
    "exists",
    "bucket",
    ",",
    "5",
    "-3",
    "2.5",
    "1.2.0",
    "1.0.0-rc.1",
    "from",
    "until",
    "\"2020-01-01T00:00:00Z\"",
    "\"2030-01-01T00:00:00+02:00\"",
    "path",
    "method",
    "host",
    "source",
    ".",
    "ip",
    "\"10.0.0.0/8\"",
    "\"::1\"",
    "\n",
    "# c\n",
    "\"unterminated",
    "\"\\q\"",
    "\"\\u{41}\"",
    "\"^a+$\"",
    "\"(\"",
    "starts_with",
    "ends_with",
    "contains",
    "true",
    "false",
    "\"g\"",
    "\"\"",
    "é",
    "\t",
    "@",
    "\"é\"",
    "\"name\"",
    "x",
    "split(\"g\")",
    "bucket(header[\"u\"], \"g\")",
    "split(cookie[\"c\"], \"h\")",
    "visitor",
    "-0.5",
    "100",
    "exists(query[\"q\"])",
    "token[\"a\"][\"b\"]",
    "[\"a\", \"b\"]",
];

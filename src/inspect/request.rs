//! A request described as data: a line of `simulate --requests`, a request the cockpit page
//! builds, or one [`sample`](super::sample) makes up.

use crate::request::{RequestSource, SimpleRequest, query};
use serde::{Deserialize, Serialize};

/// `{"method":"GET","path":"/x?y=1","headers":[["k","v"]],"query":[["k","v"]],
/// "cookies":[["k","v"]],"claims":{..},"source_ip":"10.0.0.1","at":"2026-11-26T12:00:00Z"}`,
/// every field optional. `query` is appended to the path's own query, `cookies` become one
/// `cookie` header, `claims` is the payload `jwt_authn` verified, `at` the proxy's clock.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

impl Default for RequestLine {
    fn default() -> Self {
        RequestLine {
            method: get(),
            path: root(),
            headers: Vec::new(),
            query: Vec::new(),
            cookies: Vec::new(),
            claims: None,
            source_ip: None,
            at: None,
        }
    }
}

impl RequestLine {
    /// The request as the filter would see it; `now` is the clock unless `at` says otherwise.
    /// Header names are lower-cased (HTTP/2 sends them so, and Envoy presents them so).
    pub fn to_request(&self, now: Option<i64>) -> Result<SimpleRequest, String> {
        let mut path = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            path.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            path.push_str(&encode(k));
            path.push('=');
            path.push_str(&encode(v));
        }
        let mut req = SimpleRequest::new(&self.method, &path);
        for (k, v) in &self.headers {
            req = req.with_header(&k.to_ascii_lowercase(), v);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.with_header("cookie", &jar.join("; "));
        }
        req.verified_claims = self.claims.clone();
        req.source_address = self.source_ip.clone();
        req.now = match &self.at {
            Some(t) => {
                Some(crate::lang::time::parse_rfc3339(t).map_err(|e| format!("at `{t}`: {e}"))?)
            }
            None => now,
        };
        Ok(req)
    }
}

/// Percent-encodes everything but unreserved characters; the filter decodes it back.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    debug_assert_eq!(query::decode(&out).as_deref(), Some(s));
    out
}

/// Gives a request without one the unique `x-request-id` Envoy would generate at the edge, so
/// `split("group")` and minted visitor ids spread as they do in the proxy. The same `n` gives
/// the same id, so a request judged under two configs is the same request.
pub fn with_request_id(req: &mut SimpleRequest, n: u64) {
    if req.header(crate::lang::REQUEST_ID).is_none() {
        req.headers
            .push((crate::lang::REQUEST_ID.to_string(), request_id(n)));
    }
}

/// The `n`-th made-up request id, shaped like Envoy's (a UUID v4).
pub fn request_id(n: u64) -> String {
    let h = crate::bucket::murmur3_x86_32(&n.to_le_bytes());
    format!(
        "{h:08x}-{:04x}-4{:03x}-a{:03x}-{n:012x}",
        n & 0xffff,
        h & 0xfff,
        (h >> 12) & 0xfff
    )
}

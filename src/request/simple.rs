//! A request as plain data: for tests, and for tools that evaluate rules outside a proxy.

use super::RequestSource;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone, Default)]
pub struct SimpleRequest {
    /// Header pairs as a client would send them; names are matched case-insensitively.
    pub headers: Vec<(String, String)>,
    pub source_address: Option<String>,
    pub verified_claims: Option<Value>,
    pub now: Option<i64>,
}

impl SimpleRequest {
    /// A request with `:method` and `:path` set, as Envoy presents one.
    pub fn new(method: &str, path: &str) -> Self {
        SimpleRequest::default()
            .with_header(":method", method)
            .with_header(":path", path)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

impl RequestSource for SimpleRequest {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
    }

    fn header_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
            .collect()
    }

    fn source_address(&self) -> Option<String> {
        self.source_address.clone()
    }

    /// Tests set the verified payload directly, whatever the metadata location.
    fn verified_claims(&self, _namespace: &str, _key: &str) -> Option<Value> {
        self.verified_claims.clone()
    }

    fn now(&self) -> Option<i64> {
        self.now
    }
}

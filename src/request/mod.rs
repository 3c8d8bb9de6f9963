//! Turns what the host says about a request into the facts a program reads: lazily, once each,
//! and only what the program needs. Malformed input becomes an absent value, never an error.

pub mod baggage;
pub mod cookie;
pub mod header_map;
// Claims decoding lives with the language (lang/), compiled for size: a token is decoded once
// and cached (`token_cache`), metadata once per request that reads claims.
pub use traffic_color_lang::{jwt, metadata};
pub mod query;
mod simple;
pub mod token_cache;

pub use simple::SimpleRequest;

use crate::config::{ClaimSource, TokenFrom};
use crate::lang::eval::Facts;
use crate::lang::program::Needs;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use token_cache::TokenCache;

/// The host's view of one request. Implemented over proxy-wasm calls in the filter and over
/// plain data in tests and tools.
pub trait RequestSource {
    /// First value of a header (lower-case name, pseudo-headers like `:path` included);
    /// `None` if absent or not UTF-8. Borrowed where the source already holds the request.
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
    /// Every value of a header, in order (`Cookie` may be split over several).
    fn header_values(&self, name: &str) -> Vec<Cow<'_, str>>;
    /// Whether the header is there at all, readable as text or not.
    fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    /// The peer, as Envoy's `source.address` (`ip:port`, IPv6 in brackets).
    fn source_address(&self) -> Option<String>;
    /// The JWT payload an earlier filter verified and stored in dynamic metadata at
    /// `filter_metadata[namespace][key]`; `None` where there is none.
    fn verified_claims(&self, namespace: &str, key: &str) -> Option<Value>;
    /// Unix nanoseconds on the proxy's clock.
    fn now(&self) -> Option<i64>;
}

/// [`Facts`] over a [`RequestSource`], fetching and decoding each thing on first use.
pub struct RequestFacts<'a, R: RequestSource> {
    source: &'a R,
    needs: &'a Needs,
    claims_from: &'a ClaimSource,
    tokens: Option<&'a TokenCache>,
    headers: Vec<OnceCell<Option<Cow<'a, str>>>>,
    path_and_query: OnceCell<Option<Cow<'a, str>>>,
    queries: OnceCell<Vec<Option<String>>>,
    cookies: OnceCell<Vec<Option<String>>>,
    baggage: OnceCell<Vec<Option<String>>>,
    visitor: Option<&'a str>,
    claims: OnceCell<Option<Rc<Value>>>,
    method: OnceCell<Option<Cow<'a, str>>>,
    host: OnceCell<Option<String>>,
}

impl<'a, R: RequestSource> RequestFacts<'a, R> {
    pub fn new(source: &'a R, needs: &'a Needs, claims_from: &'a ClaimSource) -> Self {
        RequestFacts {
            source,
            needs,
            claims_from,
            tokens: None,
            headers: (0..needs.headers.len()).map(|_| OnceCell::new()).collect(),
            path_and_query: OnceCell::new(),
            queries: OnceCell::new(),
            cookies: OnceCell::new(),
            baggage: OnceCell::new(),
            visitor: None,
            claims: OnceCell::new(),
            method: OnceCell::new(),
            host: OnceCell::new(),
        }
    }

    /// The visitor id the verdict read from its cookie or minted.
    pub fn with_visitor(mut self, visitor: Option<&'a str>) -> Self {
        self.visitor = visitor;
        self
    }

    /// Decodes tokens through `cache`, which keeps them across requests.
    pub fn with_token_cache(mut self, cache: &'a TokenCache) -> Self {
        self.tokens = Some(cache);
        self
    }

    fn path_and_query(&self) -> Option<&str> {
        self.path_and_query
            .get_or_init(|| self.source.header(":path"))
            .as_deref()
    }

    fn claims(&self) -> Option<&Value> {
        self.claims
            .get_or_init(|| match self.claims_from {
                ClaimSource::Verified { namespace, key } => {
                    self.source.verified_claims(namespace, key).map(Rc::new)
                }
                ClaimSource::Unverified { from } => {
                    let token = match from {
                        TokenFrom::Header(name) => {
                            return self.token_claims(&self.source.header(name.as_str())?);
                        }
                        TokenFrom::Cookie(name) => {
                            let headers = self.source.header_values("cookie");
                            cookie::first_values(&headers, std::slice::from_ref(name))
                                .pop()
                                .flatten()?
                        }
                    };
                    self.token_claims(&token)
                }
            })
            .as_deref()
    }

    fn token_claims(&self, value: &str) -> Option<Rc<Value>> {
        let token = jwt::token_in(value)?;
        let decode = |t: &str| jwt::unverified_claims_for(t, &self.needs.claims);
        let claims = match self.tokens {
            Some(cache) => cache.claims(token, decode)?,
            None => Rc::new(decode(token)?),
        };
        jwt::in_time(&claims, self.source.now()).then_some(claims)
    }
}

impl<R: RequestSource> Facts for RequestFacts<'_, R> {
    fn header(&self, slot: usize) -> Option<&str> {
        let name = self.needs.headers.get(slot)?;
        self.headers
            .get(slot)?
            .get_or_init(|| self.source.header(name))
            .as_deref()
    }

    fn query(&self, slot: usize) -> Option<&str> {
        self.queries
            .get_or_init(|| {
                let query = self
                    .path_and_query()
                    .and_then(|p| p.split_once('?'))
                    .map_or("", |(_, q)| q.split('#').next().unwrap_or(q));
                query::first_values(query, &self.needs.queries)
            })
            .get(slot)?
            .as_deref()
    }

    fn cookie(&self, slot: usize) -> Option<&str> {
        self.cookies
            .get_or_init(|| {
                let headers = self.source.header_values("cookie");
                cookie::first_values(&headers, &self.needs.cookies)
            })
            .get(slot)?
            .as_deref()
    }

    fn baggage(&self, slot: usize) -> Option<&str> {
        self.baggage
            .get_or_init(|| {
                let values = self.source.header_values("baggage");
                let joined = baggage::join(&values);
                self.needs
                    .baggage
                    .iter()
                    .map(|key| baggage::member(joined.as_deref()?, key))
                    .collect()
            })
            .get(slot)?
            .as_deref()
    }

    fn visitor(&self) -> Option<&str> {
        self.visitor
    }

    fn claim(&self, slot: usize) -> Option<&Value> {
        jwt::lookup(self.claims()?, self.needs.claims.get(slot)?)
    }

    fn path(&self) -> Option<&str> {
        let p = self.path_and_query()?;
        let end = p.find(['?', '#']).unwrap_or(p.len());
        p.get(..end)
    }

    fn method(&self) -> Option<&str> {
        self.method
            .get_or_init(|| self.source.header(":method"))
            .as_deref()
    }

    fn host(&self) -> Option<&str> {
        self.host
            .get_or_init(|| {
                let authority = self
                    .source
                    .header(":authority")
                    .or_else(|| self.source.header("host"))?;
                Some(host_of(&authority).to_ascii_lowercase())
            })
            .as_deref()
    }

    fn source_ip(&self) -> Option<IpAddr> {
        let addr = self.source.source_address()?;
        addr.parse::<SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| addr.parse::<IpAddr>())
            .ok()
    }

    fn now(&self) -> Option<i64> {
        self.source.now()
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `::1`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn host_without_port() {
        assert_eq!(host_of("example.com:8080"), "example.com");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("[::1]:80"), "::1");
    }
}

//! traffic-color: colors requests for canary and beta routing.
//!
//! Everything that decides lives in host-free modules, compiled natively for the tools and
//! tests and to Wasm for the filter:
//! - [`lang`]: the rules language (lexer → parser → compiler → program → evaluator, explain);
//! - [`request`]: decoding a request into facts, lazily and once (headers, query, cookies,
//!   tokens, verified claims, baggage);
//! - [`config`]: the filter's JSON configuration, compiled once;
//! - [`verdict`]: one request's verdict (color, what decided, header and baggage edits, counters);
//! - [`metrics`]: counter names and ids; [`bucket`]: sticky buckets.
//!
//! Only `filter` (built for wasm32-wasip1) talks to the proxy: it reads the host, applies the
//! verdict and logs.

pub mod bucket;
pub mod config;
pub mod config_hash;
pub mod lang;
pub mod metrics;
pub mod outcome;
pub mod request;
pub mod verdict;

#[cfg(target_os = "wasi")]
mod filter;

//! traffic-color: colors requests for canary and beta routing.
//!
//! The language and everything a request is decoded with live in host-free modules
//! ([`lang`], [`request`], [`config`], [`bucket`]); only `filter` (built for wasm32-wasip1)
//! talks to the proxy.

pub mod bucket;
pub mod config;
pub mod lang;
pub mod metrics;
pub mod propagation;
pub mod request;

#[cfg(target_os = "wasi")]
mod filter;

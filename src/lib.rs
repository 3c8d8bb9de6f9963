//! traffic-color: colors requests for canary and beta routing.
//!
//! Everything that decides lives in host-free modules, compiled natively for the tools and
//! tests and to Wasm for the filter:
//! - [`lang`]: the rules language (lexer → parser → compiler → program → evaluator, explain);
//! - [`request`]: decoding a request into facts, lazily and once (headers, query, cookies,
//!   tokens, verified claims, baggage);
//! - [`config`]: the filter's JSON configuration, compiled once;
//! - [`verdict`]: one request's verdict (color, what decided, header and baggage edits, counters);
//! - [`metrics`]: counter names and ids; [`bucket`]: sticky buckets;
//! - [`inspect`]: what the tools show (check, explain, simulate, what changes, samples), shared
//!   by the command-line tool and the browser cockpit.
//!
//! Only `filter` (built for wasm32-wasip1) talks to the proxy: it reads the host, applies the
//! verdict and logs. `browser` (built for wasm32-unknown-unknown, `make cockpit-web`) exports
//! [`inspect::api`] to the cockpit page through wasm-bindgen.

pub use traffic_color_lang::bucket;
pub use traffic_color_lang::{config, config_hash};
// Tools only (the CLI, the cockpit page): kept out of the filter's build entirely, so the
// module's code, and how the compiler inlines the code it shares with them, stay as they were.
#[cfg(not(target_os = "wasi"))]
pub mod inspect;
/// The rules language, in its own crate (lang/) for its own opt-level: see Cargo.toml.
pub use traffic_color_lang as lang;
pub mod metrics;
pub mod outcome;
pub mod request;
pub mod verdict;

#[cfg(target_os = "wasi")]
mod filter;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod browser;

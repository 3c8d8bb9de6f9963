//! The cockpit's calls as text in, JSON text out: what `src/browser.rs` exports to the page,
//! kept here (host-free) so native tests cover it too. Nothing here panics on any input; every
//! failure is `{"error": "..."}` in the answer.

use super::request::RequestLine;
use super::{Judge, simulate};
use serde::Serialize;

/// At most this many synthetic users in [`sample`]: a page asking for more would freeze.
pub const MAX_SAMPLE_USERS: u64 = 100_000;

fn error(message: impl std::fmt::Display) -> String {
    serde_json::json!({ "error": message.to_string() }).to_string()
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(error)
}

fn judge(config: &str) -> Result<Judge, String> {
    Judge::new(config).map_err(|e| format!("config rejected: {e}"))
}

/// A whole number from 0 to `max`, given as a JS number.
fn whole(n: f64, what: &str, max: u64) -> Result<u64, String> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max as f64 {
        Ok(n as u64)
    } else {
        Err(format!(
            "{what} must be a whole number from 0 to {max}, not {n}"
        ))
    }
}

/// [`super::check::check`] as JSON.
pub fn check(config: &str) -> String {
    json(&super::check::check(config))
}

/// The `traffic-color explain --json` object for one request (an empty string is `{}`).
pub fn explain(config: &str, request: &str, now: Option<i64>) -> String {
    let run = || -> Result<String, String> {
        let judge = judge(config)?;
        let line: RequestLine = if request.trim().is_empty() {
            RequestLine::default()
        } else {
            serde_json::from_str(request).map_err(|e| format!("request: {e}"))?
        };
        // No made-up x-request-id: the same answer as `traffic-color explain` for the request.
        let req = line.to_request(now)?;
        Ok(json(&super::explain::explain(&judge, &req)))
    };
    run().unwrap_or_else(error)
}

/// `n` synthetic users plus requests from the rules' literals, as a JSON array of requests.
pub fn sample(config: &str, n: f64) -> String {
    let run = || -> Result<String, String> {
        let n = whole(n, "n", MAX_SAMPLE_USERS)?;
        let config =
            super::config_from_text(config).map_err(|e| format!("config rejected: {e}"))?;
        Ok(json(&super::sample::sample(&config, n)))
    };
    run().unwrap_or_else(error)
}

/// Which of `requests` (a JSON array of requests) change color from `old` to `new`.
pub fn changes(old: &str, new: &str, requests: &str, now: Option<i64>) -> String {
    let run = || -> Result<String, String> {
        let old = judge(old).map_err(|e| format!("old {e}"))?;
        let new = judge(new).map_err(|e| format!("new {e}"))?;
        let requests: Vec<RequestLine> =
            serde_json::from_str(requests).map_err(|e| format!("requests: {e}"))?;
        Ok(json(&simulate::changes(&old, &new, &requests, now)?))
    };
    run().unwrap_or_else(error)
}

/// The program's knobs (see [`crate::lang::knobs`]) as a JSON array; `{"error"}` when the
/// config is rejected.
pub fn knobs(config: &str) -> String {
    match super::config_from_text(config) {
        Ok(c) => json(&crate::lang::knobs::knobs(&c.rules)),
        Err(e) => error(format!("config rejected: {e}")),
    }
}

/// `{"rules": text}` with knob `index` set to select `share` percent.
pub fn set_knob(rules: &str, index: f64, share: f64) -> String {
    let run = || -> Result<String, String> {
        let index = whole(index, "index", u32::MAX.into())?;
        let index = usize::try_from(index).map_err(|e| e.to_string())?;
        let text = crate::lang::knobs::set_knob(rules, index, share).map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "rules": text }).to_string())
    };
    run().unwrap_or_else(error)
}

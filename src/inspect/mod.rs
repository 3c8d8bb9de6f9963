//! What the tools show about a config, without a proxy: the command-line tool (`check`,
//! `explain`, `simulate`) and the browser cockpit (`src/browser.rs`) both build on these, so
//! the page cannot say anything the CLI would not, and both say what the filter does: every
//! verdict here is [`Verdict::for_request`](crate::verdict::Verdict::for_request).
//!
//! Host-free like the rest of the core: no clock and no files. Callers pass the time (`now`,
//! Unix nanoseconds) and the text.

pub mod api;
pub mod check;
pub mod explain;
pub mod request;
pub mod sample;
pub mod simulate;

use crate::config::{ClaimSource, ClaimTrust, ConfigError, FilterConfig};
use crate::request::SimpleRequest;
use std::borrow::Cow;
use std::cell::OnceCell;

/// The JSON the filter would be given for this text: the text itself when it is a JSON config
/// (starts with `{`), otherwise a rules program wrapped as `{"rules": <text>}`.
pub fn filter_json(text: &str) -> Cow<'_, str> {
    if text.trim_start().starts_with('{') {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(serde_json::json!({ "rules": text }).to_string())
    }
}

/// A config (or rules program, see [`filter_json`]) compiled.
pub fn config_from_text(text: &str) -> Result<FilterConfig, ConfigError> {
    FilterConfig::from_json(filter_json(text).as_bytes())
}

/// A config as requests are judged under it. A request that carries claims (`--claims`, a
/// `claims` field) is judged with the claims taken as verified, whatever the config's trust
/// says: the user states what `jwt_authn` would have stored. That twin is compiled on first
/// need, so the page's explain of a request without claims compiles the config once.
pub struct Judge {
    pub config: FilterConfig,
    text: String,
    verified: OnceCell<Option<FilterConfig>>,
}

impl Judge {
    pub fn new(text: &str) -> Result<Judge, ConfigError> {
        Ok(Judge::with_config(config_from_text(text)?, text))
    }

    /// `config`, already compiled from `text`.
    pub fn with_config(config: FilterConfig, text: &str) -> Judge {
        Judge {
            config,
            text: text.to_string(),
            verified: OnceCell::new(),
        }
    }

    /// The config `req` is judged under.
    pub fn config_for(&self, req: &SimpleRequest) -> &FilterConfig {
        if req.verified_claims.is_none() {
            return &self.config;
        }
        let verified = self.verified.get_or_init(|| {
            // The text compiled once already, so it compiles again.
            let mut verified = config_from_text(&self.text).ok()?;
            verified.claims = ClaimSource::of(ClaimTrust::Verified);
            Some(verified)
        });
        verified.as_ref().unwrap_or(&self.config)
    }
}

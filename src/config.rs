//! The filter's JSON configuration (Envoy `configuration`, Istio `pluginConfig`), parsed strictly
//! and compiled once. Every problem is reported with where it is: JSON line/column, or the
//! rules' own diagnostics.

use crate::lang::{self, Diagnostic, Program};
use serde::Deserialize;
use std::fmt;

/// Where `token[...]` claims come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimTrust {
    /// Only a payload an earlier filter (Envoy `jwt_authn`, Istio RequestAuthentication) verified.
    #[default]
    Verified,
    /// The bearer token's payload, decoded without checking its signature: only for a hop behind
    /// a gateway that verified the token already.
    Unverified,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: String,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default)]
    jwt: RawJwt,
    #[serde(default)]
    debug_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default)]
    trust: ClaimTrust,
}

fn default_header() -> String {
    DEFAULT_HEADER.to_string()
}

pub const DEFAULT_HEADER: &str = "x-version-route";

/// A validated, lower-case HTTP header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName(String);

impl HeaderName {
    pub fn parse(name: &str) -> Option<HeaderName> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        ok.then(|| HeaderName(name.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A compiled configuration, shared by every request of a VM.
#[derive(Debug)]
pub struct FilterConfig {
    pub program: Program,
    pub header: HeaderName,
    pub trust: ClaimTrust,
    pub debug_header: Option<HeaderName>,
    /// The rules' text, kept for logs and explanations.
    pub rules: String,
}

#[derive(Debug)]
pub enum ConfigError {
    Empty,
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    HeaderName {
        key: &'static str,
        value: String,
    },
    Rules {
        source: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Empty => write!(
                f,
                "no configuration: expected JSON like {{\"rules\": \"default -> \\\"stable\\\"\"}}"
            ),
            ConfigError::Json {
                line,
                column,
                message,
            } => write!(
                f,
                "invalid config JSON at line {line}, column {column}: {message}"
            ),
            ConfigError::HeaderName { key, value } => write!(
                f,
                "invalid `{key}` \"{}\": use letters, digits, `-`, `_` or `.`",
                value.escape_debug()
            ),
            ConfigError::Rules {
                source,
                diagnostics,
            } => {
                let n = diagnostics.len();
                writeln!(
                    f,
                    "rules rejected with {n} error{}:",
                    if n == 1 { "" } else { "s" }
                )?;
                write!(f, "{}", lang::render_all(diagnostics, source))
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl FilterConfig {
    pub fn from_json(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::Empty);
        }
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_string(),
        })?;
        let header = HeaderName::parse(&raw.header).ok_or_else(|| ConfigError::HeaderName {
            key: "header",
            value: raw.header.clone(),
        })?;
        let debug_header = match raw.debug_header {
            None => None,
            Some(h) => Some(HeaderName::parse(&h).ok_or(ConfigError::HeaderName {
                key: "debug_header",
                value: h,
            })?),
        };
        let program = lang::compile(&raw.rules).map_err(|diagnostics| ConfigError::Rules {
            source: raw.rules.clone(),
            diagnostics,
        })?;
        Ok(FilterConfig {
            program,
            header,
            trust: raw.jwt.trust,
            debug_header,
            rules: raw.rules,
        })
    }
}

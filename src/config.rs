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
    #[serde(default)]
    keep: bool,
    #[serde(default)]
    baggage: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default)]
    trust: ClaimTrust,
    metadata_namespace: Option<String>,
    metadata_key: Option<String>,
    from: Option<RawTokenFrom>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum RawTokenFrom {
    Header(String),
    Cookie(String),
}

/// Where `jwt_authn` puts the payload: Istio's RequestAuthentication uses `payload`; plain
/// Envoy uses whatever `payload_in_metadata` names.
pub const DEFAULT_METADATA_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
pub const DEFAULT_METADATA_KEY: &str = "payload";

/// Where `token[...]` claims are read from, resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSource {
    /// The payload an earlier filter verified, at `filter_metadata[namespace][key]`.
    Verified { namespace: String, key: String },
    /// The payload of a token decoded without verification.
    Unverified { from: TokenFrom },
}

impl ClaimSource {
    pub fn trust(&self) -> ClaimTrust {
        match self {
            ClaimSource::Verified { .. } => ClaimTrust::Verified,
            ClaimSource::Unverified { .. } => ClaimTrust::Unverified,
        }
    }

    /// The default source for a trust level.
    pub fn of(trust: ClaimTrust) -> ClaimSource {
        match trust {
            ClaimTrust::Verified => ClaimSource::Verified {
                namespace: DEFAULT_METADATA_NAMESPACE.to_string(),
                key: DEFAULT_METADATA_KEY.to_string(),
            },
            ClaimTrust::Unverified => ClaimSource::Unverified {
                from: TokenFrom::Header(HeaderName("authorization".to_string())),
            },
        }
    }
}

/// Where an unverified token is taken from. A header's value may carry a `Bearer ` scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFrom {
    Header(HeaderName),
    Cookie(String),
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

    /// The name given for config key `key`, or the error naming that key.
    fn for_key(key: &'static str, value: String) -> Result<HeaderName, ConfigError> {
        HeaderName::parse(&value).ok_or(ConfigError::HeaderName { key, value })
    }
}

/// A compiled configuration, shared by every request of a VM.
#[derive(Debug)]
pub struct FilterConfig {
    pub program: Program,
    pub header: HeaderName,
    pub claims: ClaimSource,
    pub debug_header: Option<HeaderName>,
    /// Keep a color an earlier, trusted hop set (header, or baggage member) instead of
    /// recomputing it. Off by default: at the edge, a client must not choose its color.
    pub keep: bool,
    /// Also write the color as this W3C `baggage` member (and, with `keep`, read it back).
    pub baggage: Option<HeaderName>,
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
    /// A `jwt` key that only means something under the other trust level.
    JwtKey {
        key: &'static str,
        trust: &'static str,
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
                crate::lang::error::escape(value)
            ),
            ConfigError::JwtKey { key, trust } => {
                write!(f, "`jwt.{key}` applies only with `\"trust\": \"{trust}\"`")
            }
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

fn claim_source(jwt: RawJwt) -> Result<ClaimSource, ConfigError> {
    match jwt.trust {
        ClaimTrust::Verified => {
            if jwt.from.is_some() {
                return Err(ConfigError::JwtKey {
                    key: "from",
                    trust: "unverified",
                });
            }
            Ok(ClaimSource::Verified {
                namespace: jwt
                    .metadata_namespace
                    .unwrap_or_else(|| DEFAULT_METADATA_NAMESPACE.to_string()),
                key: jwt
                    .metadata_key
                    .unwrap_or_else(|| DEFAULT_METADATA_KEY.to_string()),
            })
        }
        ClaimTrust::Unverified => {
            if jwt.metadata_key.is_some() || jwt.metadata_namespace.is_some() {
                let key = if jwt.metadata_key.is_some() {
                    "metadata_key"
                } else {
                    "metadata_namespace"
                };
                return Err(ConfigError::JwtKey {
                    key,
                    trust: "verified",
                });
            }
            let from = match jwt.from {
                None => TokenFrom::Header(HeaderName("authorization".to_string())),
                Some(RawTokenFrom::Header(h)) => {
                    TokenFrom::Header(HeaderName::parse(&h).ok_or(ConfigError::HeaderName {
                        key: "jwt.from.header",
                        value: h,
                    })?)
                }
                Some(RawTokenFrom::Cookie(c)) if !c.is_empty() => TokenFrom::Cookie(c),
                Some(RawTokenFrom::Cookie(c)) => {
                    return Err(ConfigError::HeaderName {
                        key: "jwt.from.cookie",
                        value: c,
                    });
                }
            };
            Ok(ClaimSource::Unverified { from })
        }
    }
}

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
        let header = HeaderName::for_key("header", raw.header)?;
        let debug_header = raw
            .debug_header
            .map(|h| HeaderName::for_key("debug_header", h))
            .transpose()?;
        let baggage = raw
            .baggage
            .map(|b| HeaderName::for_key("baggage", b))
            .transpose()?;
        let claims = claim_source(raw.jwt)?;
        let program = lang::compile(&raw.rules).map_err(|diagnostics| ConfigError::Rules {
            source: raw.rules.clone(),
            diagnostics,
        })?;
        Ok(FilterConfig {
            program,
            header,
            claims,
            debug_header,
            keep: raw.keep,
            baggage,
            rules: raw.rules,
        })
    }
}

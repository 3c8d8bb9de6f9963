//! The filter's JSON configuration (Envoy `configuration`, Istio `pluginConfig`), parsed strictly
//! and compiled once. Every problem is reported with where it is: JSON line/column, or the
//! rules' own diagnostics.

use crate::{self as lang, Diagnostic, Program};
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
    #[serde(default)]
    visitor: Option<RawVisitor>,
    #[serde(default)]
    filter_state: bool,
    #[serde(default)]
    outcome_metrics: bool,
}

impl RawConfig {
    #[inline(never)] // V8 compiles each function alone: see lang::compile
    fn from_json(bytes: &[u8]) -> Result<RawConfig, ConfigError> {
        serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_string(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVisitor {
    #[serde(default = "default_visitor_cookie")]
    cookie: String,
    #[serde(default = "default_visitor_max_age")]
    max_age: u64,
    #[serde(default = "default_visitor_path")]
    path: String,
    #[serde(default = "yes")]
    secure: bool,
    #[serde(default = "yes")]
    http_only: bool,
    #[serde(default)]
    same_site: SameSite,
}

fn default_visitor_cookie() -> String {
    "tc-visitor".to_string()
}

/// 30 days: long enough for a release, short enough that a visitor is re-drawn for the next.
fn default_visitor_max_age() -> u64 {
    30 * 24 * 3600
}

fn default_visitor_path() -> String {
    "/".to_string()
}

fn yes() -> bool {
    true
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// The cookie that keeps an anonymous visitor's id, so a visitor keeps the version the first
/// request drew: `Set-Cookie` attributes as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorCookie {
    pub name: String,
    pub max_age: u64,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
}

impl VisitorCookie {
    /// The `Set-Cookie` value that gives a browser `id`.
    pub fn set_cookie(&self, id: &str) -> String {
        let mut v = format!(
            "{}={id}; Max-Age={}; Path={}",
            self.name, self.max_age, self.path
        );
        if self.secure {
            v.push_str("; Secure");
        }
        if self.http_only {
            v.push_str("; HttpOnly");
        }
        v.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        v
    }
}

/// An RFC 6265 cookie name: an HTTP token.
fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
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

    /// The name given for config key `key` (found at `at`), or the error naming that key.
    fn for_key(key: &'static str, value: String, at: At) -> Result<HeaderName, ConfigError> {
        match HeaderName::parse(&value) {
            Some(name) => Ok(name),
            None => Err(ConfigError::HeaderName { key, value, at }),
        }
    }

    /// A header the filter may write on every request (`header`) or response (`debug_header`):
    /// not one that frames the message, carries credentials or the authority, is set by proxies
    /// for others to trust, carries the trace, or belongs to Envoy.
    fn writable(
        key: &'static str,
        value: String,
        at: At,
        response: bool,
    ) -> Result<HeaderName, ConfigError> {
        let name = HeaderName::for_key(key, value.clone(), at)?;
        match reserved(name.as_str(), response) {
            Some(why) => Err(ConfigError::ReservedHeader {
                key,
                value,
                why,
                at,
            }),
            None => Ok(name),
        }
    }
}

/// Why the filter must never write header `name` (lower-case), or `None` when it may.
fn reserved(name: &str, response: bool) -> Option<&'static str> {
    const FRAMING: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-type",
        "content-encoding",
        "expect",
    ];
    const IDENTITY: &[&str] = &[
        "host",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ];
    const FORWARDING: &[&str] = &[
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-client-cert",
        "forwarded",
        "x-real-ip",
        "via",
    ];
    const TRACING: &[&str] = &[
        "baggage",
        "traceparent",
        "tracestate",
        "x-request-id",
        "b3",
        "x-cloud-trace-context",
    ];
    const RESPONSE: &[&str] = &[
        "location",
        "www-authenticate",
        "proxy-authenticate",
        "cache-control",
        "vary",
        "etag",
        "expires",
        "date",
        "server",
        "strict-transport-security",
        "content-security-policy",
        "retry-after",
    ];
    if FRAMING.contains(&name) {
        Some("it frames the HTTP message; overwriting it breaks requests")
    } else if IDENTITY.contains(&name) {
        Some("it carries the request's authority or credentials")
    } else if FORWARDING.contains(&name) {
        Some("proxies set it and other filters and upstreams trust it")
    } else if TRACING.contains(&name) || name.starts_with("x-b3-") || name.starts_with("x-ot-") {
        Some("it carries the trace context (use `baggage` to carry the color in baggage)")
    } else if name.starts_with("x-envoy-") {
        Some("Envoy owns the x-envoy- headers and may act on them")
    } else if response && (RESPONSE.contains(&name) || name.starts_with("access-control-")) {
        Some("clients and caches act on this response header")
    } else {
        None
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
    /// Mint and keep a visitor id in this cookie (for `visitor` in the rules).
    pub visitor: Option<VisitorCookie>,
    /// Publish the color and what decided in Envoy's filter state, for access logs and other
    /// filters (`wasm.traffic_color.color`, `wasm.traffic_color.decided`).
    pub filter_state: bool,
    /// Count each colored request's response class and record its duration (issue 13's
    /// outcome metrics). Off by default: reading the response's status makes Envoy call back
    /// into the module to hand it over, which alone costs more per request than everything
    /// else a one-rule program does beyond a minimal filter (BENCHMARKS.md, "Outcome metrics").
    pub outcome_metrics: bool,
}

/// A line and column (1-based) in the JSON config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
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
        at: At,
    },
    /// A header the filter would write, but that carries the request's framing, credentials,
    /// forwarding or tracing: owning it would break requests or open a hole.
    ReservedHeader {
        key: &'static str,
        value: String,
        why: &'static str,
        at: At,
    },
    /// A `visitor` setting a browser would refuse or misread.
    Visitor {
        key: &'static str,
        why: &'static str,
        at: At,
    },
    /// A `jwt` key that only means something under the other trust level.
    JwtKey {
        key: &'static str,
        trust: &'static str,
        at: At,
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
                "no configuration at line 1, column 1: expected JSON like {{\"rules\": \"default -> \\\"stable\\\"\"}}"
            ),
            ConfigError::Json {
                line,
                column,
                message,
            } => write!(
                f,
                "invalid config JSON at line {line}, column {column}: {message}"
            ),
            ConfigError::HeaderName { key, value, at } => write!(
                f,
                "invalid `{key}` \"{}\" at {at}: use letters, digits, `-`, `_` or `.`",
                crate::error::escape(value)
            ),
            ConfigError::ReservedHeader {
                key,
                value,
                why,
                at,
            } => write!(
                f,
                "`{key}` \"{}\" at {at} cannot be the filter's: {why}",
                crate::error::escape(value)
            ),
            ConfigError::Visitor { key, why, at } => {
                write!(f, "invalid `visitor.{key}` at {at}: {why}")
            }
            ConfigError::JwtKey { key, trust, at } => write!(
                f,
                "`jwt.{key}` at {at} applies only with `\"trust\": \"{trust}\"`"
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

fn visitor_cookie(
    v: RawVisitor,
    at: &impl Fn(&[&str]) -> At,
) -> Result<VisitorCookie, ConfigError> {
    let fail = |key: &'static str, why: &'static str| ConfigError::Visitor {
        key,
        why,
        at: at(&["visitor", key]),
    };
    if !is_cookie_name(&v.cookie) {
        return Err(fail(
            "cookie",
            "a cookie name is 1-128 characters of letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    let path_ok = v.path.starts_with('/')
        && v.path.len() <= 1024
        && v.path
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b';');
    if !path_ok {
        return Err(fail(
            "path",
            "a cookie path starts with `/` and has no spaces, `;` or control characters",
        ));
    }
    if v.same_site == SameSite::None && !v.secure {
        return Err(fail(
            "same_site",
            "browsers drop a `SameSite=None` cookie that is not `Secure`",
        ));
    }
    Ok(VisitorCookie {
        name: v.cookie,
        max_age: v.max_age,
        path: v.path,
        secure: v.secure,
        http_only: v.http_only,
        same_site: v.same_site,
    })
}

fn claim_source(jwt: RawJwt, at: &impl Fn(&[&str]) -> At) -> Result<ClaimSource, ConfigError> {
    match jwt.trust {
        ClaimTrust::Verified => {
            if jwt.from.is_some() {
                return Err(ConfigError::JwtKey {
                    key: "from",
                    trust: "unverified",
                    at: at(&["jwt", "from"]),
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
                    at: at(&["jwt", key]),
                });
            }
            let from = match jwt.from {
                None => TokenFrom::Header(HeaderName("authorization".to_string())),
                Some(RawTokenFrom::Header(h)) => TokenFrom::Header(HeaderName::for_key(
                    "jwt.from.header",
                    h,
                    at(&["jwt", "from", "header"]),
                )?),
                Some(RawTokenFrom::Cookie(c)) if !c.is_empty() => TokenFrom::Cookie(c),
                Some(RawTokenFrom::Cookie(c)) => {
                    return Err(ConfigError::HeaderName {
                        key: "jwt.from.cookie",
                        value: c,
                        at: at(&["jwt", "from", "cookie"]),
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
        let raw = RawConfig::from_json(bytes)?;
        let at = |path: &[&str]| json_position(bytes, path);
        let header = HeaderName::writable("header", raw.header, at(&["header"]), false)?;
        let debug_header = raw
            .debug_header
            .map(|h| HeaderName::writable("debug_header", h, at(&["debug_header"]), true))
            .transpose()?;
        let baggage = raw
            .baggage
            .map(|b| HeaderName::for_key("baggage", b, at(&["baggage"])))
            .transpose()?;
        let claims = claim_source(raw.jwt, &at)?;
        if let ClaimSource::Unverified {
            from: TokenFrom::Header(token),
        } = &claims
            && token == &header
        {
            return Err(ConfigError::ReservedHeader {
                key: "header",
                value: header.as_str().to_string(),
                why: "the token is read from it (`jwt.from.header`)",
                at: at(&["header"]),
            });
        }
        let visitor = raw.visitor.map(|v| visitor_cookie(v, &at)).transpose()?;
        let program = program_of(&raw.rules, visitor.is_some())?;
        Ok(FilterConfig {
            program,
            header,
            claims,
            debug_header,
            keep: raw.keep,
            baggage,
            rules: raw.rules,
            visitor,
            filter_state: raw.filter_state,
            outcome_metrics: raw.outcome_metrics,
        })
    }
}

/// The program of `rules`, which may read `visitor` only if the config has a visitor cookie.
/// Apart from `from_json` to keep each function small (see lang::compile).
#[inline(never)]
fn program_of(rules: &str, has_visitor: bool) -> Result<Program, ConfigError> {
    let program = lang::compile(rules).map_err(|diagnostics| ConfigError::Rules {
        source: rules.to_string(),
        diagnostics,
    })?;
    if let (Some(span), false) = (program.needs.visitor, has_visitor) {
        let mut diagnostic = Diagnostic::new(lang::ErrorKind::VisitorNotConfigured, span);
        diagnostic.rule = program
            .rules
            .iter()
            .position(|r| r.span.start <= span.start && span.end <= r.span.end)
            .map(|i| i + 1);
        return Err(ConfigError::Rules {
            source: rules.to_string(),
            diagnostics: vec![diagnostic],
        });
    }
    Ok(program)
}

/// Where the value of `path` (keys from the top-level object down) starts in `json`, for errors
/// found after parsing; the start of the document when the path is not there (a default).
/// Only called on text serde already parsed, and it never reads past the end.
fn json_position(json: &[u8], path: &[&str]) -> At {
    let offset = find_value(json, skip_ws(json, 0), path).unwrap_or_else(|| skip_ws(json, 0));
    let before = &json[..offset.min(json.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    At { line, column }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string starting at `i` (its opening quote).
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the value starting at `i`.
fn value_end(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => string_end(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match json.get(j)? {
                    b'"' => {
                        j = string_end(json, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while json.get(j).is_some_and(|b| !b",]} \t\r\n".contains(b)) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The offset of the value at `path` inside the object starting at `i`.
fn find_value(json: &[u8], i: usize, path: &[&str]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    if json.get(i) != Some(&b'{') {
        return None;
    }
    let mut j = skip_ws(json, i + 1);
    while json.get(j) == Some(&b'"') {
        let key_end = string_end(json, j)?;
        let key: String = serde_json::from_slice(&json[j..key_end]).ok()?;
        let value = skip_ws(json, skip_ws(json, key_end) + 1);
        if key == *first {
            return if rest.is_empty() {
                Some(value)
            } else {
                find_value(json, value, rest)
            };
        }
        j = skip_ws(json, value_end(json, value)?);
        if json.get(j) == Some(&b',') {
            j = skip_ws(json, j + 1);
        }
    }
    None
}

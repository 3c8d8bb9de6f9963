//! A request described on the command line: flags, a raw HTTP request, or a curl command line.

use serde_json::Value;
use traffic_color::inspect::request::encode;
use traffic_color::request::{RequestSource, SimpleRequest};

#[derive(Debug, Default, clap::Args)]
pub struct RequestArgs {
    /// A request header, `name=value` or `name: value` (repeatable)
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// A query parameter, `name=value`, appended to the path's query (repeatable)
    #[arg(long = "query", short = 'q', value_name = "NAME=VALUE")]
    pub queries: Vec<String>,
    /// A cookie, `name=value` (repeatable)
    #[arg(long = "cookie", short = 'b', value_name = "NAME=VALUE")]
    pub cookies: Vec<String>,
    /// Verified JWT claims as a JSON object (as jwt_authn would have stored them)
    #[arg(long, value_name = "JSON")]
    pub claims: Option<String>,
    /// A bearer token, sent as `Authorization: Bearer TOKEN`
    #[arg(long, value_name = "JWT")]
    pub token: Option<String>,
    /// Path, with or without a query string
    #[arg(long, default_value = "/")]
    pub path: String,
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Host (the :authority)
    #[arg(long)]
    pub host: Option<String>,
    /// The client address as the proxy sees it
    #[arg(long = "source-ip", value_name = "IP")]
    pub source_ip: Option<String>,
    /// The proxy's clock, RFC 3339 (default: now)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// A raw HTTP/1 request (request line and headers) from a file, `-` for stdin
    #[arg(long, value_name = "FILE", conflicts_with_all = ["curl"])]
    pub raw: Option<std::path::PathBuf>,
    /// A curl command line, e.g. "curl -H 'x-canary: true' 'http://shop/api?v=2'"
    #[arg(long, value_name = "COMMAND")]
    pub curl: Option<String>,
}

fn split_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    let (k, v) = s
        .split_once([':', '='])
        .ok_or_else(|| format!("{what} `{s}`: expected NAME=VALUE"))?;
    Ok((k.trim(), v.trim_start()))
}

impl RequestArgs {
    pub fn build(&self) -> Result<SimpleRequest, String> {
        let mut req = if let Some(raw) = &self.raw {
            parse_raw(&crate::load::read(raw)?)?
        } else if let Some(curl) = &self.curl {
            parse_curl(curl)?
        } else {
            let mut r = SimpleRequest::new(&self.method, &self.path);
            if let Some(h) = &self.host {
                r = r.with_header(":authority", h);
            }
            r
        };
        for h in &self.headers {
            let (k, v) = split_pair(h, "--header")?;
            req = req.with_header(&k.to_ascii_lowercase(), v);
        }
        if !self.queries.is_empty() {
            let mut path = req
                .header(":path")
                .map_or_else(|| "/".to_string(), |p| p.into_owned());
            for (i, q) in self.queries.iter().enumerate() {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                let sep = if i == 0 && !path.contains('?') {
                    '?'
                } else {
                    '&'
                };
                path.push(sep);
                path.push_str(&encode(k));
                path.push('=');
                path.push_str(&encode(v));
            }
            set_header(&mut req, ":path", &path);
        }
        if !self.cookies.is_empty() {
            req = req.with_header("cookie", &self.cookies.join("; "));
        }
        if let Some(t) = &self.token {
            req = req.with_header("authorization", &format!("Bearer {t}"));
        }
        if let Some(c) = &self.claims {
            let claims: Value =
                serde_json::from_str(c).map_err(|e| format!("--claims: invalid JSON: {e}"))?;
            if !claims.is_object() {
                return Err("--claims: expected a JSON object".into());
            }
            req.verified_claims = Some(claims);
        }
        if let Some(ip) = &self.source_ip {
            req.source_address = Some(ip.clone());
        }
        req.now = match &self.at {
            Some(t) => Some(
                traffic_color::lang::time::parse_rfc3339(t)
                    .map_err(|e| format!("--at `{t}`: {e}"))?,
            ),
            None => traffic_color::lang::time::unix_nanos(std::time::SystemTime::now()),
        };
        Ok(req)
    }
}

fn set_header(req: &mut SimpleRequest, name: &str, value: &str) {
    req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    req.headers.push((name.to_string(), value.to_string()));
}

/// `GET /path?x=1 HTTP/1.1` then `Name: value` lines up to a blank line.
pub fn parse_raw(text: &str) -> Result<SimpleRequest, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "raw request: expected `METHOD /path HTTP/1.1`, found `{first}`"
        ));
    };
    let mut req = SimpleRequest::new(method, target);
    for line in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("raw request: header line without `:`: `{line}`"))?;
        let k = k.trim().to_ascii_lowercase();
        let k = if k == "host" {
            ":authority".to_string()
        } else {
            k
        };
        req = req.with_header(&k, v.trim());
    }
    Ok(req)
}

/// The parts of a curl command line that shape a request: URL, -X, -H, -b, --cookie.
pub fn parse_curl(line: &str) -> Result<SimpleRequest, String> {
    let words = shlex::split(line).ok_or("--curl: unbalanced quotes")?;
    let mut words = words.into_iter().peekable();
    if words.peek().is_some_and(|w| w == "curl") {
        words.next();
    }
    let (mut method, mut url, mut headers) = ("GET".to_string(), None, Vec::new());
    while let Some(w) = words.next() {
        match w.as_str() {
            "-X" | "--request" => method = words.next().ok_or("--curl: -X needs a method")?,
            "-H" | "--header" => {
                let h = words.next().ok_or("--curl: -H needs a header")?;
                let (k, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("--curl: header `{h}` has no `:`"))?;
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            "-b" | "--cookie" => {
                let c = words.next().ok_or("--curl: -b needs cookies")?;
                headers.push(("cookie".to_string(), c));
            }
            "-I" | "--head" => method = "HEAD".to_string(),
            w if w.starts_with('-') => {}
            _ => url = Some(w),
        }
    }
    let url = url.ok_or("--curl: no URL")?;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        },
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let mut req = SimpleRequest::new(&method, &path).with_header(":authority", authority);
    for (k, v) in headers {
        let k = if k == "host" {
            ":authority".to_string()
        } else {
            k
        };
        if k == ":authority" {
            set_header(&mut req, &k, &v);
        } else {
            req = req.with_header(&k, &v);
        }
    }
    Ok(req)
}

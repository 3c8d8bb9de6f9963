//! The HTTP side: routing, the safety rules every request passes first, and the tiny_http
//! glue (a thread per request; Server-Sent Events written straight to the socket).
//!
//! Safety (docs/cockpit.md): loopback by default and a token off loopback (checked at start);
//! on a loopback bind the Host header must name a loopback host, so a DNS-rebound name cannot
//! reach the API from a web page; every POST needs `Content-Type: application/json` (a form
//! cannot send it without a CORS preflight, which this server never grants), no foreign
//! `Origin`, and the bearer token when one is set.

use super::{Cockpit, assets};
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Largest POST body read (a rules program is a few KB).
const MAX_BODY: usize = 1 << 20;
/// Requests handled at once; more are answered 503 on the spot.
const MAX_THREADS: usize = 64;
/// Live event streams at once.
const MAX_STREAMS: usize = 32;

pub struct Req {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn path(&self) -> &str {
        self.url.split(['?', '#']).next().unwrap_or("")
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Static assets may be cached briefly; API answers never.
    pub cache: bool,
}

pub enum Reply {
    Done(Resp),
    Events,
}

fn json_resp(status: u16, v: &Value) -> Resp {
    Resp {
        status,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
        cache: false,
    }
}

fn error(status: u16, msg: &str) -> Resp {
    json_resp(status, &json!({ "error": msg }))
}

/// The host part of a Host header (`[::1]:9902` -> `::1`, `localhost:9902` -> `localhost`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host_name(host);
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request is refused before routing, if it is.
pub fn refuse(c: &Cockpit, req: &Req) -> Option<Resp> {
    let host = req.header("host").unwrap_or("");
    if c.listen.ip().is_loopback() && !is_loopback_host(host) {
        return Some(error(
            403,
            "the Host header must name a loopback host (localhost, 127.0.0.1, [::1]) when the cockpit listens on loopback",
        ));
    }
    if req.method != "POST" {
        return None;
    }
    let json_type = req
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Some(error(
            415,
            "POST bodies must be Content-Type: application/json",
        ));
    }
    if let Some(origin) = req.header("origin") {
        let own = format!("http://{host}");
        if !origin.trim().eq_ignore_ascii_case(&own) {
            return Some(error(
                403,
                &format!("cross-origin request refused: Origin `{origin}` is not {own}"),
            ));
        }
    }
    if let Some(token) = &c.token {
        let given = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return Some(error(
                401,
                "missing or wrong token: send Authorization: Bearer <token>",
            ));
        }
    }
    None
}

fn body_json(req: &Req) -> Result<Value, Resp> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(error(400, "the body must be a JSON object")),
        Err(e) => Err(error(400, &format!("the body is not JSON: {e}"))),
    }
}

fn operator(body: &Value) -> Result<Option<String>, Resp> {
    match body.get("operator") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(400, "`operator` must be a string")),
    }
}

/// Routes a request that passed [`refuse`].
pub fn route(c: &Cockpit, req: &Req) -> Reply {
    let path = req.path();
    match (req.method.as_str(), path) {
        ("GET", "/api/state") => Reply::Done(json_resp(200, &c.state_json())),
        ("GET", "/api/audit") => Reply::Done(json_resp(200, &c.audit_json())),
        ("GET", "/api/events") => Reply::Events,
        ("POST", "/api/push" | "/api/rollback" | "/api/stop") => {
            let body = match body_json(req) {
                Ok(b) => b,
                Err(r) => return Reply::Done(r),
            };
            let op = match operator(&body) {
                Ok(o) => o,
                Err(r) => return Reply::Done(r),
            };
            let (status, v) = match path {
                "/api/push" => match body.get("rules") {
                    Some(Value::String(rules)) => c.push(rules, op.as_deref()),
                    _ => return Reply::Done(error(400, "expected {\"rules\": \"<program>\"}")),
                },
                "/api/rollback" => c.rollback(op.as_deref()),
                _ => c.stop(op.as_deref()),
            };
            Reply::Done(json_resp(status, &v))
        }
        (
            _,
            "/api/state" | "/api/audit" | "/api/events" | "/api/push" | "/api/rollback"
            | "/api/stop",
        ) => Reply::Done(error(405, "method not allowed")),
        ("GET", p) => match assets::find(p) {
            Some(_) if !c.page => {
                Reply::Done(error(404, "this cockpit runs with --no-page: the API only"))
            }
            Some((content_type, body)) => Reply::Done(Resp {
                status: 200,
                content_type,
                body: body.to_vec(),
                cache: true,
            }),
            None => Reply::Done(error(404, "not found")),
        },
        _ => Reply::Done(error(405, "method not allowed")),
    }
}

fn header(k: &str, v: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok()
}

/// Sent with every answer: no framing, no sniffing, no referrer, only this origin's code.
const SECURITY: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
];

fn respond(rq: tiny_http::Request, r: Resp) {
    let mut resp = tiny_http::Response::from_data(r.body).with_status_code(r.status);
    let cache = if r.cache { "no-cache" } else { "no-store" };
    for (k, v) in SECURITY
        .iter()
        .copied()
        .chain([("Content-Type", r.content_type), ("Cache-Control", cache)])
    {
        if let Some(h) = header(k, v) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

/// Streams events until the client goes away: written to the socket directly, one flush per
/// event (tiny_http's chunked writer would hold them back in an 8 KB buffer).
fn stream(rq: tiny_http::Request, c: &Cockpit) {
    if c.subscribers() >= MAX_STREAMS {
        respond(rq, error(503, "too many event streams open"));
        return;
    }
    let rx = c.subscribe();
    let mut w = rq.into_writer();
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
    head.push_str(
        "Cache-Control: no-store\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n",
    );
    head.push_str("retry: 2000\n\n");
    if w.write_all(head.as_bytes())
        .and_then(|()| w.flush())
        .is_err()
    {
        return;
    }
    loop {
        let chunk: Arc<str> = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(ev) => ev,
            // A comment line keeps proxies from closing an idle stream and finds dead clients.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Arc::from(": keep-alive\n\n"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if w.write_all(chunk.as_bytes())
            .and_then(|()| w.flush())
            .is_err()
        {
            return;
        }
    }
}

fn handle(mut rq: tiny_http::Request, c: &Cockpit) {
    let headers = rq
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let mut req = Req {
        method: rq.method().as_str().to_ascii_uppercase(),
        url: rq.url().to_string(),
        headers,
        body: Vec::new(),
    };
    if let Some(r) = refuse(c, &req) {
        return respond(rq, r);
    }
    if req.method == "POST" {
        let mut body = Vec::new();
        let read = rq
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body);
        if read.is_err() {
            return respond(rq, error(400, "could not read the body"));
        }
        if body.len() > MAX_BODY {
            return respond(rq, error(413, "the body is larger than 1 MiB"));
        }
        req.body = body;
    }
    match route(c, &req) {
        Reply::Done(r) => respond(rq, r),
        Reply::Events => stream(rq, c),
    }
}

/// Serves until the process ends.
pub fn serve(server: &tiny_http::Server, c: &Arc<Cockpit>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for rq in server.incoming_requests() {
        if busy.load(Ordering::SeqCst) >= MAX_THREADS {
            respond(rq, error(503, "busy"));
            continue;
        }
        busy.fetch_add(1, Ordering::SeqCst);
        let (c, b) = (c.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("request".into())
            .spawn(move || {
                handle(rq, &c);
                b.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::CockpitArgs;
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CockpitArgs,
    }

    const ECDS: &str = r#"{"version_info": "1", "resources": [{
      "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
      "name": "traffic_color",
      "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                   "value": "{\"rules\": \"default -> \\\"stable\\\"\\n\"}"}}}}]}"#;

    /// A local-mode cockpit on a temp ECDS file; the admin URL points at a closed port.
    fn cockpit(name: &str, extra: &[&str]) -> (Cockpit, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tc-http-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ecds = dir.join("traffic-color.json");
        std::fs::write(&ecds, ECDS).unwrap();
        let mut argv = vec![
            "t",
            "--envoy-admin",
            "http://127.0.0.1:9",
            "--ecds",
            ecds.to_str().unwrap(),
            "--push-timeout",
            "1",
        ];
        argv.extend_from_slice(extra);
        let args = T::try_parse_from(argv).unwrap().a;
        let token = args.token.clone();
        (Cockpit::new(&args, token).unwrap(), dir)
    }

    fn req(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Req {
        Req {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn status(c: &Cockpit, r: &Req) -> u16 {
        if let Some(resp) = refuse(c, r) {
            return resp.status;
        }
        match route(c, r) {
            Reply::Done(resp) => resp.status,
            Reply::Events => 200,
        }
    }

    const HOST: (&str, &str) = ("Host", "127.0.0.1:9902");
    const JSON: (&str, &str) = ("Content-Type", "application/json");

    #[test]
    fn host_names() {
        assert!(is_loopback_host("localhost:9902"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.1.2.3:80"));
        assert!(is_loopback_host("[::1]:9902"));
        assert!(!is_loopback_host("evil.example:9902"));
        assert!(!is_loopback_host("127.0.0.1.evil.example"));
        assert!(!is_loopback_host(""));
        assert!(!is_loopback_host("[::2]:1"));
    }

    #[test]
    fn a_rebound_host_is_refused_on_loopback() {
        let (c, _) = cockpit("host", &["--no-page"]);
        assert_eq!(status(&c, &req("GET", "/api/state", &[HOST], "")), 200);
        assert_eq!(
            status(
                &c,
                &req(
                    "GET",
                    "/api/state",
                    &[("Host", "attacker.example:9902")],
                    ""
                )
            ),
            403
        );
        assert_eq!(status(&c, &req("GET", "/api/state", &[], "")), 403);
    }

    #[test]
    fn posts_need_json_content_type() {
        let (c, _) = cockpit("ctype", &["--no-page"]);
        let r = req(
            "POST",
            "/api/stop",
            &[HOST, ("Content-Type", "text/plain")],
            "{}",
        );
        assert_eq!(status(&c, &r), 415);
        let r = req("POST", "/api/stop", &[HOST], "{}");
        assert_eq!(status(&c, &r), 415);
        let r = req(
            "POST",
            "/api/stop",
            &[HOST, ("Content-Type", "application/x-www-form-urlencoded")],
            "a=b",
        );
        assert_eq!(status(&c, &r), 415);
    }

    #[test]
    fn cross_origin_posts_are_refused() {
        let (c, dir) = cockpit("origin", &["--no-page"]);
        let bad = req(
            "POST",
            "/api/push",
            &[HOST, JSON, ("Origin", "http://evil.example")],
            r#"{"rules": "default -> \"canary\""}"#,
        );
        assert_eq!(status(&c, &bad), 403);
        let null = req("POST", "/api/push", &[HOST, JSON, ("Origin", "null")], "{}");
        assert_eq!(status(&c, &null), 403);
        // Nothing was written: the file is as it was.
        let ecds = std::fs::read_to_string(dir.join("traffic-color.json")).unwrap();
        assert_eq!(ecds, ECDS);
        // Same origin gets through to the action (a rejected program here: 422).
        let same = req(
            "POST",
            "/api/push",
            &[HOST, JSON, ("Origin", "http://127.0.0.1:9902")],
            r#"{"rules": "match {"}"#,
        );
        assert_eq!(status(&c, &same), 422);
    }

    #[test]
    fn a_configured_token_is_required_for_posts_only() {
        let (c, _) = cockpit("token", &["--no-page", "--token", "s3cret"]);
        let body = r#"{"rules": "match {"}"#;
        assert_eq!(
            status(&c, &req("POST", "/api/push", &[HOST, JSON], body)),
            401
        );
        let wrong = req(
            "POST",
            "/api/push",
            &[HOST, JSON, ("Authorization", "Bearer nope")],
            body,
        );
        assert_eq!(status(&c, &wrong), 401);
        let basic = req(
            "POST",
            "/api/push",
            &[HOST, JSON, ("Authorization", "s3cret")],
            body,
        );
        assert_eq!(status(&c, &basic), 401);
        let ok = req(
            "POST",
            "/api/push",
            &[HOST, JSON, ("Authorization", "Bearer s3cret")],
            body,
        );
        assert_eq!(status(&c, &ok), 422);
        assert_eq!(status(&c, &req("GET", "/api/state", &[HOST], "")), 200);
    }

    #[test]
    fn off_loopback_needs_a_token_and_skips_the_host_check() {
        let dir = std::env::temp_dir().join(format!("tc-http-{}-open", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ecds = dir.join("e.json");
        std::fs::write(&ecds, ECDS).unwrap();
        let base = [
            "t",
            "--listen",
            "0.0.0.0:9902",
            "--envoy-admin",
            "http://127.0.0.1:9",
            "--ecds",
            ecds.to_str().unwrap(),
        ];
        let args = T::try_parse_from(base).unwrap().a;
        let err = Cockpit::new(&args, None).err().unwrap();
        assert!(err.contains("token is required"), "{err}");
        assert!(Cockpit::new(&args, Some(" ".into())).is_err());
        let c = Cockpit::new(&args, Some("t0k".into())).unwrap();
        let r = req(
            "GET",
            "/api/state",
            &[("Host", "cockpit.internal:9902")],
            "",
        );
        assert_eq!(status(&c, &r), 200);
    }

    #[test]
    fn routing() {
        let (c, _) = cockpit("route", &["--no-page"]);
        assert_eq!(status(&c, &req("GET", "/nope", &[HOST], "")), 404);
        assert_eq!(status(&c, &req("DELETE", "/api/state", &[HOST], "")), 405);
        assert_eq!(status(&c, &req("GET", "/api/push", &[HOST], "")), 405);
        assert_eq!(
            status(&c, &req("POST", "/api/state", &[HOST, JSON], "{}")),
            405
        );
        assert_eq!(status(&c, &req("GET", "/api/state?x=1", &[HOST], "")), 200);
        assert!(matches!(
            route(&c, &req("GET", "/api/events", &[HOST], "")),
            Reply::Events
        ));
        // --no-page: the page is not served even when it is built in.
        assert_eq!(status(&c, &req("GET", "/", &[HOST], "")), 404);
        assert_eq!(
            status(&c, &req("POST", "/api/push", &[HOST, JSON], "[1]")),
            400
        );
        assert_eq!(
            status(&c, &req("POST", "/api/push", &[HOST, JSON], "{")),
            400
        );
        assert_eq!(
            status(&c, &req("POST", "/api/push", &[HOST, JSON], "{}")),
            400
        );
        let r = req(
            "POST",
            "/api/push",
            &[HOST, JSON],
            r#"{"rules": "x", "operator": 5}"#,
        );
        assert_eq!(status(&c, &r), 400);
    }

    #[test]
    fn state_shape() {
        let (c, _) = cockpit("state", &["--no-page", "--operator", "ann"]);
        let s = c.state_json();
        assert_eq!(s["mode"], "local");
        assert_eq!(s["source"]["kind"], "envoy");
        assert_eq!(s["config"]["rules"], "default -> \"stable\"\n");
        assert_eq!(s["config"]["hash"].as_str().unwrap().len(), 32);
        assert!(s["previous"].is_null());
        assert_eq!(s["stable"], "stable");
        assert_eq!(s["token_required"], false);
        assert_eq!(s["operator"], "ann");
    }

    #[test]
    fn a_rejected_push_is_audited_and_writes_nothing() {
        let (c, dir) = cockpit("reject", &["--no-page"]);
        let (status, body) = c.push(
            "default -> \"stable\"\nmatch { header[\"x\"] == } -> \"a\"\n",
            Some("bob"),
        );
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["diagnostics"][0]["line"], 2);
        assert_eq!(body["entry"]["outcome"], "rejected");
        assert_eq!(body["entry"]["operator"], "bob");
        assert_eq!(
            std::fs::read_to_string(dir.join("traffic-color.json")).unwrap(),
            ECDS
        );
        let log = std::fs::read_to_string(dir.join("traffic-color.json.audit.jsonl")).unwrap();
        assert_eq!(log.lines().count(), 1);
        assert_eq!(c.audit_json().as_array().unwrap().len(), 1);
        // No history: nothing to roll back to.
        assert_eq!(c.rollback(None).0, 409);
    }

    #[test]
    fn an_unreachable_envoy_times_out_and_the_file_is_put_back() {
        let (c, dir) = cockpit("timeout", &["--no-page"]);
        let (status, body) = c.push("default -> \"canary\"\n", None);
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["entry"]["outcome"], "rejected");
        assert!(
            body["entry"]["reason"]
                .as_str()
                .unwrap()
                .contains("put back")
        );
        let after = super::super::push::read_ecds(&dir.join("traffic-color.json")).unwrap();
        assert_eq!(
            after.config,
            "{\"rules\": \"default -> \\\"stable\\\"\\n\"}"
        );
    }
}

//! Property tests (proptest): the compiler, the evaluator, the decoders, the verdict and the way
//! the filter applies it, on generated input. Native only. `PROPTEST_CASES=N cargo test --test
//! properties` runs more cases than the default 256 per property.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use traffic_color::config::{ClaimSource, ClaimTrust, FilterConfig};
use traffic_color::lang::eval::DecidedBy;
use traffic_color::lang::{self, Program};
use traffic_color::request::{RequestFacts, SimpleRequest, baggage, cookie, jwt, query};
use traffic_color::verdict::{BaggageEdit, ColorEdit, Counter, Decided, KeptFrom, Proxy, Verdict};

// ------------------------------------------------------------------------------ helpers

/// A realistic program: envoy.yaml's example rules plus rules over every other source.
const RULES: &str = r#"
# testers and internal staff always get the canary
match { header["x-canary"] == "true" || cookie["canary"] == "always" } -> "canary"
match { cookie["canary"] == "never" } -> "stable"
match "blue" { header["X-Env"] == "prod" && query["version"] =~ "^v2\\..*" && token["sub"] in ["user-a", "user-b"] } -> "blue"
match { bucket(header["x-user-id"], "checkout-v2") <= 5 } -> "canary"
match { path starts_with "/api/v2/" && method == "GET" } -> "canary"
match { token["groups"] contains "beta" || token["admin"] == true } -> "beta"
match { header["x-app-version"] >= 5.2.0 && header["x-n"] > 3 } -> "canary"
match { host ends_with ".example.com" && !(host == "shop.example.com") } -> "sub"
match { source.ip in ["10.0.0.0/8", "2001:db8::/32"] } -> "internal"
match { query["q"] not in ["a", "b"] && exists(cookie["session"]) } -> "session"
match { path == "/window" } from "2000-01-01T00:00:00Z" until "2200-01-01T00:00:00Z" -> "windowed"
default -> "stable"
"#;

fn tags(p: &Program) -> Vec<&str> {
    p.rules
        .iter()
        .map(|r| r.tag.as_str())
        .chain(p.default.as_ref().map(|t| t.as_str()))
        .collect()
}

fn realistic(extra: &str) -> FilterConfig {
    let mut cfg = json!({ "rules": RULES, "jwt": { "trust": "unverified" } });
    if let Value::Object(extra) = serde_json::from_str::<Value>(extra).unwrap() {
        cfg.as_object_mut().unwrap().extend(extra);
    }
    FilterConfig::from_json(cfg.to_string().as_bytes()).unwrap()
}

// -------------------------------------------------------------------------------- regexes

/// Fragments of regex syntax, valid and not, for `regex_engine_agrees_with_regex_lite`.
const REGEX_PIECES: &[&str] = &[
    "a",
    "b",
    "A",
    "é",
    "1",
    " ",
    "-",
    "_",
    ".",
    "\\.",
    "\\d",
    "\\w",
    "\\s",
    "\\W",
    "\\D",
    "\\S",
    "\\b",
    "\\B",
    "\\<",
    "\\>",
    "\\b{start}",
    "\\b{end}",
    "\\b{start-half}",
    "\\b{end-half}",
    "\\A",
    "\\z",
    "\\x41",
    "\\x{e9}",
    "\\n",
    "\\r",
    "\\-",
    "\\<",
    "[ab]",
    "[^a]",
    "[a-c]",
    "[B-c]",
    "[[:alpha:]]",
    "[[:^digit:]_]",
    "[^\\w]",
    "[\\d-]",
    "[é-ü]",
    "[]a]",
    "[^\\s\\S]",
    "[a-]",
    "[\\x41-Z]",
    "[-a]",
    "(",
    ")",
    "(?:",
    "(?i)",
    "(?i:",
    "(?-i)",
    "(?m)",
    "(?s)",
    "(?x)",
    "(?R)",
    "(?U)",
    "(?u)",
    "(?P<n>",
    "(?<m>",
    "^",
    "$",
    "?",
    "*",
    "+",
    "*?",
    "??",
    "{0,2}",
    "{2}",
    "{1,}",
    "{,3}",
    "{2,1}",
    "{ 2 }",
    "|",
    "[",
    "\\p{L}",
    "(?=",
    "\\1",
    "[a&&b]",
    "[a[b]]",
    "\\q",
    "(?)",
    "(?z)",
    "{",
    "}",
    "]",
    "#",
    "\\ ",
    "\\#",
];

/// Both engines accept or both reject `source`; where both accept, they agree on every haystack.
fn check_against_regex_lite(source: &str, haystacks: &[String]) -> Result<(), TestCaseError> {
    let old = regex_lite::RegexBuilder::new(source)
        .nest_limit(lang::limits::MAX_REGEX_NESTING)
        .build();
    let new = traffic_color::lang::pattern::Pattern::new(source);
    prop_assert_eq!(
        old.is_ok(),
        new.is_ok(),
        "/{}/ regex-lite: {:?}, ours: {:?}",
        source,
        old.as_ref().err(),
        new.as_ref().err()
    );
    if let (Ok(old), Ok(new)) = (old, new) {
        for h in haystacks {
            prop_assert_eq!(new.is_match(h), old.is_match(h), "/{}/ on {:?}", source, h);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- generated programs

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(support::FRAGMENTS), 0..60).prop_map(|v| v.join(" "))
}

/// A valid condition over a small world of values, so generated requests often match.
fn condition() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        ("[0-3]", "[ab]{0,2}").prop_map(|(h, v)| format!("header[\"h{h}\"] == \"{v}\"")),
        ("[0-3]", "[ab]{0,2}").prop_map(|(h, v)| format!("header[\"h{h}\"] != \"{v}\"")),
        ("[0-3]", "[ab]{1,2}").prop_map(|(h, v)| format!("header[\"h{h}\"] starts_with \"{v}\"")),
        ("[0-3]", "[ab]{1,2}").prop_map(|(h, v)| format!("header[\"H{h}\"] contains \"{v}\"")),
        ("[0-3]",).prop_map(|(h,)| format!("header[\"h{h}\"] =~ \"^(a|aa)*b$\"")),
        ("[0-3]",).prop_map(|(h,)| format!("header[\"h{h}\"] !~ \"a\"")),
        ("[0-3]",).prop_map(|(h,)| format!("header[\"h{h}\"] in [\"a\", \"b\", \"ab\"]")),
        ("[0-3]",).prop_map(|(h,)| format!("header[\"h{h}\"] not in [\"a\"]")),
        ("[0-3]", 0..5i32).prop_map(|(h, n)| format!("header[\"h{h}\"] > {n}")),
        ("[0-3]",).prop_map(|(h,)| format!("header[\"h{h}\"] >= 1.2.0")),
        ("[0-2]", "[ab ]{0,2}").prop_map(|(q, v)| format!("query[\"q{q}\"] == \"{v}\"")),
        ("[0-2]", "[ab]{0,2}").prop_map(|(c, v)| format!("cookie[\"c{c}\"] == \"{v}\"")),
        ("[0-2]",).prop_map(|(c,)| format!("exists(cookie[\"c{c}\"])")),
        ("[0-3]",).prop_map(|(h,)| format!("exists(header[\"h{h}\"])")),
        ("[0-3]", 1..100u32).prop_map(|(h, p)| format!("bucket(header[\"h{h}\"], \"g\") <= {p}")),
        ("[ab]{0,2}",).prop_map(|(v,)| format!("path starts_with \"/{v}\"")),
        Just("method == \"GET\"".to_string()),
        Just("host ends_with \".b\"".to_string()),
        Just("source.ip in [\"10.0.0.0/8\"]".to_string()),
        Just("token[\"sub\"] == \"a\"".to_string()),
    ];
    atom.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("!({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} || {b})")),
        ]
    })
}

/// A valid program: 1..6 rules, some named or windowed, maybe a default.
fn program_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((condition(), "[a-z]{1,6}", 0..4u8), 1..6),
        prop::option::of("[a-z]{1,6}"),
    )
        .prop_map(|(rules, default)| {
            let mut out = String::new();
            for (i, (cond, tag, extra)) in rules.iter().enumerate() {
                let name = if *extra == 1 {
                    format!(" \"r{i}\"")
                } else {
                    String::new()
                };
                let window = if *extra == 2 {
                    " from \"2000-01-01T00:00:00Z\" until \"2100-01-01T00:00:00Z\""
                } else {
                    ""
                };
                out.push_str(&format!("match{name} {{ {cond} }}{window} -> \"{tag}\"\n"));
            }
            if let Some(d) = default {
                out.push_str(&format!("default -> \"{d}\"\n"));
            }
            out
        })
}

/// A request over the same small world.
fn request() -> impl Strategy<Value = SimpleRequest> {
    let header = prop_oneof![
        ("h[0-3]", "[ab0-9.]{0,3}"),
        ("H[0-3]", "[ab]{0,3}"),
        (Just("cookie".to_string()), "(c[0-2]=[ab]{0,2}; ?){0,3}"),
        (Just("host".to_string()), "[ab]{1,2}\\.[ab](:80)?"),
        (Just("x-version-route".to_string()), "[a-z ]{0,8}"),
        ("[a-z-]{1,8}", "\\PC{0,8}"),
    ];
    (
        prop::sample::select(vec!["GET", "POST", "get"]),
        "/[ab]{0,3}(\\?(q[0-2]=[ab+%]{0,4}&?){0,3})?",
        prop::collection::vec(header, 0..8),
        prop::option::of(prop::sample::select(vec![
            "10.1.2.3:5",
            "127.0.0.1:80",
            "[2001:db8::1]:443",
            "junk",
        ])),
        prop::option::of(0i64..4_200_000_000_000_000_000),
    )
        .prop_map(|(method, path, headers, addr, now)| {
            let mut r = SimpleRequest::new(method, &path);
            for (k, v) in headers {
                r = r.with_header(&k, &v);
            }
            r.source_address = addr.map(str::to_string);
            r.now = now;
            r
        })
}

/// Requests aimed at the realistic program.
fn realistic_request() -> impl Strategy<Value = SimpleRequest> {
    let name = prop::sample::select(vec![
        "x-canary",
        "cookie",
        "x-env",
        "x-user-id",
        "authorization",
        "x-app-version",
        "x-n",
        "host",
        "x-version-route",
        "baggage",
        "x-other",
    ]);
    let value = prop_oneof![
        Just("true".to_string()),
        Just("prod".to_string()),
        Just("canary=always".to_string()),
        Just("canary=never; session=1".to_string()),
        Just("a.example.com".to_string()),
        Just("5.10.0".to_string()),
        Just("7".to_string()),
        Just(format!(
            "Bearer {}",
            support::unsigned_token(r#"{"sub":"user-a","groups":["beta"]}"#)
        )),
        "\\PC{0,12}",
    ];
    (
        prop::sample::select(vec!["GET", "POST"]),
        prop::sample::select(vec!["/", "/api/v2/x", "/window", "/?version=v2.1&q=c"]),
        prop::collection::vec((name, value), 0..8),
        prop::option::of(prop::sample::select(vec!["10.1.2.3:5", "127.0.0.1:80"])),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(method, path, headers, addr, now)| {
            let mut r = SimpleRequest::new(method, path);
            for (k, v) in headers {
                r = r.with_header(k, &v);
            }
            r.source_address = addr.map(str::to_string);
            r.now = now;
            r
        })
}

/// A proxy over a header list with Envoy's semantics: setting a header replaces every value,
/// removing it removes every value. It records what the filter's glue would do to a host.
#[derive(Debug, Default)]
struct FakeProxy {
    headers: Vec<(String, String)>,
    counted: Vec<String>,
    published: Vec<(String, String)>,
}

impl Proxy for FakeProxy {
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), u32> {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            self.headers.push((name.to_string(), v.to_string()));
        }
        Ok(())
    }

    fn count(&mut self, counter: Counter<'_>) {
        self.counted.push(format!("{counter:?}"));
    }

    fn publish(&mut self, key: &str, value: &str) -> Result<(), u32> {
        self.published.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

fn values(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Requests with the color header and `baggage` in every shape a client can send: missing,
/// repeated, with our member first, last, twice or not at all, and at the size limits.
fn request_with_colors() -> impl Strategy<Value = SimpleRequest> {
    let color = prop_oneof![
        prop::sample::select(vec!["canary", "stable", "blue", "evil", " canary"])
            .prop_map(str::to_string),
        "\\PC{0,8}",
    ];
    let member = prop_oneof![
        prop::sample::select(vec![
            "tc=canary",
            "tc=blue;p=1",
            "tc=evil",
            "a=1",
            "b=2;q",
            " ",
            "tc"
        ])
        .prop_map(str::to_string),
        (0usize..200).prop_map(|n| format!("tc=canary{}", ",x=y".repeat(n))),
        (8150usize..8200).prop_map(|n| format!("tc=canary,pad={}", "z".repeat(n - 14))),
    ];
    (
        realistic_request(),
        prop::collection::vec(color, 0..3),
        prop::collection::vec(prop::collection::vec(member, 0..4), 0..3),
    )
        .prop_map(|(mut req, colors, baggages)| {
            req.headers
                .retain(|(k, _)| k != "x-version-route" && k != "baggage");
            for c in colors {
                req = req.with_header("x-version-route", &c);
            }
            for b in baggages {
                req = req.with_header("baggage", &b.join(","));
            }
            req
        })
}

fn check_diagnostics(source: &str) -> Result<(), TestCaseError> {
    if let Err(diagnostics) = lang::compile(source) {
        prop_assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            prop_assert!(
                d.span.start <= d.span.end && d.span.end <= source.len(),
                "span {:?} outside a {}-byte source: {:?}",
                d.span,
                source.len(),
                d
            );
            prop_assert!(
                source.is_char_boundary(d.span.start) && source.is_char_boundary(d.span.end),
                "span {:?} splits a character: {:?}",
                d.span,
                d
            );
            let (line, column) = d.position(source);
            prop_assert!(line >= 1 && line <= source.split('\n').count() && column >= 1);
            prop_assert!(d.render(source).starts_with("error: "));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------- properties

proptest! {
    #![proptest_config(Config::default())]

    /// The filter's edits are the verdict: applied to a proxy, the color header, `baggage`,
    /// every other header, the counters and the route refresh are exactly what it says.
    #[test]
    fn applying_a_verdict_makes_exactly_its_edits(req in request_with_colors()) {
        for extra in ["{}", r#"{"baggage": "tc", "filter_state": true}"#, r#"{"keep": true, "baggage": "tc"}"#, r#"{"keep": true}"#] {
            let c = realistic(extra);
            let v = Verdict::for_request(&c, &req, None);
            let mut proxy = FakeProxy { headers: req.headers.clone(), ..FakeProxy::default() };
            prop_assert_eq!(v.apply(&c, &mut proxy), Ok(()));

            let color_after = values(&proxy.headers, "x-version-route");
            let color_before = values(&req.headers, "x-version-route");
            let want_color: Vec<String> = match v.color_edit {
                ColorEdit::Leave => color_before.clone(),
                ColorEdit::Set(t) => vec![t.as_str().to_string()],
                ColorEdit::Remove => vec![],
            };
            prop_assert_eq!(&color_after, &want_color);
            if v.color_edit != ColorEdit::Leave {
                prop_assert_eq!(color_after.first().map(String::as_str), v.color.map(|t| t.as_str()));
            }
            let baggage_before = values(&req.headers, "baggage");
            let want_baggage: Vec<String> = match &v.baggage_edit {
                BaggageEdit::Leave => baggage_before.clone(),
                BaggageEdit::Set(h) => vec![h.clone()],
                BaggageEdit::Remove => vec![],
            };
            prop_assert_eq!(values(&proxy.headers, "baggage"), want_baggage);
            let others = |h: &[(String, String)]| -> Vec<(String, String)> {
                h.iter().filter(|(k, _)| k != "x-version-route" && k != "baggage").cloned().collect()
            };
            prop_assert_eq!(others(&proxy.headers), others(&req.headers));
            let counted: Vec<String> = v.counters().map(|c| format!("{c:?}")).collect();
            prop_assert_eq!(&proxy.counted, &counted);
            let published: Vec<(String, String)> = if c.filter_state {
                vec![
                    ("traffic_color.color".into(), v.color.map_or("unset", |t| t.as_str()).into()),
                    ("traffic_color.decided".into(), v.decided.to_string()),
                ]
            } else {
                vec![]
            };
            prop_assert_eq!(&proxy.published, &published);
            // A client's color header never goes on unless kept.
            if v.decided != Decided::Kept(KeptFrom::Header) {
                prop_assert_eq!(color_after.len(), usize::from(v.color.is_some()));
            }

            // With a baggage key, the member that goes on is ours or none, never the client's.
            if !c.keep && c.baggage.is_some() {
                let sent = values(&proxy.headers, "baggage").join(",");
                let member = baggage::member(&sent, "tc");
                let ours = if v.baggage_full { None } else { v.color.map(|t| t.as_str().to_string()) };
                prop_assert_eq!(&member, &ours);
                let any_tc = sent.split(',').any(|m| {
                    m.split(';').next().and_then(|kv| kv.split_once('=')).is_some_and(|(k, _)| k.trim() == "tc")
                });
                prop_assert_eq!(any_tc, member.is_some() || (v.color.is_some() && !v.baggage_full));
            }
        }
    }

    /// Two hops: an edge (keep off) then a hop with `keep` that sees only what the edge sent on,
    /// minus the color header (an application that forwards only tracing headers). The hop
    /// keeps the edge's color or decides itself; it never keeps what the client sent.
    #[test]
    fn a_hop_behind_the_edge_keeps_only_the_edges_color(req in request_with_colors()) {
        let edge = realistic(r#"{"baggage": "tc"}"#);
        let hop = realistic(r#"{"keep": true, "baggage": "tc"}"#);
        let v = Verdict::for_request(&edge, &req, None);
        let mut proxy = FakeProxy { headers: req.headers.clone(), ..FakeProxy::default() };
        prop_assert_eq!(v.apply(&edge, &mut proxy), Ok(()));
        let mut next = req.clone();
        next.headers = proxy.headers.clone();
        next.headers.retain(|(k, _)| k != "x-version-route");
        let w = Verdict::for_request(&hop, &next, None);
        if w.decided == Decided::Kept(KeptFrom::Baggage) {
            prop_assert!(!v.baggage_full);
            prop_assert_eq!(w.color, v.color);
        } else {
            prop_assert!(v.color.is_none() || v.baggage_full);
        }
    }

    /// The compiler never panics on arbitrary text, and every diagnostic points inside it.
    #[test]
    fn compile_never_panics_and_spans_are_in_the_source(source in "\\PC{0,200}") {
        check_diagnostics(&source)?;
    }

    /// The same on token soup, which gets past the lexer into the parser and compiler.
    #[test]
    fn compile_token_soup(source in token_soup()) {
        check_diagnostics(&source)?;
    }

    /// Generated valid programs compile, and their tags are the ones written.
    #[test]
    fn generated_programs_compile(text in program_text()) {
        let p = match lang::compile(&text) {
            Ok(p) => p,
            Err(d) => return Err(TestCaseError::fail(lang::render_all(&d, &text))),
        };
        prop_assert!(!p.rules.is_empty());
    }

    /// `explain` reaches the same decision as `decide`, and traces exactly the rules tried.
    #[test]
    fn explain_agrees_with_decide(text in program_text(), req in request()) {
        let p = lang::compile(&text).unwrap();
        let claims = ClaimSource::of(ClaimTrust::Unverified);
        let facts = RequestFacts::new(&req, &p.needs, &claims);
        let d = p.decide(&facts);
        let e = p.explain(&text, &facts);
        prop_assert_eq!(e.color.as_deref(), d.tag.map(|t| t.as_str()));
        match d.by {
            DecidedBy::Rule(n) => {
                prop_assert_eq!(e.rule, Some(n));
                prop_assert_eq!(e.rules.len(), n);
                prop_assert!(e.rules[n - 1].matched);
                prop_assert_eq!(e.rules[n - 1].condition.as_ref().unwrap().result, Some(true));
            }
            DecidedBy::Default | DecidedBy::Nothing => {
                prop_assert_eq!(e.rule, None);
                prop_assert_eq!(e.rules.len(), p.rules.len());
            }
        }
        for r in e.rules.iter().rev().skip(usize::from(matches!(d.by, DecidedBy::Rule(_)))) {
            prop_assert!(!r.matched);
            if let Some(c) = &r.condition {
                prop_assert_eq!(c.result, Some(false));
            }
        }
        prop_assert!(!e.render().is_empty());
    }

    /// The same on the realistic program with realistic requests (tokens, cookies, buckets).
    #[test]
    fn explain_agrees_with_decide_realistic(req in realistic_request()) {
        let c = realistic("{}");
        let facts = RequestFacts::new(&req, &c.program.needs, &c.claims);
        let d = c.program.decide(&facts);
        let e = c.program.explain(&c.rules, &facts);
        prop_assert_eq!(e.color.as_deref(), d.tag.map(|t| t.as_str()));
        prop_assert_eq!(e.rule, match d.by { DecidedBy::Rule(n) => Some(n), _ => None });
    }

    /// A worker's token cache never changes a decision: requests in any order, tokens sent again
    /// with the clock moved past `exp` (the cached claims must then stop coloring), garbage.
    #[test]
    fn the_token_cache_never_changes_a_decision(
        reqs in prop::collection::vec((
            realistic_request(),
            prop::option::of(prop::sample::select(vec![
                r#"{"sub":"user-a","groups":["beta"],"exp":1700000000}"#,
                // Same length and ending as the one above: only the whole token tells them apart.
                r#"{"sub":"user-a","groups":["zeta"],"exp":1700000000}"#,
                r#"{"sub":"user-b","groups":["beta"],"nbf":1700000000}"#,
                r#"{"admin":true}"#,
                "not json",
            ])),
            prop::option::of(1_699_999_990i64..1_700_000_010),
        ), 1..16),
    ) {
        let c = realistic("{}");
        let cache = traffic_color::request::token_cache::TokenCache::new();
        for (mut req, token, now) in reqs {
            if let Some(payload) = token {
                req = req.with_header("authorization", &format!("Bearer {}", support::unsigned_token(payload)));
                req.headers.rotate_right(1);
            }
            if let Some(now) = now {
                req.now = Some(now * 1_000_000_000);
            }
            let cached = RequestFacts::new(&req, &c.program.needs, &c.claims).with_token_cache(&cache);
            let fresh = RequestFacts::new(&req, &c.program.needs, &c.claims);
            prop_assert_eq!(c.program.decide(&cached), c.program.decide(&fresh));
        }
    }

    /// At the edge (`keep` off) the color never comes from the client: whatever arrives in the
    /// color header or in baggage, the result is what the rules decide for the request without
    /// them, and it is always one of the program's tags.
    #[test]
    fn a_client_sent_color_never_survives(
        req in realistic_request(),
        incoming in prop_oneof![
            prop::sample::select(vec!["canary", "stable", "blue", " canary ", "beta", "evil"])
                .prop_map(str::to_string),
            "\\PC{0,16}",
        ],
        baggage_value in prop::sample::select(vec!["canary", "blue", "evil", "%63anary"]),
    ) {
        for extra in ["{}", r#"{"baggage": "tc"}"#] {
            let c = realistic(extra);
            let sent = req
                .clone()
                .with_header("x-version-route", &incoming)
                .with_header("baggage", &format!("a=b,tc={baggage_value}"));
            let v = Verdict::for_request(&c, &sent, None);
            let (tag, outcome) = (v.color, v.decided);
            let mut clean = req.clone();
            clean.headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("x-version-route") && !k.eq_ignore_ascii_case("baggage")
            });
            let clean_facts = RequestFacts::new(&clean, &c.program.needs, &c.claims);
            let d = c.program.decide(&clean_facts);
            prop_assert_eq!(outcome, Decided::Rules(d.by));
            prop_assert_eq!(tag.map(|t| t.as_str()), d.tag.map(|t| t.as_str()));
            let t = tag.map(|t| t.as_str());
            prop_assert!(t.is_none_or(|t| tags(&c.program).contains(&t)));
        }
    }

    /// With `keep` on, only one of the program's own tags is ever kept.
    #[test]
    fn keep_only_keeps_known_tags(req in realistic_request(), incoming in "\\PC{0,16}",
                                  baggage in "\\PC{0,24}") {
        let c = realistic(r#"{"keep": true, "baggage": "tc"}"#);
        let sent = req.clone().with_header("x-version-route", &incoming).with_header("baggage", &baggage);
        let v = Verdict::for_request(&c, &sent, None);
        let (tag, outcome) = (v.color, v.decided);
        let known = tags(&c.program);
        prop_assert!(tag.is_none_or(|t| known.contains(&t.as_str())));
        if outcome == Decided::Kept(KeptFrom::Header) {
            prop_assert_eq!(tag.map(|t| t.as_str()), Some(incoming.trim()));
        }
    }

    /// Percent-encoding round-trips through the query decoder, and through a query string.
    #[test]
    fn query_decode_round_trips_percent_encoding(
        value in "\\PC{0,24}", key in "[a-zA-Z0-9_.~-]{1,8}", upper in any::<bool>(),
    ) {
        let enc = |s: &str, space_plus: bool| {
            let mut out = String::new();
            for b in s.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        out.push(b as char)
                    }
                    b' ' if space_plus => out.push('+'),
                    _ if upper => out.push_str(&format!("%{b:02X}")),
                    _ => out.push_str(&format!("%{b:02x}")),
                }
            }
            out
        };
        prop_assert_eq!(query::decode(&enc(&value, true)).map(std::borrow::Cow::into_owned), Some(value.clone()));
        prop_assert_eq!(query::decode(&enc(&value, false)).map(std::borrow::Cow::into_owned), Some(value.clone()));
        prop_assert_eq!(query::decode_percent(&enc(&value, false)).map(std::borrow::Cow::into_owned), Some(value.clone()));
        let q = format!("%=1&x%zz=2&{}={}&{}=later", enc(&key, true), enc(&value, true), key);
        prop_assert_eq!(query::first_values(&q, std::slice::from_ref(&key)), vec![Some(value.clone())]);
        // A broken escape or invalid UTF-8 is absent, never guessed at.
        prop_assert_eq!(query::decode(&format!("{}%g0", enc(&value, true))).is_none(), true);
        prop_assert_eq!(query::decode(&format!("{}%", enc(&value, true))).is_none(), true);
        prop_assert_eq!(query::decode(&format!("{}%ff", enc(&value, true))).is_none(), true);
    }

    /// A JWT payload round-trips through the unverified decoder, with or without padding.
    #[test]
    fn jwt_payload_round_trips(
        claims in prop::collection::btree_map("\\PC{0,8}", prop_oneof![
            "\\PC{0,12}".prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            prop::collection::vec("[a-z]{0,4}".prop_map(Value::from), 0..4).prop_map(Value::from),
        ], 0..6),
        pad in 0..3usize,
    ) {
        let claims = Value::Object(claims.into_iter().collect::<Map<_, _>>());
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}{}.sig", e.encode("{\"alg\":\"none\"}"),
                            e.encode(claims.to_string()), "=".repeat(pad));
        prop_assert_eq!(jwt::unverified_claims(&token), Some(claims));
        let header = format!(" Bearer {token} ");
        prop_assert_eq!(jwt::token_in(&header), Some(token.as_str()));
    }

    /// Reading only the claims a program needs gives every lookup it makes the same answer as
    /// reading the whole payload, and the same verdict on `exp`/`nbf`; duplicate keys, escaped
    /// keys, nesting and non-object payloads included.
    #[test]
    fn needed_claims_read_as_the_whole_payload(
        members in prop::collection::vec((
            prop_oneof!["[a-c]", Just("exp".to_string()), Just("nbf".to_string()), Just("a\\u0062".to_string())],
            prop_oneof![
                "[a-z]{0,3}".prop_map(|s| format!("{s:?}")),
                any::<i32>().prop_map(|n| n.to_string()),
                Just("{\"b\":{\"c\":1},\"a\":[1,\"x\"]}".to_string()),
                Just("null".to_string()),
                Just("[[],{}]".to_string()),
            ],
        ), 0..6),
        paths in prop::collection::vec(prop::collection::vec("[a-c]", 0..3), 0..4),
        array in any::<bool>(),
        now in prop::option::of(any::<i32>()),
    ) {
        let object = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(",");
        let payload = if array { format!("[{object}]") } else { format!("{{{object}}}") };
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("e30.{}.sig", e.encode(&payload));
        let whole = jwt::unverified_claims(&token);
        let needed = jwt::unverified_claims_for(&token, &paths);
        prop_assert_eq!(whole.is_some(), needed.is_some(), "{}", payload);
        if let (Some(whole), Some(needed)) = (whole, needed) {
            for path in &paths {
                if path.is_empty() { continue; }
                prop_assert_eq!(jwt::lookup(&whole, path), jwt::lookup(&needed, path), "{} {:?}", payload, path);
            }
            let now = now.map(|s| i64::from(s) * 1_000_000_000);
            prop_assert_eq!(jwt::in_time(&whole, now), jwt::in_time(&needed, now));
        }
    }

    /// The regex engine (our parser, a DFA built at compile time, the literal shortcuts) agrees
    /// with regex-lite, the engine it replaced, on which patterns are valid and on every
    /// answer: patterns built from literals, escapes, Perl and POSIX classes, bracketed
    /// classes (negated, ranges, case-crossing ranges), anchors, word boundaries of every
    /// kind, inline flags (`i`, `m`, `s`, `x`, `R`, `U`, `u`), groups, alternation, counted and
    /// lazy repetition, and invalid fragments; haystacks over an alphabet that exercises case,
    /// word boundaries, lines and multi-byte characters.
    #[test]
    fn regex_engine_agrees_with_regex_lite(
        pieces in prop::collection::vec(prop::sample::select(REGEX_PIECES), 0..10),
        haystacks in prop::collection::vec("[abdAB é1_\\n\\r.<-]{0,10}", 1..8),
    ) {
        let source: String = pieces.concat();
        check_against_regex_lite(&source, &haystacks)?;
    }

    /// `(?i)` on class ranges, where regex-lite's fold has a quirk the engine keeps: a range
    /// over both cases (`[B-c]`) gains the other case of its lower-case part only.
    #[test]
    fn regex_engine_agrees_on_case_insensitive_ranges(
        a in 0x30u8..0x7b, len in 0u8..40, negated in any::<bool>(), ci in any::<bool>(),
    ) {
        let b = a.saturating_add(len).min(0x7a);
        let ok = |c: u8| c.is_ascii_alphanumeric() || b":;<=>?@_`".contains(&c);
        prop_assume!(ok(a) && ok(b));
        let pattern = format!(
            "{}[{}{}-{}]",
            if ci { "(?i)" } else { "" },
            if negated { "^" } else { "" },
            a as char,
            b as char
        );
        let haystacks: Vec<String> = (0x30u8..0x7b).map(|c| (c as char).to_string()).collect();
        check_against_regex_lite(&pattern, &haystacks)?;
    }

    /// Realistic shapes with no usable literal: case-insensitive alternations of words,
    /// alternations of classes, version patterns; on user-agent-like text.
    #[test]
    fn regex_engine_agrees_on_alternations_and_versions(
        words in prop::collection::vec("[a-zA-Z]{1,5}", 1..5),
        ci in any::<bool>(), bounded in any::<bool>(), anchored in any::<bool>(),
        n in 1..4u32,
        haystacks in prop::collection::vec("[a-zA-Z0-9 ./;()-]{0,40}", 1..6),
    ) {
        let alt = words.join("|");
        let flags = if ci { "(?i)" } else { "" };
        let (l, r) = if bounded { ("\\b", "\\b") } else { ("", "") };
        let (a, z) = if anchored { ("^", "$") } else { ("", "") };
        let patterns = [
            format!("{flags}{l}({alt}){r}"),
            words.iter().map(|w| format!("[{}{}]{}", &w[..1].to_uppercase(), &w[..1].to_lowercase(), &w[1..])).collect::<Vec<_>>().join("|"),
            format!("{a}[0-9]+\\.[0-9]{{1,{n}}}\\.[0-9]+(-rc\\.[0-9]+)?{z}"),
            format!("{a}({alt})/[0-9]+(\\.[0-9]+){{0,{n}}}"),
        ];
        let mut haystacks = haystacks;
        haystacks.extend(words.iter().map(|w| format!("Mozilla/5.0 ({w}; 1.2.3-rc.{n}) {w}/1.{n}")));
        for p in &patterns {
            check_against_regex_lite(p, &haystacks)?;
        }
    }
    /// The first occurrence of a cookie wins across headers; quotes are dropped.
    #[test]
    fn first_cookie_wins(name in "[a-zA-Z0-9_-]{1,8}", v1 in "[a-zA-Z0-9!#$%&'()*+./:<>?@^_`{|}~-]{0,10}",
                         v2 in "[a-z]{0,4}", quoted in any::<bool>()) {
        let shown = if quoted { format!("\"{v1}\"") } else { v1.clone() };
        let headers = vec![
            format!("zz=1; {name}={shown}"),
            format!("{name}={v2}"),
        ];
        let got = cookie::first_values(&headers, &[name.clone(), "absent-one".to_string()]);
        let want = if name == "zz" { "1".to_string() } else { v1 };
        prop_assert_eq!(got, vec![Some(want), None]);
    }

    /// Setting a baggage member and reading it back gives the value, percent-decoded, and
    /// leaves every other member as it was.
    #[test]
    fn baggage_set_then_get(
        others in prop::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9]{0,6}"), 0..8),
        key in "[a-z]{1,6}", value in "[a-zA-Z0-9%]{1,8}",
    ) {
        let existing = others.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let merged = baggage::rewrite(Some(&existing), &key, Some(&value));
        prop_assert!(merged.added);
        let merged = merged.header;
        prop_assert_eq!(
            baggage::member(&merged, &key),
            traffic_color::request::query::decode_percent(&value).map(std::borrow::Cow::into_owned)
        );
        for (k, v) in &others {
            if *k != key && others.iter().find(|(k2, _)| k2 == k).map(|(_, v2)| v2) == Some(v) {
                prop_assert_eq!(baggage::member(&merged, k), Some(v.clone()));
            }
        }
        let removed = baggage::rewrite(Some(&merged), &key, None).header;
        prop_assert_eq!(baggage::member(&removed, &key), None);
    }

    /// The config loader never panics on arbitrary (mostly JSON-shaped) bytes.
    #[test]
    fn config_loader_never_panics(
        raw in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            (token_soup(), "\\PC{0,12}", any::<bool>()).prop_map(|(rules, h, keep)| {
                json!({"rules": rules, "header": h, "keep": keep}).to_string().into_bytes()
            }),
        ],
    ) {
        if let Err(e) = FilterConfig::from_json(&raw) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 12, ..Config::default() })]

    /// `bucket(id, group) <= p` selects p% of ids: for random ids and any group, the share is
    /// within 4.5 standard deviations of p (and the rule agrees with the bucket function).
    #[test]
    fn bucket_shares_converge_to_the_percentage(group in "[a-zA-Z0-9_-]{1,16}", seed in any::<u64>()) {
        const N: usize = 10_000;
        let ids: Vec<String> = (0..N as u64)
            .map(|i| format!("{:016x}", (seed ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)))
            .collect();
        let buckets: Vec<u32> = ids.iter().map(|id| traffic_color::bucket::bucket(&group, id)).collect();
        prop_assert!(buckets.iter().all(|b| (1..=100).contains(b)));
        for p in [1u32, 5, 10, 33, 50, 95] {
            let share = buckets.iter().filter(|&&b| b <= p).count() as f64 / N as f64 * 100.0;
            let sd = (f64::from(p) * f64::from(100 - p) / N as f64).sqrt();
            prop_assert!(
                (share - f64::from(p)).abs() <= 4.5 * sd + 0.05,
                "group {group:?}: {share:.2}% of ids have bucket <= {p} (sd {sd:.2})"
            );
        }
        let p = 20;
        let program = support::program(&format!(
            "match {{ bucket(header[\"x-user-id\"], \"{group}\") <= {p} }} -> \"in\""
        ));
        let claims = ClaimSource::of(ClaimTrust::Verified);
        for (id, b) in ids.iter().zip(&buckets).take(500) {
            let req = SimpleRequest::new("GET", "/").with_header("x-user-id", id);
            let facts = RequestFacts::new(&req, &program.needs, &claims);
            prop_assert_eq!(program.decide(&facts).tag.is_some(), *b <= p);
        }
    }
}

// ------------------------------------------------------------------------- config hash

/// JSON values of every kind, strings with escapes and non-ASCII, numbers of every form.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "(?s).{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("(?s).{0,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

proptest! {
    /// The hash depends on the JSON value, not on its layout: compact, pretty-printed and
    /// ASCII-escaped texts of one value hash alike; the canonical form is JSON and its own
    /// canonical form.
    #[test]
    fn config_hash_ignores_layout(v in arb_json()) {
        use traffic_color::config_hash::{canonical, of_json};
        let compact = serde_json::to_string(&v).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        // Every non-ASCII character as \u escapes (surrogate pairs beyond the BMP).
        let ascii: String = compact
            .chars()
            .map(|c| {
                let mut units = [0u16; 2];
                if c.is_ascii() {
                    c.to_string()
                } else {
                    c.encode_utf16(&mut units).iter().map(|u| format!("\\u{u:04x}")).collect()
                }
            })
            .collect();
        let h = of_json(compact.as_bytes());
        prop_assert!(h.is_some());
        prop_assert_eq!(of_json(pretty.as_bytes()), h);
        prop_assert_eq!(of_json(ascii.as_bytes()), h);
        let c = canonical(compact.as_bytes()).unwrap();
        prop_assert_eq!(canonical(c.as_bytes()), Some(c.clone()));
        prop_assert!(serde_json::from_str::<Value>(&c).is_ok(), "{c}");
    }

    /// Every config the filter accepts has a hash.
    #[test]
    fn every_accepted_config_has_a_hash(rules in "[ -~\n]{0,80}", keep in any::<bool>()) {
        let json = json!({ "rules": rules, "keep": keep }).to_string();
        if FilterConfig::from_json(json.as_bytes()).is_ok() {
            prop_assert!(traffic_color::config_hash::of_json(json.as_bytes()).is_some());
        }
    }
}

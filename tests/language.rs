//! The language's semantics, one table per feature. Runs natively and, compiled to
//! wasm32-unknown-unknown, under Node with wasm-bindgen-test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{color, color_with, unsigned_token};
use traffic_color::config::ClaimTrust;
use traffic_color::lang::eval::DecidedBy;
use traffic_color::request::SimpleRequest;
use wasm_bindgen_test::wasm_bindgen_test;

fn get(path: &str) -> SimpleRequest {
    SimpleRequest::new("GET", path)
}

/// `rules` with one match rule giving "yes" and no default: Some("yes") iff the condition held.
fn holds(cond: &str, req: &SimpleRequest) -> bool {
    color(&format!("match {{ {cond} }} -> \"yes\""), req).is_some()
}

#[wasm_bindgen_test(unsupported = test)]
fn first_match_wins_then_default_then_unset() {
    let rules = r#"
        match { header["a"] == "1" } -> "one"
        match { header["a"] == "1" || header["b"] == "1" } -> "two"
        default -> "stable"
    "#;
    let (c, by) = color_with(rules, ClaimTrust::Verified, &get("/").with_header("a", "1"));
    assert_eq!((c.as_deref(), by), (Some("one"), DecidedBy::Rule(1)));
    let (c, by) = color_with(rules, ClaimTrust::Verified, &get("/").with_header("b", "1"));
    assert_eq!((c.as_deref(), by), (Some("two"), DecidedBy::Rule(2)));
    let (c, by) = color_with(rules, ClaimTrust::Verified, &get("/"));
    assert_eq!((c.as_deref(), by), (Some("stable"), DecidedBy::Default));
    let (c, by) = color_with(
        r#"match { path == "/x" } -> "x""#,
        ClaimTrust::Verified,
        &get("/"),
    );
    assert_eq!((c, by), (None, DecidedBy::Nothing));
}

#[wasm_bindgen_test(unsupported = test)]
fn absent_values_make_every_comparison_false() {
    let req = get("/");
    for cond in [
        r#"header["x"] == "a""#,
        r#"header["x"] != "a""#,
        r#"header["x"] in ["a"]"#,
        r#"header["x"] not in ["a"]"#,
        r#"header["x"] =~ ".*""#,
        r#"header["x"] !~ "a""#,
        r#"header["x"] starts_with """#,
        r#"header["x"] < 5"#,
        r#"header["x"] >= 1.0.0"#,
        r#"query["q"] == "" "#,
        r#"cookie["c"] != "x""#,
        r#"token["sub"] != "x""#,
        r#"bucket(header["uid"], "g") <= 100"#,
        r#"source.ip in ["0.0.0.0/0", "::/0"]"#,
        r#"exists(header["x"])"#,
    ] {
        assert!(!holds(cond, &req), "{cond}");
    }
    // `!` negates the whole condition, so it is how to say "not present or different".
    assert!(holds(r#"!(header["x"] == "a")"#, &req));
    assert!(holds(r#"!exists(header["x"])"#, &req));
}

#[wasm_bindgen_test(unsupported = test)]
fn string_operators() {
    let req = get("/api/v2/items?x=1")
        .with_header("X-Env", "prod")
        .with_header(":authority", "Shop.Example.com:8443");
    let cases = [
        (r#"header["x-env"] == "prod""#, true),
        (r#"header["X-ENV"] == "prod""#, true),
        (r#"header["x-env"] == "Prod""#, false),
        (r#"header["x-env"] != "dev""#, true),
        (r#"header["x-env"] in ["dev", "prod"]"#, true),
        (r#"header["x-env"] not in ["dev", "prod"]"#, false),
        (r#"header["x-env"] =~ "^pr""#, true),
        (r#"header["x-env"] =~ "ro""#, true),
        (r#"header["x-env"] =~ "^ro""#, false),
        (r#"header["x-env"] !~ "^dev$""#, true),
        (r#"header["x-env"] starts_with "pr""#, true),
        (r#"header["x-env"] ends_with "od""#, true),
        (r#"header["x-env"] contains "ro""#, true),
        (r#"path == "/api/v2/items""#, true),
        (r#"path starts_with "/api/v2/" && method == "GET""#, true),
        (r#"method == "POST""#, false),
        (r#"host == "shop.example.com""#, true),
        (r#"host ends_with ".example.com""#, true),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &req), want, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn boolean_structure_and_precedence() {
    let req = get("/").with_header("a", "1").with_header("b", "2");
    let cases = [
        (r#"header["a"] == "1" && header["b"] == "2""#, true),
        (r#"header["a"] == "1" && header["b"] == "3""#, false),
        (r#"header["a"] == "9" || header["b"] == "2""#, true),
        // && binds tighter than ||
        (
            r#"header["a"] == "1" || header["b"] == "3" && header["a"] == "9""#,
            true,
        ),
        (
            r#"(header["a"] == "1" || header["b"] == "3") && header["a"] == "9""#,
            false,
        ),
        (r#"!header["a"] == "9""#, true),
        (r#"!!(header["a"] == "1")"#, true),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &req), want, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn numbers_and_versions() {
    let req = get("/")
        .with_header("n", "42")
        .with_header("f", "2.5")
        .with_header("word", "many")
        .with_header("app", "5.10.1")
        .with_header("short", "v5.2")
        .with_header("pre", "5.2.0-rc.1");
    let cases = [
        (r#"header["n"] > 41"#, true),
        (r#"header["n"] >= 42 && header["n"] <= 42"#, true),
        (r#"header["n"] < 42"#, false),
        (r#"header["n"] == 42"#, true),
        (r#"header["n"] == 42.0"#, true),
        (r#"header["f"] > 2"#, true),
        // Not a number: absent for numeric tests, both ways.
        (r#"header["word"] > 0"#, false),
        (r#"header["word"] <= 0"#, false),
        (r#"header["word"] != 3"#, false),
        // Semver precedence, not string order: 5.10.1 > 5.2.0.
        (r#"header["app"] >= 5.2.0"#, true),
        (r#"header["app"] < 5.9.9"#, false),
        (r#"header["short"] >= 5.2.0"#, true),
        (r#"header["short"] == 5.2.0"#, true),
        (r#"header["pre"] < 5.2.0"#, true),
        (r#"header["pre"] >= 5.2.0-beta.2"#, true),
        (r#"header["word"] >= 1.0.0"#, false),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &req), want, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn query_and_cookies() {
    let req = get("/p?version=v2%2E1&name=a+b&version=v3&bad=%zz&u=%C3%A9")
        .with_header("cookie", "canary=always; theme=dark")
        .with_header("Cookie", "canary=never; late=1");
    let cases = [
        (r#"query["version"] =~ "^v2\\..*""#, true),
        (r#"query["version"] == "v3""#, false),
        (r#"query["name"] == "a b""#, true),
        (r#"query["u"] == "é""#, true),
        (r#"exists(query["bad"])"#, false),
        (r#"cookie["canary"] == "always""#, true),
        (r#"cookie["late"] == "1""#, true),
        (r#"cookie["theme"] in ["dark", "light"]"#, true),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &req), want, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_nested_arrays_numbers_booleans() {
    let token = unsigned_token(
        r#"{"sub":"user-a","groups":["beta-testers","staff"],"age":37,"admin":true,
            "realm":{"roles":["canary"],"tier":"gold"},"aud":"shop","empty":null}"#,
    );
    let req = get("/").with_header("authorization", &format!("Bearer {token}"));
    let cases = [
        (r#"token["sub"] in ["user-a", "user-b"]"#, true),
        (r#"token["sub"] == "user-a""#, true),
        (r#"token["groups"] contains "beta-testers""#, true),
        (r#"token["groups"] contains "beta""#, false),
        (r#"token["groups"] in ["staff"]"#, true),
        (r#"token["groups"] not in ["staff"]"#, false),
        (r#"token["groups"] not in ["nobody"]"#, true),
        (r#"token["age"] >= 18"#, true),
        (r#"token["age"] == 37"#, true),
        (r#"token["admin"] == true"#, true),
        (r#"token["admin"] == false"#, false),
        (r#"token["realm"]["roles"] contains "canary""#, true),
        (r#"token["realm"]["tier"] == "gold""#, true),
        (r#"token["realm"] == "gold""#, false),
        (r#"exists(token["realm"])"#, true),
        (r#"exists(token["empty"])"#, false),
        (r#"exists(token["nope"]["deeper"])"#, false),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &req), want, "{cond}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_need_trust() {
    let token = unsigned_token(r#"{"sub":"user-a"}"#);
    let req = get("/").with_header("authorization", &format!("Bearer {token}"));
    let rules = r#"match { token["sub"] == "user-a" } -> "beta""#;
    assert_eq!(
        color_with(rules, ClaimTrust::Unverified, &req).0.as_deref(),
        Some("beta")
    );
    // Verified mode never decodes the bearer token itself.
    assert_eq!(color_with(rules, ClaimTrust::Verified, &req).0, None);
    let mut verified = get("/");
    verified.verified_claims = Some(serde_json::json!({"sub": "user-a"}));
    assert_eq!(
        color_with(rules, ClaimTrust::Verified, &verified)
            .0
            .as_deref(),
        Some("beta")
    );
    assert_eq!(color_with(rules, ClaimTrust::Unverified, &verified).0, None);
}

#[wasm_bindgen_test(unsupported = test)]
fn malformed_tokens_are_absent() {
    for auth in [
        "Bearer".to_string(),
        "Bearer not-a-jwt".to_string(),
        "Bearer a.b.c".to_string(),
        format!("Bearer x.{}.y", "%%%"),
        format!("Basic {}", unsigned_token(r#"{"sub":"user-a"}"#)),
        format!("Bearer {}", unsigned_token(r#"["sub","user-a"]"#)),
        format!("Bearer {}", unsigned_token(&"[".repeat(100_000))),
    ] {
        let req = get("/").with_header("authorization", &auth);
        assert!(!holds(r#"exists(token["sub"])"#, &req), "{auth:.60}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn buckets_are_sticky_and_unleash_compatible() {
    // Unleash's normalizedValue("123", "gr1") is 73.
    let req = get("/").with_header("x-user-id", "123");
    assert!(holds(r#"bucket(header["x-user-id"], "gr1") == 73"#, &req));
    assert!(holds(r#"bucket(header["x-user-id"], "gr1") <= 73"#, &req));
    assert!(!holds(r#"bucket(header["x-user-id"], "gr1") <= 72"#, &req));
    // Claims work as keys too.
    let token = unsigned_token(r#"{"sub":"999"}"#);
    let req = get("/").with_header("authorization", &format!("Bearer {token}"));
    assert!(holds(r#"bucket(token["sub"], "groupX") == 25"#, &req));
}

#[wasm_bindgen_test(unsupported = test)]
fn bucket_shares_converge() {
    let rules = r#"match { bucket(header["x-user-id"], "checkout-v2") <= 5 } -> "canary""#;
    let p = support::program(rules);
    let n = 20_000;
    let hits = (0..n)
        .filter(|i| {
            let req = get("/").with_header("x-user-id", &format!("user-{i}"));
            let source = traffic_color::config::ClaimSource::of(ClaimTrust::Verified);
            let facts = traffic_color::request::RequestFacts::new(&req, &p.needs, &source);
            p.decide(&facts).tag.is_some()
        })
        .count();
    let share = hits as f64 / n as f64;
    assert!((0.04..0.06).contains(&share), "share {share}");
}

#[wasm_bindgen_test(unsupported = test)]
fn source_ip_cidrs() {
    let mut req = get("/");
    req.source_address = Some("10.1.2.3:5555".into());
    assert!(holds(r#"source.ip in ["10.0.0.0/8"]"#, &req));
    assert!(holds(r#"source.ip == "10.1.2.3""#, &req));
    assert!(holds(r#"source.ip not in ["192.168.0.0/16", "::1"]"#, &req));
    assert!(!holds(r#"source.ip in ["10.1.2.4/32"]"#, &req));
    req.source_address = Some("[2001:db8::7]:443".into());
    assert!(holds(r#"source.ip in ["2001:db8::/32"]"#, &req));
    req.source_address = Some("garbage".into());
    assert!(!holds(r#"source.ip not in ["10.0.0.0/8"]"#, &req));
}

#[wasm_bindgen_test(unsupported = test)]
fn time_windows_use_the_proxys_clock() {
    let rules = r#"
        match { exists(header["a"]) } from "2026-12-01T00:00:00Z" until "2026-12-24T00:00:00+01:00" -> "xmas"
        match { exists(header["a"]) } until "2026-12-01T00:00:00Z" -> "early"
        default -> "stable"
    "#;
    let at = |rfc: &str| {
        let mut req = get("/").with_header("a", "1");
        req.now = traffic_color::lang::time::parse_rfc3339(rfc).ok();
        color(rules, &req)
    };
    assert_eq!(at("2026-11-30T23:59:59Z").as_deref(), Some("early"));
    assert_eq!(at("2026-12-01T00:00:00Z").as_deref(), Some("xmas"));
    assert_eq!(at("2026-12-23T22:59:59Z").as_deref(), Some("xmas"));
    assert_eq!(at("2026-12-23T23:00:00Z").as_deref(), Some("stable"));
    // No clock: windowed rules are out of force.
    assert_eq!(
        color(rules, &get("/").with_header("a", "1")).as_deref(),
        Some("stable")
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn needs_record_exactly_what_is_read() {
    let p = support::program(
        r#"match { header["X-A"] == "1" || header["x-a"] == "2" || query["q"] == "1" } -> "a"
           match { cookie["c"] == "1" && token["r"]["s"] == "1" && path == "/" } -> "b"
           match { bucket(header["uid"], "g") <= 5 && source.ip in ["10.0.0.0/8"] } -> "c""#,
    );
    assert_eq!(p.needs.headers, vec!["x-a".to_string(), "uid".to_string()]);
    assert_eq!(p.needs.queries, vec!["q".to_string()]);
    assert_eq!(p.needs.cookies, vec!["c".to_string()]);
    assert_eq!(p.needs.claims, vec![vec!["r".to_string(), "s".to_string()]]);
    assert!(
        p.needs.path && p.needs.source_ip && !p.needs.method && !p.needs.host && !p.needs.clock
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn limits_are_enforced_with_clear_errors() {
    use traffic_color::lang::{ErrorKind, compile, limits};
    let kinds = support::error_kinds;
    let many = "match { path == \"/\" } -> \"a\"\n".repeat(limits::MAX_RULES + 1);
    assert_eq!(
        kinds(&many),
        vec![ErrorKind::TooManyRules {
            limit: limits::MAX_RULES
        }]
    );
    let huge = format!(
        "# {}\ndefault -> \"a\"",
        "x".repeat(limits::MAX_PROGRAM_BYTES)
    );
    assert!(matches!(
        kinds(&huge)[..],
        [ErrorKind::ProgramTooLarge { .. }]
    ));
    let long_regex = format!(
        "match {{ path =~ \"{}\" }} -> \"a\"",
        "a".repeat(limits::MAX_REGEX_CHARS + 1)
    );
    assert!(matches!(
        kinds(&long_regex)[..],
        [ErrorKind::RegexTooLong { .. }]
    ));
    // Nested counted repetitions stay under the count limit but not under the size limits.
    let big_regex = r#"match { path =~ "(((a{100}){100}){100})" } -> "a""#;
    assert!(
        matches!(kinds(big_regex)[..], [ErrorKind::RegexTooComplex { .. }]),
        "{:?}",
        kinds(big_regex)
    );
    // Under the count limit, but the automaton of a thousand Unicode `.` is too large.
    assert!(matches!(
        kinds(r#"match { path =~ ".{1000}" } -> "a""#)[..],
        [ErrorKind::RegexTooComplex { .. }]
    ));
    // One counted repetition above the limit (issue 11: `\w{10000}` held a worker for 10 s).
    let counted = format!(
        "match {{ path =~ \"^\\\\w{{{}}}\" }} -> \"a\"",
        limits::MAX_REGEX_REPETITION + 1
    );
    assert!(
        matches!(&kinds(&counted)[..], [ErrorKind::InvalidRegex { reason, .. }] if reason.contains("above the limit")),
        "{:?}",
        kinds(&counted)
    );
    let at_limit = format!(
        "match {{ path =~ \"^\\\\w{{{}}}\" }} -> \"a\"",
        limits::MAX_REGEX_REPETITION
    );
    assert_eq!(kinds(&at_limit), vec![]);
    // Each regex fits, but together they pass the program's budget of automata.
    let one = r#"match { header["x"] =~ "^.{1,100}$" } -> "a""#;
    let many = format!("{one}\n").repeat(60);
    assert!(
        kinds(&many)
            .iter()
            .all(|k| matches!(k, ErrorKind::RegexesTooLarge { .. })),
        "{:?}",
        kinds(&many)
    );
    assert!(!kinds(&many).is_empty());
    let items = (0..=limits::MAX_LIST_ITEMS)
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(",");
    let long_list = format!("match {{ path in [{items}] }} -> \"a\"");
    assert!(matches!(
        kinds(&long_list)[..],
        [ErrorKind::ListTooLong { .. }]
    ));
    let junk = "$ ".repeat(500);
    let k = kinds(&junk);
    assert_eq!(k.len(), limits::MAX_DIAGNOSTICS + 1);
    assert_eq!(
        k.last(),
        Some(&ErrorKind::TooManyErrors {
            limit: limits::MAX_DIAGNOSTICS
        })
    );
    // A run of bad characters is one error.
    assert_eq!(
        kinds(&"@".repeat(10_000)),
        vec![ErrorKind::UnexpectedChar('@')]
    );
    // A thousand rules compile (the benchmark's size) and a program just under the limits too.
    let thousand: String = (0..1000)
        .map(|i| format!("match {{ header[\"h{i}\"] == \"{i}\" && bucket(header[\"u\"], \"g{i}\") <= 5 }} -> \"t{i}\"\n"))
        .collect();
    let p = compile(&thousand).expect("1000 rules compile");
    assert_eq!(p.rules.len(), 1000);
    assert_eq!(p.needs.headers.len(), 1001);
}

/// Counts what a request is asked for, to prove the filter fetches only what the program needs,
/// each thing once, and decodes lazily.
struct Counting {
    inner: SimpleRequest,
    asked: std::cell::RefCell<Vec<String>>,
}

impl traffic_color::request::RequestSource for Counting {
    fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.asked.borrow_mut().push(name.to_string());
        self.inner.header(name)
    }
    fn header_values(&self, name: &str) -> Vec<std::borrow::Cow<'_, str>> {
        self.asked.borrow_mut().push(format!("all {name}"));
        self.inner.header_values(name)
    }
    fn source_address(&self) -> Option<String> {
        self.asked.borrow_mut().push("source".into());
        self.inner.source_address()
    }
    fn verified_claims(&self, n: &str, k: &str) -> Option<serde_json::Value> {
        self.asked.borrow_mut().push("claims".into());
        self.inner.verified_claims(n, k)
    }
    fn now(&self) -> Option<i64> {
        self.asked.borrow_mut().push("now".into());
        self.inner.now()
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn fetches_only_what_is_needed_once_and_lazily() {
    let p = support::program(
        r#"match { header["a"] == "1" && query["q"] == "1" } -> "x"
           match { header["A"] == "2" || cookie["c"] == "1" || cookie["d"] == "1" } -> "y"
           match { query["r"] == "1" && token["sub"] == "s" && token["n"] == 1 } -> "z"
           match { path == "/never" } -> "w""#,
    );
    let source = traffic_color::config::ClaimSource::of(ClaimTrust::Verified);
    let run = |req: SimpleRequest| {
        let counting = Counting {
            inner: req,
            asked: Default::default(),
        };
        let facts = traffic_color::request::RequestFacts::new(&counting, &p.needs, &source);
        let color = p.decide(&facts).tag.map(|t| t.as_str().to_string());
        let asked = counting.asked.borrow().clone();
        (color, asked)
    };
    // Rule 1 short-circuits on header a: no query is parsed, nothing else is read.
    let (c, asked) = run(get("/?q=1").with_header("a", "1"));
    assert_eq!(c.as_deref(), Some("x"));
    assert_eq!(asked, ["a", ":path"]);
    let (c, asked) = run(get("/?q=0&r=1").with_header("cookie", "d=1"));
    assert_eq!(c.as_deref(), Some("y"));
    // Header a once (rules 1 and 2 share its slot), all cookies once for both cookie names.
    assert_eq!(asked, ["a", "all cookie"]);
    let mut req = get("/?r=1");
    req.verified_claims = Some(serde_json::json!({"sub": "s", "n": 1}));
    let (c, asked) = run(req);
    assert_eq!(c.as_deref(), Some("z"));
    assert_eq!(asked, ["a", "all cookie", ":path", "claims"]);
    assert!(!p.needs.clock && !p.needs.method);
}

/// `split(key, "group")` is a percentage with four decimals; `split("group")` is keyed by the
/// request id, so a request with the same id splits the same way on every hop.
#[wasm_bindgen_test(unsupported = test)]
fn splits_are_percentages_of_their_key() {
    let with_id = |id: &str| get("/").with_header("x-request-id", id);
    let s = traffic_color::bucket::split("rollout", "3f0e8c2a-1");
    assert!((0.0..100.0).contains(&s));
    let below = format!("split(\"rollout\") < {}", s + 0.0001);
    let at = format!("split(\"rollout\") < {s}");
    assert!(holds(&below, &with_id("3f0e8c2a-1")));
    assert!(!holds(&at, &with_id("3f0e8c2a-1")));
    assert!(holds(
        &format!("split(header[\"x-request-id\"], \"rollout\") == {s}"),
        &with_id("3f0e8c2a-1")
    ));
    // No request id: absent, so no comparison holds.
    assert!(!holds("split(\"rollout\") >= 0", &get("/")));
    assert!(!holds("split(\"rollout\") < 100", &get("/")));
    // Over many requests, `< 0.5` takes about half a percent, `< 30` about 30%.
    let n = 40_000u32;
    let (mut small, mut large) = (0u32, 0u32);
    for i in 0..n {
        let req = with_id(&format!("{i:08x}-4c1d-4b2e-9a7f-{i:012x}"));
        small += u32::from(holds("split(\"rollout\") < 0.5", &req));
        large += u32::from(holds("split(\"rollout\") < 30", &req));
    }
    assert!((140..=260).contains(&small), "{small}");
    assert!((11_600..=12_400).contains(&large), "{large}");
}

#[wasm_bindgen_test(unsupported = test)]
fn baggage_members_are_values() {
    let req = get("/")
        .with_header("baggage", "tenant=acme;prop=1, region=eu%2Dwest")
        .with_header("baggage", "tier=gold");
    assert!(holds(r#"baggage["tenant"] == "acme""#, &req));
    assert!(holds(r#"baggage["region"] == "eu-west""#, &req));
    assert!(holds(r#"baggage["tier"] in ["gold", "silver"]"#, &req));
    assert!(!holds(r#"exists(baggage["nope"])"#, &req));
    // Malformed: a broken escape makes the member absent.
    let bad = get("/").with_header("baggage", "tenant=%zz");
    assert!(!holds(r#"exists(baggage["tenant"])"#, &bad));
    assert!(!holds(r#"baggage["tenant"] != "acme""#, &bad));
}

/// Identical regex tests share one pass over their value per request; sharing never changes an
/// answer: `=~` and `!~` of one pattern, in one rule and across rules, on one value and on
/// two, with the value absent and present, and on a token claim that is an array.
#[wasm_bindgen_test(unsupported = test)]
fn shared_regex_tests_answer_as_separate_ones() {
    let rules = r#"
        match { header["ua"] =~ "[Bb]ot" && header["ua"] !~ "[Bb]ot" } -> "never"
        match { header["ua"] !~ "[Bb]ot" && header["x"] =~ "[Bb]ot" } -> "x-bot"
        match { header["ua"] =~ "[Bb]ot" && !(header["x"] =~ "[Bb]ot") } -> "ua-bot"
        match { token["groups"] =~ "^(beta|alpha)[0-9]" || header["ua"] =~ "[Bb]ot" } -> "either"
        default -> "none"
    "#;
    let cases = [
        (get("/"), "none"),
        (get("/").with_header("ua", "a Bot"), "ua-bot"),
        (get("/").with_header("x", "bot"), "none"),
        (
            get("/").with_header("ua", "human").with_header("x", "bot"),
            "x-bot",
        ),
        (
            get("/").with_header("ua", "bot").with_header("x", "bot"),
            "either",
        ),
    ];
    for (req, want) in cases {
        let (c, _) = color_with(rules, ClaimTrust::Verified, &req);
        assert_eq!(c.as_deref(), Some(want), "{req:?}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn distinct_scanning_regexes_are_bounded_per_program() {
    use traffic_color::lang::{ErrorKind, limits};
    let kinds = support::error_kinds;
    let rule = |i: usize| format!("match {{ header[\"ua\"] =~ \"[Bb]ot{i}\" }} -> \"a\"\n");
    let at_limit: String = (0..limits::MAX_REGEX_SCANS).map(rule).collect();
    assert_eq!(kinds(&at_limit), vec![]);
    let past: String = (0..=limits::MAX_REGEX_SCANS).map(rule).collect();
    assert_eq!(
        kinds(&past),
        vec![ErrorKind::TooManyRegexScans {
            limit: limits::MAX_REGEX_SCANS
        }]
    );
    // The same pattern on the same value any number of times is one scan; `^literal`
    // patterns are answered without a scan and are not counted.
    let same = "match { header[\"ua\"] =~ \"[Bb]ot0\" } -> \"a\"\n".repeat(500);
    let literal: String = (0..500)
        .map(|i| format!("match {{ header[\"ua\"] =~ \"^bot{i}\" }} -> \"a\"\n"))
        .collect();
    assert_eq!(kinds(&format!("{at_limit}{same}{literal}")), vec![]);
    // The same pattern on another value is another scan.
    let other = "match { header[\"other\"] =~ \"[Bb]ot0\" } -> \"a\"\n";
    assert_eq!(kinds(&format!("{at_limit}{other}")).len(), 1);
}

//! Evaluation on arbitrary requests against a fixed program that uses every source and
//! operator: decide never panics, explain agrees with decide, and with `keep` off the verdict's
//! color is always the rules' choice (never a client-sent value the rules did not produce), and
//! the baggage sent on never carries a color member that is not ours.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use traffic_color::config::FilterConfig;
use traffic_color::lang::eval::DecidedBy;
use traffic_color::request::{RequestFacts, SimpleRequest, baggage};
use traffic_color::verdict::{BaggageEdit, Decided, Verdict};

const RULES: &str = r#"
# testers and internal staff always get the canary
match { header["x-canary"] == "true" || cookie["canary"] == "always" } -> "canary"
match { cookie["canary"] == "never" } -> "stable"
match "blue" { header["X-Env"] == "prod" && query["version"] =~ "^v2\\..*" && token["sub"] in ["user-a", "user-b"] } -> "blue"
match { bucket(header["x-user-id"], "checkout-v2") <= 5 } -> "canary"
match { path starts_with "/api/v2/" && method == "GET" } -> "canary"
match { token["realm"]["roles"] contains "beta" || token["admin"] == true } -> "beta"
match { header["x-app-version"] >= 5.2.0 && header["x-n"] > 3 } -> "canary"
match { header["ua"] =~ "(a|aa)*b" || header["ua"] !~ "^Mozilla" && exists(cookie["session"]) } -> "regex"
match { !(host == "shop.example.com") && host ends_with ".example.com" } -> "sub"
match { source.ip in ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"] } -> "internal"
match { source.ip not in ["127.0.0.0/8"] && query["q"] not in ["a", "b", "c"] } -> "outside"
match { bucket(cookie["uid"], "g2") > 50 && bucket(token["sub"], "g3") <= 10 } -> "mixed"
match { path == "/window" } from "2000-01-01T00:00:00Z" until "2200-01-01T00:00:00+02:00" -> "windowed"
match { query["n"] < -2.5 || token["n"] >= 7 || header["x-v"] < 1.0.0-rc.1 } -> "numbers"
match { method != "POST" && path contains "%" && query["x"] == "a b" } -> "decoded"
default -> "stable"
"#;

fn config(json_extra: &str) -> FilterConfig {
    let json = serde_json::json!({ "rules": RULES }).to_string();
    let json = format!("{}{json_extra}}}", &json[..json.len() - 1]);
    match FilterConfig::from_json(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("the fuzz program must compile: {e}"),
    }
}

fn configs() -> &'static [FilterConfig; 2] {
    static C: OnceLock<[FilterConfig; 2]> = OnceLock::new();
    C.get_or_init(|| {
        [
            config(r#","jwt":{"trust":"unverified"},"baggage":"tc""#),
            config(r#","jwt":{"trust":"verified"}"#),
        ]
    })
}

/// Names biased towards what the program reads, so the fuzzer reaches the rules quickly.
const NAMES: &[&str] = &[
    ":method",
    ":path",
    ":authority",
    "host",
    "x-canary",
    "cookie",
    "x-env",
    "x-user-id",
    "authorization",
    "x-app-version",
    "x-n",
    "ua",
    "x-v",
    "x-version-route",
    "baggage",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    headers: Vec<(Name<'a>, &'a str)>,
    source_address: Option<&'a str>,
    verified_claims: Option<&'a str>,
    now: Option<i64>,
    incoming: Option<&'a str>,
    baggage: Option<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    let mut req = SimpleRequest::default();
    for (name, value) in &input.headers {
        let name = match name {
            Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()],
            Name::Other(s) => s,
        };
        req.headers.push((name.to_string(), value.to_string()));
    }
    req.source_address = input.source_address.map(str::to_string);
    req.verified_claims = input
        .verified_claims
        .and_then(|s| serde_json::from_str(s).ok());
    req.now = input.now;

    for config in configs() {
        let program = &config.program;
        let facts = RequestFacts::new(&req, &program.needs, &config.claims);
        let decision = program.decide(&facts);
        let explanation = program.explain(&config.rules, &facts);
        assert_eq!(
            explanation.color.as_deref(),
            decision.tag.map(|t| t.as_str())
        );
        let rule = match decision.by {
            DecidedBy::Rule(n) => Some(n),
            _ => None,
        };
        assert_eq!(explanation.rule, rule);
        let _ = explanation.render();

        // keep is off: whatever arrives in the color header or baggage, the rules decide.
        let mut sent = req.clone();
        if let Some(c) = input.incoming {
            sent.headers.push(("x-version-route".into(), c.into()));
        }
        if let Some(b) = input.baggage {
            sent.headers.push(("baggage".into(), b.into()));
        }
        let verdict = Verdict::for_request(config, &sent, None);
        let clean = Verdict::for_request(config, &req, None);
        assert_eq!(verdict.decided, Decided::Rules(decision.by));
        if !sent.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-version-route") || k.eq_ignore_ascii_case("baggage")) {
            assert_eq!(verdict, clean);
        }
        assert_eq!(verdict.color, decision.tag);
        if let BaggageEdit::Set(sent_on) = &verdict.baggage_edit {
            let ours = (!verdict.baggage_full).then_some(verdict.color).flatten();
            assert_eq!(
                baggage::member(sent_on, "tc").as_deref(),
                ours.map(|t| t.as_str())
            );
        }
    }
});

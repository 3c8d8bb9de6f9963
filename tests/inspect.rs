//! What the tools show about a config (`traffic_color::inspect`): requests as data, `check` as
//! data, samples, and what changes between two configs. Runs natively and, compiled to
//! wasm32-unknown-unknown, under Node with wasm-bindgen-test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use std::collections::BTreeSet;
use traffic_color::config::{ConfigError, FilterConfig};
use traffic_color::inspect::request::RequestLine;
use traffic_color::inspect::{Judge, api, check, explain, sample, simulate};
use traffic_color::request::RequestSource;
use traffic_color::verdict::Verdict;
use wasm_bindgen_test::wasm_bindgen_test;

/// Rules over every source and operator kind, several behind `!`, `!=` or `not in`.
const RULES: &str = r#"
match { header["x-canary"] == "true" || cookie["canary"] == "always" } -> "canary"
match { cookie["canary"] == "never" } -> "stable"
match "blue" { header["X-Env"] == "prod" && query["version"] =~ "^v2\\..*" && token["sub"] in ["user-a", "user-b"] } -> "blue"
match { bucket(header["x-user-id"], "checkout-v2") <= 5 } -> "canary"
match { path starts_with "/api/v2/" && method == "POST" } -> "canary"
match { token["groups"] contains "beta" || token["admin"] == true } -> "beta"
match { header["x-app-version"] > 5.2.0 && header["x-n"] > 3 } -> "canary"
match { host ends_with ".example.com" && !(host == "shop.example.com") } -> "sub"
match { source.ip in ["10.0.0.0/8", "2001:db8::/32"] } -> "internal"
match { query["q"] not in ["a", "b"] && exists(cookie["session"]) } -> "session"
match { header["ua"] !~ "bot" && header["ua"] =~ "^Mozilla/[0-9]+ " } -> "browser"
match { split(cookie["uid"], "exp") < 50 && header["x-exp"] != "off" } -> "exp"
match { path == "/window" } from "2000-01-01T00:00:00Z" until "2200-01-01T00:00:00Z" -> "windowed"
default -> "stable"
"#;

/// 2026-11-26T12:00:00Z, inside the windowed rule's window.
const NOW: Option<i64> = Some(1_795_694_400_000_000_000);

fn judge(rules: &str) -> Judge {
    Judge::new(&json!({ "rules": rules }).to_string()).unwrap_or_else(|e| panic!("{e}"))
}

#[wasm_bindgen_test(unsupported = test)]
fn a_request_line_becomes_the_request_the_filter_sees() {
    let line: RequestLine = serde_json::from_value(json!({
        "method": "POST", "path": "/x?a=1", "headers": [["X-Up", "v"]],
        "query": [["q", "a b&c"], ["é", "1"]], "cookies": [["c", "1"], ["d", "2"]],
        "claims": {"sub": "u"}, "source_ip": "10.0.0.1", "at": "2026-11-26T12:00:00Z"
    }))
    .unwrap();
    let req = line.to_request(None).unwrap();
    assert_eq!(req.header(":method").as_deref(), Some("POST"));
    assert_eq!(
        req.header(":path").as_deref(),
        Some("/x?a=1&q=a%20b%26c&%C3%A9=1")
    );
    assert_eq!(req.header("x-up").as_deref(), Some("v"));
    assert_eq!(req.header("cookie").as_deref(), Some("c=1; d=2"));
    assert_eq!(req.source_address(), Some("10.0.0.1".to_string()));
    assert_eq!(req.now, NOW);
    assert_eq!(req.verified_claims, Some(json!({"sub": "u"})));

    let bare: RequestLine = serde_json::from_str("{\"path\": \"/p\"}").unwrap();
    let req = bare.to_request(Some(7)).unwrap();
    assert_eq!(req.header(":path").as_deref(), Some("/p"));
    assert_eq!(
        (req.now, req.header(":method").as_deref()),
        (Some(7), Some("GET"))
    );

    let late: RequestLine = serde_json::from_str("{\"at\": \"yesterday\"}").unwrap();
    assert!(
        late.to_request(None)
            .unwrap_err()
            .starts_with("at `yesterday`")
    );
    assert!(serde_json::from_str::<RequestLine>("{\"cookie\": []}").is_err());
}

#[wasm_bindgen_test(unsupported = test)]
fn check_positions_config_and_rule_problems() {
    let c = check::check(
        &json!({"rules": "match { split(\"g\") < 5 } -> \"b\"\ndefault -> \"a\""}).to_string(),
    );
    assert!(c.ok);
    assert_eq!((c.rules, c.default.as_deref()), (1, Some("a")));
    assert_eq!(c.tags, ["b", "a"]);

    let json = "{\n  \"rules\": \"default -> \\\"a\\\"\",\n  \"header\": \"bad header\"\n}";
    let c = check::check(json);
    assert!(!c.ok);
    let d = &c.diagnostics[0];
    assert_eq!((d.place, d.line, d.column), ("config", 3, 13));
    let e = FilterConfig::from_json(json.as_bytes()).unwrap_err();
    assert_eq!(d.text, e.to_string());

    let rules = "match { header[\"a\"] == 1 }\n  -> \"ok\"\nmatch { nope == \"x\" } -> \"b\"\n";
    let c = check::check(rules);
    let Err(ConfigError::Rules { diagnostics, .. }) =
        FilterConfig::from_json(json!({ "rules": rules }).to_string().as_bytes())
    else {
        panic!("accepted")
    };
    assert_eq!(c.diagnostics.len(), diagnostics.len());
    for (p, d) in c.diagnostics.iter().zip(&diagnostics) {
        assert_eq!(p.place, "rules");
        assert_eq!(p.text, d.render(rules));
        assert_eq!(p.message, d.kind.to_string());
        assert_eq!((p.line, p.column), d.position(rules));
    }
    let unknown = c
        .diagnostics
        .iter()
        .find(|p| p.message.contains("unknown source"))
        .unwrap();
    assert_eq!(
        (
            unknown.line,
            unknown.column,
            unknown.end_line,
            unknown.end_column
        ),
        (3, 9, 3, 13)
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn samples_reach_every_rule() {
    let j = judge(RULES);
    let requests = sample::sample(&j.config, 300);
    let mut decided = BTreeSet::new();
    for line in &requests {
        let req = line.to_request(NOW).unwrap();
        assert!(req.header("x-request-id").is_some(), "{line:?}");
        decided.insert(
            Verdict::for_request(j.config_for(&req), &req, None)
                .decided
                .to_string(),
        );
    }
    let mut want: BTreeSet<String> = (1..=13).map(|n| format!("rule {n}")).collect();
    want.insert("default".into());
    assert_eq!(decided, want);
    // The users come first, numbered, each with its own request id.
    assert_eq!(
        requests[0].headers[0],
        ("x-user-id".to_string(), "user-1".to_string())
    );
    let ids: BTreeSet<_> = requests.iter().map(|r| r.headers.last().cloned()).collect();
    assert_eq!(ids.len(), requests.len());
    // The split's key (a cookie) carries the user id too, so users spread over it.
    assert!(
        requests[299]
            .cookies
            .contains(&("uid".to_string(), "user-300".to_string()))
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn with_keep_each_tag_arrives_once() {
    let config = json!({"rules": "match { header[\"a\"] == \"1\" } -> \"canary\"\ndefault -> \"stable\"", "keep": true});
    let j = Judge::new(&config.to_string()).unwrap();
    let kept = sample::sample(&j.config, 0)
        .into_iter()
        .filter(|r| r.headers.iter().any(|(k, _)| k == "x-version-route"))
        .count();
    assert_eq!(kept, 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn changes_count_moves_and_keep_examples_reproducible() {
    let old = judge("default -> \"stable\"");
    let new = judge(
        "match { header[\"x\"] == \"1\" } -> \"canary\"\nmatch { split(\"g\") < 50 } -> \"beta\"\ndefault -> \"stable\"",
    );
    let mut requests = Vec::new();
    for i in 0..100 {
        let mut r = RequestLine::default();
        if i % 4 == 0 {
            r.headers.push(("x".into(), "1".into()));
        }
        requests.push(r);
    }
    let c = simulate::changes(&old, &new, &requests, None).unwrap();
    assert_eq!(c.requests, 100);
    assert_eq!(c.old.get("stable"), Some(&100));
    assert_eq!(c.new.get("canary"), Some(&25));
    let beta = c.new.get("beta").copied().unwrap_or(0);
    assert_eq!(c.changed, 25 + beta);
    assert!((20..=55).contains(&beta), "{beta}");
    assert_eq!(c.moves[0].count, beta.max(25));
    assert_eq!(c.moves.iter().map(|m| m.count).sum::<u64>(), c.changed);
    assert_eq!(c.examples.len(), simulate::MAX_EXAMPLES);
    for ex in &c.examples {
        let req = ex.request.to_request(None).unwrap();
        assert_eq!(
            explain::explain(&new, &req).color.as_deref(),
            Some(ex.to.as_str())
        );
        assert_eq!(
            explain::explain(&old, &req).color.as_deref(),
            Some(ex.from.as_str())
        );
        assert_eq!(ex.old_decided, "default");
    }
    // The same config changes nothing.
    let same = simulate::changes(&new, &judge(&new.config.rules), &requests, None).unwrap();
    assert_eq!(
        (same.changed, same.moves.len(), same.examples.len()),
        (0, 0, 0)
    );
    assert_eq!(same.old, same.new);
    // A bad request says which.
    let bad = vec![
        RequestLine::default(),
        RequestLine {
            at: Some("x".into()),
            ..RequestLine::default()
        },
    ];
    assert!(
        simulate::changes(&old, &new, &bad, None)
            .unwrap_err()
            .starts_with("request 2:")
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn claims_are_judged_as_verified_whatever_the_trust() {
    let config = json!({"rules": "match { token[\"sub\"] == \"a\" } -> \"blue\"\ndefault -> \"stable\"",
                        "jwt": {"trust": "unverified"}});
    let j = Judge::new(&config.to_string()).unwrap();
    let line: RequestLine = serde_json::from_value(json!({"claims": {"sub": "a"}})).unwrap();
    let e = explain::explain(&j, &line.to_request(None).unwrap());
    assert_eq!(e.color.as_deref(), Some("blue"));
    assert_eq!(e.decided_by, "rule 1");
    let text = explain::render(&e, &j.config);
    assert!(
        text.ends_with("=> color \"blue\", decided by rule 1\n"),
        "{text}"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn the_api_answers_json_and_errors_inside_it() {
    let rules =
        "match { bucket(header[\"u\"], \"g\") <= 10 } -> \"canary\"\ndefault -> \"stable\"\n";
    let config = json!({ "rules": rules }).to_string();
    let knobs: serde_json::Value = serde_json::from_str(&api::knobs(&config)).unwrap();
    assert_eq!(
        knobs,
        json!([{"index": 0, "rule": 1, "name": null, "function": "bucket", "op": "<=",
                "value": 10.0, "share": 10.0, "line": 1, "column": 37}])
    );
    let set: serde_json::Value = serde_json::from_str(&api::set_knob(rules, 0.0, 30.0)).unwrap();
    assert_eq!(set["rules"], rules.replace("<= 10", "<= 30"));
    let e: serde_json::Value = serde_json::from_str(&api::set_knob(rules, 0.5, 30.0)).unwrap();
    assert!(e["error"].as_str().unwrap().contains("whole number"));
    let e: serde_json::Value = serde_json::from_str(&api::knobs("{\"rules\": \"x\"}")).unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("config rejected: rules rejected")
    );
    let s: serde_json::Value = serde_json::from_str(&api::sample(&config, 3.0)).unwrap();
    // Three users, then one request whose `u` draws a bucket the rule selects.
    assert_eq!(s.as_array().map(Vec::len), Some(4));
    assert_eq!(s[2]["headers"][0], json!(["x-user-id", "user-3"]));
    // `u` is the bucket's key: every user carries it.
    assert_eq!(s[2]["headers"][1], json!(["u", "user-3"]));
    let drawn = s[3]["headers"][0][1].as_str().unwrap();
    assert_eq!(s[3]["headers"][0][0], "u");
    assert!(traffic_color::bucket::bucket("g", drawn) <= 10, "{drawn}");
}

//! Knobs (`lang::knobs`): a program rewritten by `set_knob` selects the share asked for, as
//! the filter's own verdicts count it. Native only (proptest).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use proptest::prelude::*;
use proptest::test_runner::Config;
use traffic_color::config::FilterConfig;
use traffic_color::inspect::request::with_request_id;
use traffic_color::lang::knobs::{knobs, set_knob};
use traffic_color::request::SimpleRequest;
use traffic_color::verdict::Verdict;

const OPS: [&str; 4] = ["<", "<=", ">", ">="];

fn program(function: &str, op: &str, literal: &str) -> String {
    let value = match function {
        "split" => "split(header[\"x-user-id\"], \"rollout\")",
        _ => "bucket(header[\"x-user-id\"], \"rollout\")",
    };
    format!(
        "# steered by the slider\nmatch \"first\" {{ header[\"x-canary\"] == \"true\" }} -> \"canary\"\n\
         match \"rollout\" {{ header[\"x-beta\"] != \"no\" || {value} {op} {literal} }} -> \"canary\"\n\
         default -> \"stable\"\n"
    )
}

fn config(rules: &str) -> FilterConfig {
    FilterConfig::from_json(serde_json::json!({ "rules": rules }).to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn is_canary(config: &FilterConfig, user: &str) -> bool {
    let mut req = SimpleRequest::new("GET", "/").with_header("x-user-id", user);
    with_request_id(&mut req, 0);
    Verdict::for_request(config, &req, None)
        .color
        .is_some_and(|t| t.as_str() == "canary")
}

/// For each bucket 1..=100, a user id that lands in it.
fn one_user_per_bucket() -> Vec<String> {
    let mut users = vec![None; 100];
    for n in 0.. {
        let id = format!("user-{n}");
        let b = traffic_color::bucket::bucket("rollout", &id) as usize;
        users[b - 1].get_or_insert(id);
        if users.iter().all(Option::is_some) {
            break;
        }
    }
    users.into_iter().flatten().collect()
}

proptest! {
    #![proptest_config(Config { cases: 48, ..Config::default() })]

    /// A bucket knob is exact: of the 100 buckets, the rewritten rule selects `share`.
    #[test]
    fn a_bucket_knob_selects_exactly_its_share(op in 0..4usize, start in 0..=100u32, share in 0..=100u32) {
        let rules = program("bucket", OPS[op], &start.to_string());
        let rewritten = set_knob(&rules, 0, f64::from(share)).unwrap();
        // Only the literal changed.
        let k = knobs(&rewritten);
        prop_assert_eq!(k.len(), 1);
        prop_assert_eq!(&rewritten[..k[0].span.start], &rules[..k[0].span.start]);
        prop_assert_eq!(k[0].share, f64::from(share));
        prop_assert_eq!((k[0].rule, k[0].name.as_deref()), (2, Some("rollout")));
        // `x-beta != "no"` is false for users without the header: the bucket decides.
        let c = config(&rewritten);
        let selected = one_user_per_bucket().iter().filter(|u| is_canary(&c, u)).count();
        prop_assert_eq!(selected as u32, share);
    }

    /// A split knob is exact to 0.0001% by its count, and the users it selects match it.
    #[test]
    fn a_split_knob_selects_its_share(op in 0..4usize, start in 0.0..100.0f64, share in 0.0..=100.0f64) {
        let rules = program("split", OPS[op], &format!("{start:.2}"));
        let rewritten = set_knob(&rules, 0, share).unwrap();
        let k = knobs(&rewritten);
        let want = (share * 10_000.0).round() / 10_000.0;
        prop_assert!((k[0].share - want).abs() < 1e-9, "{} vs {}", k[0].share, want);
        let c = config(&rewritten);
        let n = 4_000;
        let hits = (0..n).filter(|i| is_canary(&c, &format!("u{i}"))).count() as f64;
        let p = want / 100.0;
        // Five standard deviations of a binomial, plus a hair for p at 0 or 1.
        let tolerance = 5.0 * (p * (1.0 - p) / f64::from(n)).sqrt() + 1e-3;
        prop_assert!((hits / f64::from(n) - p).abs() <= tolerance, "{hits} of {n} for {share}: {rewritten}");
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    /// Whatever the text and numbers, every call of the page's API answers JSON.
    #[test]
    fn the_api_answers_json_for_any_input(
        picks in proptest::collection::vec(0..support::FRAGMENTS.len(), 0..40),
        index in -2.0..6.0f64,
        share in -10.0..110.0f64,
        n in -5.0..50.0f64,
    ) {
        use traffic_color::inspect::api;
        let rules: Vec<&str> = picks.iter().map(|&i| support::FRAGMENTS[i]).collect();
        let rules = rules.join(" ");
        let config = serde_json::json!({ "rules": rules }).to_string();
        let json = |s: String| serde_json::from_str::<serde_json::Value>(&s).map_err(|e| format!("{e}: {s}"));
        prop_assert!(json(api::check(&config)).is_ok());
        prop_assert!(json(api::check(&rules)).is_ok());
        prop_assert!(json(api::knobs(&config)).is_ok());
        prop_assert!(json(api::set_knob(&rules, index.round(), share)).is_ok());
        prop_assert!(json(api::set_knob(&rules, index, share)).is_ok());
        let sample = api::sample(&config, n.round());
        prop_assert!(json(sample.clone()).is_ok());
        let requests = if sample.starts_with('[') { sample } else { "[{}]".to_string() };
        let other = serde_json::json!({ "rules": "default -> \"x\"" }).to_string();
        let changes = json(api::changes(&config, &other, &requests, None));
        prop_assert!(changes.is_ok());
        let request = serde_json::json!({ "headers": [["x", "1"]] }).to_string();
        let explained = json(api::explain(&config, &request, None));
        prop_assert!(explained.is_ok());
    }
}

#[test]
fn knobs_of_a_program_that_does_not_compile_still_number_rules_by_keyword() {
    let rules = "match { header[\"a\"] == } -> \"x\"\nmatch { split(\"g\") < 10 } -> \"y\"\n";
    let k = knobs(rules);
    assert_eq!(k.len(), 1);
    assert_eq!((k[0].rule, k[0].line, k[0].share), (2, 2, 10.0));
}

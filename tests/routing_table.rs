//! The routing table in fixtures/routing.json, evaluated by the core (natively and in Wasm). The
//! end-to-end suite runs the same table through a real Envoy, so the two cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use traffic_color::config::FilterConfig;
use traffic_color::request::SimpleRequest;
use traffic_color::verdict::Verdict;
use wasm_bindgen_test::wasm_bindgen_test;

const TABLE: &str = include_str!("fixtures/routing.json");

#[wasm_bindgen_test(unsupported = test)]
fn every_case_gets_its_color_from_its_rule() {
    let table: Value = serde_json::from_str(TABLE).unwrap();
    let config = FilterConfig::from_json(table["config"].to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "the table lost its cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut req = SimpleRequest::new(
            case["method"].as_str().unwrap(),
            case["path"].as_str().unwrap(),
        )
        .with_header(":authority", "localhost");
        // As Envoy sees the test client.
        req.source_address = Some("127.0.0.1:40000".into());
        // A fixed clock: the table's windows are decades wide, and Wasm tests have no clock.
        req.now = traffic_color::lang::time::parse_rfc3339("2026-11-26T12:00:00Z").ok();
        for pair in case["headers"].as_array().unwrap() {
            req = req.with_header(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        }
        let verdict = Verdict::for_request(&config, &req, None);
        let got = verdict.color.map(|t| t.as_str());
        let by = verdict.decided.to_string();
        let want = case["expect"].as_str();
        let want_rule = case["rule"].as_str();
        if got != want || want_rule.is_some_and(|r| r != by) {
            failures.push(format!(
                "{name}: got {got:?} by rule {by}, want {want:?} by rule {want_rule:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

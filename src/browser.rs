//! The cockpit page's compiler: [`crate::inspect::api`] exported to JavaScript with
//! wasm-bindgen, so the page checks, explains and previews with the filter's own code
//! (`make cockpit-web` builds `target/cockpit-web/traffic_color.js` and `_bg.wasm`).
//!
//! Every function takes strings (and plain numbers) and returns a JSON string; none throws for
//! bad input: errors come back as `{"error": "..."}` (or, for `check`, as diagnostics). The
//! page's clock is the proxy's clock unless a request says `at`.

use crate::inspect::api;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Milliseconds since the Unix epoch (JavaScript's `Date.now()`): the target has no clock
    /// of its own.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

/// Unix nanoseconds now, or `None` when the clock reads nonsense.
fn now() -> Option<i64> {
    let ms = date_now();
    (ms.is_finite() && ms.abs() < 9.0e12).then_some((ms * 1e6) as i64)
}

/// `{"ok","hash","rules","default","tags","diagnostics":[{"where","line","column","end_line",
/// "end_column","message","text"}]}` for a JSON config or a bare rules program.
#[wasm_bindgen]
pub fn check(config: &str) -> String {
    api::check(config)
}

/// The `traffic-color explain --json` object for `request` (a request object as JSON).
#[wasm_bindgen]
pub fn explain(config: &str, request: &str) -> String {
    api::explain(config, request, now())
}

/// A JSON array of `n` synthetic users' requests and requests from the rules' literals.
#[wasm_bindgen]
pub fn sample(config: &str, n: f64) -> String {
    api::sample(config, n)
}

/// Which of `requests` (a JSON array) change color from the old config to the new.
#[wasm_bindgen]
pub fn changes(old_config: &str, new_config: &str, requests: &str) -> String {
    api::changes(old_config, new_config, requests, now())
}

/// Every split or bucket compared with a number, with the share it selects.
#[wasm_bindgen]
pub fn knobs(config: &str) -> String {
    api::knobs(config)
}

/// `{"rules": text}`: `rules` with knob `index`'s number rewritten to select `share` percent.
#[wasm_bindgen]
pub fn set_knob(rules: &str, index: f64, share: f64) -> String {
    api::set_knob(rules, index, share)
}

#[cfg(test)]
mod tests {
    //! Through the exported functions, under Node (`make wasm-test`): what the page gets.
    use super::*;
    use serde_json::{Value, json};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn parse(s: String) -> Value {
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    const RULES: &str = "match \"testers\" { header[\"x-canary\"] == \"true\" } -> \"canary\"\n\
                         match \"rollout\" { split(\"rollout\") < 10 } -> \"canary\"\n\
                         default -> \"stable\"\n";

    fn config(rules: &str) -> String {
        json!({ "rules": rules }).to_string()
    }

    #[wasm_bindgen_test]
    fn check_reports_what_the_cli_prints() {
        let ok = parse(check(&config(RULES)));
        assert_eq!(ok["ok"], true);
        assert_eq!(ok["rules"], 2);
        assert_eq!(ok["default"], "stable");
        assert_eq!(ok["tags"], json!(["canary", "stable"]));
        assert_eq!(ok["hash"].as_str().map(str::len), Some(32));

        let bad = "match { header[\"x\"] == } -> \"a\"\ndefault -> \"b\"\n";
        let r = parse(check(&config(bad)));
        assert_eq!(r["ok"], false);
        assert_eq!(r["hash"], Value::Null);
        let d = &r["diagnostics"][0];
        assert_eq!(
            (
                d["where"].as_str(),
                d["line"].as_u64(),
                d["column"].as_u64()
            ),
            (Some("rules"), Some(1), Some(24))
        );
        let want = match crate::config::FilterConfig::from_json(config(bad).as_bytes()) {
            Err(crate::config::ConfigError::Rules {
                source,
                diagnostics,
            }) => diagnostics[0].render(&source),
            other => panic!("{other:?}"),
        };
        assert_eq!(d["text"].as_str(), Some(want.as_str()));
        assert!(want.starts_with("error: expected a literal"), "{want}");

        let r = parse(check("{\"rules\": 3}"));
        let d = &r["diagnostics"][0];
        assert_eq!(
            (d["where"].as_str(), d["line"].as_u64()),
            (Some("config"), Some(1))
        );
        assert!(
            d["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("invalid config JSON"))
        );
    }

    #[wasm_bindgen_test]
    fn explain_takes_headers_query_cookies_and_claims() {
        let rules = "match { cookie[\"c\"] == \"1\" && query[\"q\"] == \"a b\" && token[\"sub\"] == \"u\" } -> \"blue\"\n\
                     default -> \"stable\"\n";
        let req = json!({"path": "/x", "query": [["q", "a b"]], "cookies": [["c", "1"]],
                         "claims": {"sub": "u"}})
        .to_string();
        let e = parse(explain(&config(rules), &req));
        assert_eq!(e["color"], "blue", "{e}");
        assert_eq!(e["decided_by"], "rule 1");
        assert_eq!(e["rules"][0]["matched"], true);
        let e = parse(explain(&config(rules), ""));
        assert_eq!(e["color"], "stable");
        assert!(parse(explain(&config(rules), "{\"nope\": 1}"))["error"].is_string());
        assert!(parse(explain("{", "{}"))["error"].is_string());
    }

    #[wasm_bindgen_test]
    fn sample_and_changes_agree_with_the_knob() {
        let old = config(RULES);
        let requests = sample(&old, 2000.0);
        let list = parse(requests.clone());
        let list = list.as_array().cloned().unwrap_or_default();
        assert!(list.len() > 2000, "{}", list.len());
        assert!(
            list.iter()
                .any(|r| r["headers"].to_string().contains("x-canary"))
        );

        let k = parse(knobs(&old));
        assert_eq!(k[0]["share"], 10.0);
        assert_eq!(
            (k[0]["rule"].as_u64(), k[0]["function"].as_str()),
            (Some(2), Some("split"))
        );
        let moved = parse(set_knob(RULES, 0.0, 30.0));
        let new_rules = moved["rules"].as_str().unwrap_or_default();
        assert!(new_rules.contains("split(\"rollout\") < 30"), "{new_rules}");

        let c = parse(changes(&old, &config(new_rules), &requests));
        assert_eq!(c["requests"].as_u64(), Some(list.len() as u64));
        let changed = c["changed"].as_u64().unwrap_or(0);
        // 20% of the 2,000 users move from stable to canary (binomial: ± 4.5 sigma).
        assert!((310..=490).contains(&changed), "{c}");
        assert_eq!(
            c["moves"],
            json!([{"from": "stable", "to": "canary", "count": changed}])
        );
        let ex = &c["examples"][0];
        assert_eq!(
            (ex["old_decided"].as_str(), ex["new_decided"].as_str()),
            (Some("default"), Some("rule 2"))
        );
        // An example explains the same way again.
        let again = parse(explain(&config(new_rules), &ex["request"].to_string()));
        assert_eq!(again["color"], "canary");
        assert_eq!(c["examples"].as_array().map(Vec::len), Some(20));
    }

    #[wasm_bindgen_test]
    fn bad_input_is_an_error_never_a_trap() {
        for n in [-1.0, 0.5, f64::NAN, f64::INFINITY, 1e9] {
            assert!(parse(sample(&config(RULES), n))["error"].is_string(), "{n}");
        }
        assert!(parse(set_knob(RULES, 5.0, 10.0))["error"].is_string());
        assert!(parse(set_knob(RULES, -1.0, 10.0))["error"].is_string());
        assert!(parse(set_knob(RULES, 0.0, 101.0))["error"].is_string());
        assert!(parse(changes(&config(RULES), "nope", "[]"))["error"].is_string());
        assert!(parse(changes(&config(RULES), &config(RULES), "{}"))["error"].is_string());
        assert!(parse(knobs("{}"))["error"].is_string());
        let deep = "[".repeat(100_000);
        assert!(parse(changes(&config(RULES), &config(RULES), &deep))["error"].is_string());
        assert_eq!(parse(check(&deep))["ok"], false);
        assert!(now().is_some());
    }
}

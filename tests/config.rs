//! The JSON config: defaults, strictness, and errors that say where they are.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use traffic_color::config::{ClaimTrust, ConfigError, FilterConfig};
use wasm_bindgen_test::wasm_bindgen_test;

fn load(json: &str) -> Result<FilterConfig, ConfigError> {
    FilterConfig::from_json(json.as_bytes())
}

#[wasm_bindgen_test(unsupported = test)]
fn defaults() {
    let c = load(r#"{"rules": "default -> \"stable\""}"#).unwrap();
    assert_eq!(c.header.as_str(), "x-version-route");
    assert_eq!(c.trust, ClaimTrust::Verified);
    assert_eq!(c.debug_header, None);
    assert_eq!(
        c.program.default.as_ref().map(|t| t.as_str()),
        Some("stable")
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn all_keys() {
    let c = load(
        r#"{"rules": "default -> \"stable\"", "header": "X-Color", "jwt": {"trust": "unverified"},
            "debug_header": "x-color-rule"}"#,
    )
    .unwrap();
    assert_eq!(c.header.as_str(), "x-color");
    assert_eq!(c.trust, ClaimTrust::Unverified);
    assert_eq!(c.debug_header.unwrap().as_str(), "x-color-rule");
}

#[wasm_bindgen_test(unsupported = test)]
fn rejections_say_where() {
    let cases: &[(&str, &str)] = &[
        ("", "no configuration"),
        ("  \n", "no configuration"),
        ("{", "line 1, column 1"),
        (
            r#"{"rules": "default -> \"s\"", "colour": 1}"#,
            "unknown field `colour`",
        ),
        (r#"{"header": "x"}"#, "missing field `rules`"),
        ("{\n  \"rules\": 5\n}", "line 2, column 12"),
        (
            r#"{"rules": "default -> \"s\"", "jwt": {"trust": "maybe"}}"#,
            "unknown variant `maybe`",
        ),
        (
            r#"{"rules": "default -> \"s\"", "jwt": {"trusted": true}}"#,
            "unknown field `trusted`",
        ),
        (
            r#"{"rules": "default -> \"s\"", "header": "bad header"}"#,
            "invalid `header`",
        ),
        (
            r#"{"rules": "default -> \"s\"", "debug_header": ""}"#,
            "invalid `debug_header`",
        ),
        (
            r#"{"rules": "match { heade[\"x\"] == \"1\" } -> \"c\"\nmatch { path > 3 } -> \"c\""}"#,
            "rules rejected with 2 errors",
        ),
    ];
    for (json, want) in cases {
        let err = load(json).expect_err(json).to_string();
        assert!(err.contains(want), "{json}\n  wanted: {want}\n  got: {err}");
    }
    let err = load(
        r#"{"rules": "match { heade[\"x\"] == \"1\" } -> \"c\"\nmatch { path > 3 } -> \"c\""}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 1, column 9 (rule 1)"), "{err}");
    assert!(err.contains("line 2, column 14 (rule 2)"), "{err}");
}

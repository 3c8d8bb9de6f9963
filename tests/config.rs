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
    assert_eq!(c.claims.trust(), ClaimTrust::Verified);
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
    assert_eq!(c.claims.trust(), ClaimTrust::Unverified);
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

/// Errors found after parsing (a key's value, a key under the wrong trust level) point at the
/// value in the JSON, like every other error.
#[wasm_bindgen_test(unsupported = test)]
fn key_errors_have_positions() {
    let cases: &[(&str, &str)] = &[
        ("", "line 1, column 1"),
        (
            "{\n  \"rules\": \"default -> \\\"s\\\"\",\n  \"header\": \"bad header\"\n}",
            "invalid `header` \"bad header\" at line 3, column 13",
        ),
        (
            "{\"rules\": \"default -> \\\"s\\\"\",\n \"jwt\": {\"trust\": \"unverified\",\n   \"metadata_key\": \"p\"}}",
            "`jwt.metadata_key` at line 3, column 20",
        ),
        (
            "{\"jwt\": {\"from\": {\"header\": \"x-jwt\"}}, \"rules\": \"default -> \\\"s\\\"\"}",
            "`jwt.from` at line 1, column 18",
        ),
        (
            "{\"rules\": \"default -> \\\"s\\\"\", \"jwt\": {\"trust\": \"unverified\", \"from\": {\"header\": \"a b\"}}}",
            "invalid `jwt.from.header` \"a b\" at line 1, column 81",
        ),
        (
            "{\"rules\": \"default -> \\\"s\\\"\", \"baggage\": \"\\u00e9\"}",
            "invalid `baggage` \"é\" at line 1, column 42",
        ),
    ];
    for (json, want) in cases {
        let err = load(json).expect_err(json).to_string();
        assert!(err.contains(want), "{json}\n  wanted: {want}\n  got: {err}");
    }
}

/// The filter overwrites its color header on every request and its debug header on every
/// response: never one that frames the message, carries credentials, is trusted from proxies,
/// carries the trace or belongs to Envoy.
#[wasm_bindgen_test(unsupported = test)]
fn headers_the_filter_must_never_own() {
    let with = |key: &str, name: &str| {
        load(&format!(
            r#"{{"rules": "default -> \"s\"", "jwt": {{"trust": "unverified"}}, "{key}": "{name}"}}"#
        ))
    };
    for name in [
        "host",
        "Cookie",
        "authorization",
        "baggage",
        "traceparent",
        "x-forwarded-for",
        "x-request-id",
        "content-length",
        "transfer-encoding",
        "x-envoy-upstream-rq-timeout-ms",
        "x-b3-traceid",
    ] {
        let err = with("header", name).expect_err(name).to_string();
        assert!(
            err.contains(&format!("`header` \"{name}\" at line 1, column "))
                && err.contains("cannot be the filter's: "),
            "{name}: {err}"
        );
        assert!(with("debug_header", name).is_err(), "debug_header {name}");
    }
    for name in ["location", "cache-control", "access-control-allow-origin"] {
        let err = with("debug_header", name).expect_err(name).to_string();
        assert!(err.contains("clients and caches act on"), "{name}: {err}");
    }
    // The token's own header cannot also be the color header.
    let err = load(r#"{"rules": "default -> \"s\"", "header": "x-jwt", "jwt": {"trust": "unverified", "from": {"header": "x-jwt"}}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the token is read from it"), "{err}");
    // Pseudo-headers never parse as names.
    assert!(with("header", ":authority").is_err());
    for name in ["x-version-route", "x-color", "x-canary-route"] {
        assert!(with("header", name).is_ok(), "{name}");
        assert!(with("debug_header", name).is_ok(), "{name}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn jwt_sources() {
    use traffic_color::config::{ClaimSource, TokenFrom};
    let c =
        load(r#"{"rules": "default -> \"s\"", "jwt": {"metadata_key": "jwt_payload"}}"#).unwrap();
    assert_eq!(
        c.claims,
        ClaimSource::Verified {
            namespace: "envoy.filters.http.jwt_authn".into(),
            key: "jwt_payload".into()
        }
    );
    let c = load(r#"{"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "from": {"cookie": "id_token"}}}"#)
        .unwrap();
    assert_eq!(
        c.claims,
        ClaimSource::Unverified {
            from: TokenFrom::Cookie("id_token".into())
        }
    );
    for (json, want) in [
        (
            r#"{"rules": "default -> \"s\"", "jwt": {"from": {"header": "x-jwt"}}}"#,
            "`jwt.from` at line 1, column 47 applies only",
        ),
        (
            r#"{"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "metadata_key": "p"}}"#,
            "`jwt.metadata_key` at line 1, column 78 applies only",
        ),
        (
            r#"{"rules": "default -> \"s\"", "jwt": {"trust": "unverified", "from": {"query": "t"}}}"#,
            "unknown variant `query`",
        ),
    ] {
        let err = load(json).expect_err(json).to_string();
        assert!(err.contains(want), "{json}: {err}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn unverified_token_from_a_header_or_a_cookie() {
    use traffic_color::request::{RequestFacts, SimpleRequest};
    let token = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(r#"{"alg":"none"}"#),
            e.encode(r#"{"sub":"user-a"}"#)
        )
    };
    let rules = r#"match { token[\"sub\"] == \"user-a\" } -> \"beta\""#;
    let decide = |from: &str, req: &SimpleRequest| {
        let c = load(&format!(
            r#"{{"rules": "{rules}", "jwt": {{"trust": "unverified", "from": {from}}}}}"#
        ))
        .unwrap();
        let facts = RequestFacts::new(req, &c.program.needs, &c.claims);
        c.program.decide(&facts).tag.map(|t| t.as_str().to_string())
    };
    let by_header = SimpleRequest::new("GET", "/").with_header("x-jwt", &token);
    let by_bearer = SimpleRequest::new("GET", "/").with_header("x-jwt", &format!("Bearer {token}"));
    let by_cookie =
        SimpleRequest::new("GET", "/").with_header("cookie", &format!("a=b; id_token={token}"));
    assert_eq!(
        decide(r#"{"header": "x-jwt"}"#, &by_header).as_deref(),
        Some("beta")
    );
    assert_eq!(
        decide(r#"{"header": "x-jwt"}"#, &by_bearer).as_deref(),
        Some("beta")
    );
    assert_eq!(decide(r#"{"header": "x-jwt"}"#, &by_cookie), None);
    assert_eq!(
        decide(r#"{"cookie": "id_token"}"#, &by_cookie).as_deref(),
        Some("beta")
    );
    assert_eq!(decide(r#"{"cookie": "id_token"}"#, &by_header), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn keep_and_baggage() {
    let c = load(r#"{"rules": "default -> \"s\""}"#).unwrap();
    assert!(!c.keep);
    assert_eq!(c.baggage, None);
    let c =
        load(r#"{"rules": "default -> \"s\"", "keep": true, "baggage": "traffic-color"}"#).unwrap();
    assert!(c.keep);
    assert_eq!(c.baggage.unwrap().as_str(), "traffic-color");
    let err = load(r#"{"rules": "default -> \"s\"", "baggage": "a,b"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid `baggage`"), "{err}");
    let err = load(r#"{"rules": "default -> \"s\"", "keep": "yes"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid type"), "{err}");
}

/// Outcome metrics cost a status read per request, so they are off unless asked for; a value
/// that is not a boolean refuses the whole config, with where it is.
#[wasm_bindgen_test(unsupported = test)]
fn outcome_metrics_are_opt_in() {
    assert!(
        !load(r#"{"rules": "default -> \"s\""}"#)
            .unwrap()
            .outcome_metrics
    );
    let c = load(r#"{"rules": "default -> \"s\"", "outcome_metrics": true}"#).unwrap();
    assert!(c.outcome_metrics);
    let err = load("{\"rules\": \"default -> \\\"s\\\"\",\n \"outcome_metrics\": \"on\"}")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid type") && err.contains("line 2"),
        "{err}"
    );
}

/// `visitor` settings a browser would refuse are config errors with their position; rules that
/// read `visitor` need the key, and say where they read it.
#[wasm_bindgen_test(unsupported = test)]
fn visitor_settings_are_checked() {
    let rules = r#""match { split(visitor, \"g\") < 30 } -> \"canary\"\ndefault -> \"stable\"""#;
    let c = load(&format!(r#"{{"rules": {rules}, "visitor": {{}}}}"#)).unwrap();
    let v = c.visitor.unwrap();
    assert_eq!(
        (
            v.name.as_str(),
            v.max_age,
            v.path.as_str(),
            v.secure,
            v.http_only
        ),
        ("tc-visitor", 2_592_000, "/", true, true)
    );
    for (visitor, want) in [
        (
            r#"{"cookie": "a b"}"#,
            "invalid `visitor.cookie` at line 1, column",
        ),
        (r#"{"cookie": ""}"#, "invalid `visitor.cookie`"),
        (r#"{"path": "shop"}"#, "invalid `visitor.path`"),
        (r#"{"path": "/a;b"}"#, "invalid `visitor.path`"),
        (
            r#"{"same_site": "None", "secure": false}"#,
            "browsers drop a `SameSite=None` cookie",
        ),
        (r#"{"same_site": "lax"}"#, "unknown variant `lax`"),
        (r#"{"max_age": -1}"#, "invalid value"),
        (r#"{"domain": "x"}"#, "unknown field `domain`"),
    ] {
        let json = format!(r#"{{"rules": {rules}, "visitor": {visitor}}}"#);
        let err = load(&json).expect_err(&json).to_string();
        assert!(err.contains(want), "{visitor}: {err}");
    }
    let err = load(&format!(r#"{{"rules": {rules}}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`visitor` needs the config key `visitor`")
            && err.contains("line 1, column 15 (rule 1)"),
        "{err}"
    );
}

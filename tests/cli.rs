//! The command-line tool, run as a user runs it. Outputs are pinned by golden files in
//! golden/cli/ (`UPDATE_GOLDEN=1` rewrites them); `explain` is checked against the routing table
//! the end-to-end suite runs through Envoy.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod support;

use support::cli::{DIR, run};

/// (golden file, args)
const GOLDEN: &[(&str, &[&str])] = &[
    ("check-ok", &["check", "tests/fixtures/cli/rules.tc"]),
    (
        "check-bad",
        &[
            "check",
            "tests/fixtures/cli/bad.tc",
            "tests/fixtures/cli/rules.tc",
        ],
    ),
    (
        "check-missing-file",
        &["check", "tests/fixtures/cli/nope.tc"],
    ),
    (
        "explain-tester",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "-H",
            "x-canary: true",
            "--at",
            "2026-11-26T12:00:00Z",
        ],
    ),
    (
        "explain-blue-claims",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "-H",
            "X-Env=prod",
            "--query",
            "version=v2.1",
            "--claims",
            r#"{"sub":"user-a"}"#,
            "--cookie",
            "canary=maybe",
            "--at",
            "2026-11-26T12:00:00Z",
        ],
    ),
    (
        "explain-json-curl",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "--json",
            "--at",
            "2026-11-26T12:00:00Z",
            "--curl",
            "curl -X POST -H 'x-user-id: 42' 'http://shop/api/v2/x?a=1'",
        ],
    ),
    (
        "explain-raw",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "--raw",
            "tests/fixtures/cli/request.http",
            "--at",
            "2026-11-26T12:00:00Z",
        ],
    ),
    (
        "explain-edge-strips",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/edge.json",
            "-H",
            "x-version-route: canary",
            "-H",
            "baggage: userId=alice,version-route=canary",
        ],
    ),
    (
        "explain-hop-keeps-header",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/hop.json",
            "-H",
            "x-version-route: canary",
        ],
    ),
    (
        "explain-hop-keeps-baggage-json",
        &[
            "explain",
            "-c",
            "tests/fixtures/cli/hop.json",
            "--json",
            "-H",
            "baggage: userId=alice,version-route=canary",
        ],
    ),
    (
        "explain-bad-config",
        &["explain", "-c", "tests/fixtures/cli/bad.tc"],
    ),
    (
        "simulate-users",
        &[
            "simulate",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "--users",
            "100000",
        ],
    ),
    (
        "simulate-weights",
        &[
            "simulate",
            "-c",
            "tests/fixtures/cli/weights.json",
            "--users",
            "100000",
        ],
    ),
    (
        "simulate-requests",
        &[
            "simulate",
            "-c",
            "tests/fixtures/cli/rules.tc",
            "--requests",
            "tests/fixtures/cli/requests.jsonl",
            "--json",
        ],
    ),
];

#[test]
fn golden_outputs() {
    let mut failures = Vec::new();
    for (name, args) in GOLDEN {
        let (code, out) = run(args);
        let got = format!("$ traffic-color {}\n[exit {code}]\n{out}", args.join(" "));
        let path = Path::new(DIR)
            .join("tests/golden/cli")
            .join(format!("{name}.txt"));
        support::golden::compare(&path, name, &got, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["check", "tests/fixtures/cli/rules.tc"]).0, 0);
    assert_eq!(run(&["check", "tests/fixtures/cli/bad.tc"]).0, 1);
    assert_eq!(run(&["check", "tests/fixtures/cli/nope.tc"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    let (code, help) = run(&["explain", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Examples:"), "{help}");
}

/// `check` names a config by the hash the filter exposes: the same for a rules file and for the
/// JSON config holding just those rules, however that JSON is laid out; another for other rules.
#[test]
fn check_prints_one_hash_per_config() {
    let dir = std::env::temp_dir().join(format!("tc-cli-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules =
        std::fs::read_to_string(Path::new(DIR).join("tests/fixtures/cli/rules.tc")).unwrap();
    let rules_json = serde_json::to_string(&rules).unwrap();
    let files = [
        ("compact.json", format!("{{\"rules\":{rules_json}}}")),
        (
            "spaced.json",
            format!("{{\n  \"rules\" :  {rules_json}\n}}\n"),
        ),
        (
            "other.json",
            format!("{{\"rules\":{rules_json},\"keep\":true}}"),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let hash_of = |path: &str| {
        let (code, out) = run(&["check", path]);
        assert_eq!(code, 0, "{out}");
        let hash = out.trim_end().rsplit(' ').next().unwrap().to_string();
        assert!(
            hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{out}"
        );
        hash
    };
    let tc = hash_of("tests/fixtures/cli/rules.tc");
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    assert_eq!(hash_of(&path("compact.json")), tc);
    assert_eq!(hash_of(&path("spaced.json")), tc);
    assert_ne!(hash_of(&path("other.json")), tc);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn schema_is_valid_json_and_names_every_key() {
    let (code, out) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in ["rules", "header", "debug_header", "jwt"] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(schema["additionalProperties"], false);
    // The published copy is the one the tool prints.
    let published =
        std::fs::read_to_string(Path::new(DIR).join("schema/config.schema.json")).unwrap();
    assert_eq!(published, out);
}

/// `explain` must give every case of the routing table the color the end-to-end suite expects.
#[test]
fn explain_agrees_with_the_routing_table() {
    let table: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/routing.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("tc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, table["config"].to_string()).unwrap();
    let mut failures = Vec::new();
    for case in table["cases"].as_array().unwrap() {
        let mut raw = format!(
            "{} {} HTTP/1.1\r\nHost: localhost\r\n",
            case["method"].as_str().unwrap(),
            case["path"].as_str().unwrap()
        );
        for h in case["headers"].as_array().unwrap() {
            raw.push_str(&format!(
                "{}: {}\r\n",
                h[0].as_str().unwrap(),
                h[1].as_str().unwrap()
            ));
        }
        let req = dir.join("req.http");
        std::fs::write(&req, raw).unwrap();
        let (code, out) = run(&[
            "explain",
            "--json",
            "-c",
            config.to_str().unwrap(),
            "--raw",
            req.to_str().unwrap(),
            "--source-ip",
            "127.0.0.1:40000",
            "--at",
            "2026-11-26T12:00:00Z",
        ]);
        assert_eq!(code, 0, "{out}");
        let e: serde_json::Value = serde_json::from_str(&out).unwrap();
        let name = case["name"].as_str().unwrap();
        if e["color"] != case["expect"] {
            failures.push(format!(
                "{name}: explain says {}, table says {}",
                e["color"], case["expect"]
            ));
        }
        if let Some(rule) = case["rule"].as_str() {
            let by = e["decided_by"].as_str().unwrap();
            if by != rule {
                failures.push(format!(
                    "{name}: explain says decided by {by}, table says {rule}"
                ));
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `simulate --requests` lines take `query`, `cookies` and `at` as the cockpit's requests do.
#[test]
fn simulate_reads_query_cookies_and_clock() {
    let dir = std::env::temp_dir().join(format!("tc-cli-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lines = dir.join("requests.jsonl");
    std::fs::write(
        &lines,
        concat!(
            "{\"cookies\": [[\"canary\", \"never\"]]}\n",
            "{\"headers\": [[\"x-env\", \"prod\"]], \"query\": [[\"version\", \"v2.0\"]], \"claims\": {\"sub\": \"user-b\"}, \"at\": \"2026-11-26T12:00:00Z\"}\n",
        ),
    )
    .unwrap();
    let path = lines.to_str().unwrap();
    let args = ["simulate", "-c", "tests/fixtures/cli/rules.tc", "--json"];
    let (code, out) = run(&[&args[..], &["--requests", path]].concat());
    assert_eq!(code, 0, "{out}");
    let tally: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        tally["rules"],
        serde_json::json!({"rule 2": 1, "rule 3": 1})
    );
    assert_eq!(tally["colors"], serde_json::json!({"blue": 1, "stable": 1}));

    std::fs::write(&lines, "{}\n{\"at\": \"soon\"}\n").unwrap();
    let (code, out) = run(&[&args[..], &["--requests", path]].concat());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 2: at `soon`"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

//! `traffic-color routes`, run as a user runs it, on every example shipped here (istio/, the
//! Argo Rollouts and Flagger components) and on fixtures that break each rule. Outputs are
//! pinned by golden files in golden/routes/ (`UPDATE_GOLDEN=1` rewrites them).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod support;

use support::cli::{DIR, run};

const F: &str = "tests/fixtures/routes";

/// (golden file, exit code, args after `routes`)
fn cases() -> Vec<(&'static str, i32, Vec<String>)> {
    let f = |s: &str| s.replace("F/", &format!("{F}/"));
    let args = |list: &[&str]| list.iter().map(|s| f(s)).collect::<Vec<_>>();
    vec![
        // The examples: every one must pass.
        (
            "istio",
            0,
            args(&["istio/rules.tc", "istio/virtualservice.yaml"]),
        ),
        (
            "istio-wasmplugin",
            0,
            args(&["istio/wasmplugin.yaml", "istio/virtualservice.yaml"]),
        ),
        (
            "istio-sidecar",
            0,
            args(&[
                "istio/sidecar/wasmplugin-outbound.yaml",
                "istio/virtualservice.yaml",
            ]),
        ),
        (
            "argo-rollouts",
            0,
            args(&[
                "istio/wasmplugin.yaml",
                "istio/argo-rollouts/rollout.yaml",
                "istio/argo-rollouts/virtualservice.yaml",
            ]),
        ),
        (
            "flagger",
            0,
            args(&["istio/wasmplugin.yaml", "istio/flagger/canary.yaml"]),
        ),
        // What it catches.
        (
            "unrouted-and-dead",
            1,
            args(&["F/rules.tc", "F/virtualservice.yaml"]),
        ),
        (
            "default-route-allowed",
            1,
            args(&[
                "--default-route",
                "purple",
                "F/rules.tc",
                "F/virtualservice.yaml",
            ]),
        ),
        (
            "wasmplugin-positions",
            1,
            args(&[
                "--header",
                "x-version-route",
                "F/wasmplugin.yaml",
                "F/virtualservice.yaml",
            ]),
        ),
        (
            "negations-partial-matches-rollout",
            1,
            args(&[
                "F/wasmplugin.yaml",
                "F/cohort-routes.yaml",
                "F/unrelated.yaml",
            ]),
        ),
        (
            "no-route-on-the-color",
            1,
            args(&["F/rules.tc", "F/unrelated.yaml"]),
        ),
        (
            "flagger-and-a-hand-written-virtualservice",
            1,
            args(&[
                "istio/rules.tc",
                "istio/virtualservice.yaml",
                "istio/flagger/canary.yaml",
            ]),
        ),
        (
            "rules-rejected",
            1,
            args(&["tests/fixtures/cli/bad.tc", "istio/virtualservice.yaml"]),
        ),
        (
            "not-yaml",
            2,
            args(&["istio/rules.tc", "tests/fixtures/cli/rules.tc"]),
        ),
    ]
}

#[test]
fn golden_outputs_and_exit_codes() {
    let mut failures = Vec::new();
    for (name, code, args) in cases() {
        let mut all = vec!["routes".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (got_code, text) = run(&refs);
        if got_code != code {
            failures.push(format!("{name}: exit {got_code}, expected {code}\n{text}"));
        }
        let got = format!("$ traffic-color {}\n{text}", all.join(" "));
        let path = Path::new(DIR)
            .join("tests/golden/routes")
            .join(format!("{name}.txt"));
        support::golden::compare(&path, name, &got, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every example manifest that routes on the color is in a passing case above: a new example
/// must be checked too.
#[test]
fn every_example_is_checked() {
    let checked: Vec<String> = cases()
        .into_iter()
        .filter(|(_, code, _)| *code == 0)
        .flat_map(|(_, _, args)| args)
        .collect();
    let mut missing = Vec::new();
    let routes = [
        "kind: VirtualService",
        "kind: Rollout",
        "kind: Canary",
        "kind: WasmPlugin",
    ];
    for (path, text) in support::cli::files_under("istio") {
        if path.extension().is_some_and(|e| e == "yaml")
            && path.file_name().is_some_and(|n| n != "kustomization.yaml")
            && routes.iter().any(|k| text.contains(k))
            && !text.contains("$patch: delete")
        {
            let rel = path
                .strip_prefix(DIR)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if !checked.contains(&rel) {
                missing.push(rel);
            }
        }
    }
    missing.sort();
    // image.yaml is a patch (url and sha256 only), not a plugin with rules.
    missing.retain(|m| m != "istio/image.yaml");
    assert!(
        missing.is_empty(),
        "examples not checked by `routes`: {missing:?}"
    );
}

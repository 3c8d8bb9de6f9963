//! Golden diagnostics: every case in golden/diagnostics.txt is compiled and its rendered errors
//! compared with the text pinned there. `UPDATE_GOLDEN=1 cargo test --test diagnostics` rewrites
//! the file (natively); review the diff before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use wasm_bindgen_test::wasm_bindgen_test;

const GOLDEN: &str = include_str!("golden/diagnostics.txt");

struct Case {
    name: String,
    program: String,
    expected: String,
}

fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for block in text.split("\n### ").map(|b| b.trim_start_matches("### ")) {
        if block.trim().is_empty() || block.starts_with("//") {
            continue;
        }
        let (name, rest) = block.split_once('\n').expect("case name line");
        let (program, expected) = rest.split_once("\n---\n").expect("`---` separator");
        out.push(Case {
            name: name.trim().to_string(),
            program: program.to_string(),
            expected: expected.trim_end().to_string(),
        });
    }
    out
}

fn render(program: &str) -> String {
    match traffic_color::lang::compile(program) {
        Ok(_) => "ok".to_string(),
        Err(d) => traffic_color::lang::render_all(&d, program)
            .trim_end()
            .to_string(),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn golden_diagnostics() {
    let cases = cases(GOLDEN);
    assert!(cases.len() >= 20, "golden file lost its cases");
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let header = GOLDEN.split("\n### ").next().unwrap_or("");
        let mut text = header.trim_end().to_string();
        for c in &cases {
            text.push_str(&format!(
                "\n\n### {}\n{}\n---\n{}",
                c.name,
                c.program,
                render(&c.program)
            ));
        }
        text.push('\n');
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/diagnostics.txt"),
            text,
        )
        .expect("write golden file");
        return;
    }
    let mut failures = Vec::new();
    for c in &cases {
        let got = render(&c.program);
        if got != c.expected {
            failures.push(format!(
                "### {}\n--- expected\n{}\n--- got\n{}",
                c.name, c.expected, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn every_error_has_a_rule_line_and_column() {
    for c in cases(GOLDEN) {
        if let Err(diagnostics) = traffic_color::lang::compile(&c.program) {
            for d in diagnostics {
                let (line, column) = d.position(&c.program);
                assert!(line >= 1 && column >= 1, "{}", c.name);
                let text = d.render(&c.program);
                assert!(
                    text.contains(&format!("line {line}, column {column}")),
                    "{text}"
                );
                assert!(text.contains('^'), "{text}");
            }
        }
    }
}

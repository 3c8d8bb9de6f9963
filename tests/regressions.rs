//! Inputs the fuzzers (fuzz/), the property tests and the hostile end-to-end runs found to
//! break something, each pinned so it stays fixed. See RELIABILITY.md for how each was found.
//!
//! Each program is compiled in a child process (this test binary re-run with one ignored test
//! selected), so a hang is bounded by a timeout and a stack overflow fails one test instead of
//! aborting the whole binary.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use traffic_color::config::FilterConfig;
use traffic_color::lang::{self, ErrorKind};

const CHILD_ENV: &str = "TC_REGRESSION_PROGRAM";
/// The stack a Rust wasm32 module gets by default (the filter runs with it in Envoy).
const WASM_STACK: usize = 1 << 20;

/// Child side: compile the program in the file `$TC_REGRESSION_PROGRAM` on a thread with the
/// wasm stack size, render every diagnostic (as `on_configure` logs them), print a summary.
#[test]
#[ignore = "run by compile_in_child, not directly"]
fn child_compile() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let source = std::fs::read_to_string(path).unwrap();
    let out = std::thread::Builder::new()
        .stack_size(WASM_STACK)
        .spawn(move || match lang::compile(&source) {
            Ok(p) => format!("ok {} rules", p.rules.len()),
            Err(d) => {
                let rendered = lang::render_all(&d, &source);
                format!("rejected {} diagnostics, {} bytes", d.len(), rendered.len())
            }
        })
        .unwrap()
        .join()
        .unwrap();
    println!("CHILD-RESULT {out}");
}

/// Compiles `source` in a child process; panics if it takes longer than `limit` or dies.
fn compile_in_child(what: &str, source: &str, limit: Duration) -> String {
    let dir = std::env::temp_dir().join(format!("tc-regression-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "{}.tc",
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    std::fs::File::create(&file)
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_compile",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
            let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            let _ = std::fs::remove_file(&file);
            assert!(
                status.success(),
                "{what}: compiling died ({status}) after {:?}\n{}",
                start.elapsed(),
                err.lines().rev().take(5).collect::<Vec<_>>().join("\n")
            );
            return out
                .lines()
                // The harness may print `test child_compile ... ` on the same line first.
                .find_map(|l| l.split_once("CHILD-RESULT ").map(|(_, r)| r))
                .unwrap_or("")
                .to_string();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&file);
            panic!("{what}: compiling did not finish within {limit:?} (hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Found by `cargo fuzz run compile` (artifact bytes `"\x02\\\\\\`): a backslash right before
/// the end of the input or a newline, inside a string, made the lexer loop forever
/// (lang/src/lexer.rs, `Lexer::string`: the `Some('\n') | None` arm after `\\` resets `pos` to
/// the backslash, which is read again). In Envoy `on_configure` never returns: the proxy hangs
/// at startup, or its main thread hangs on a listener update. A typo away:
/// `header["a"] == "x\` at the end of a line.
#[test]
fn backslash_before_end_of_line_in_a_string_is_rejected_not_a_hang() {
    for (what, source) in [
        ("fuzz artifact", "\"\u{2}\\\\\\"),
        ("backslash at end of input", "\"\\"),
        (
            "backslash at end of a line",
            "match { header[\"a\"] == \"x\\\n} -> \"canary\"\ndefault -> \"stable\"\n",
        ),
        (
            "backslash at end of a CRLF line",
            "match { header[\"a\"] == \"x\\\r\n} -> \"canary\"\n",
        ),
    ] {
        let out = compile_in_child(what, source, Duration::from_secs(10));
        assert!(out.starts_with("rejected"), "{what}: {out}");
    }
}

/// The same input through the config loader (what `on_configure` calls), in-process once the
/// lexer is fixed; kept separate so the diagnostic is checked too.
#[test]
fn config_with_backslash_before_newline_names_the_unterminated_string() {
    let out = compile_in_child(
        "config probe",
        "match { header[\"a\"] == \"x\\\n",
        Duration::from_secs(10),
    );
    if !out.starts_with("rejected") {
        return; // the hang is reported by the test above
    }
    let json = r#"{"rules": "match { header[\"a\"] == \"x\\\n} -> \"c\""}"#;
    match FilterConfig::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted a program with an unterminated string"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("unterminated string"), "{text}");
        }
    }
    let d = lang::compile("match { header[\"a\"] == \"x\\\n} -> \"c\"").unwrap_err();
    assert!(
        d.iter().any(|d| d.kind == ErrorKind::UnterminatedString),
        "{d:?}"
    );
}

/// Found while sizing hostile programs: every unexpected character is one diagnostic, and the
/// lexer recurses once per unexpected character (`Lexer::next_token` calls itself), so a long
/// run of them overflows the stack (natively: 20,000 `@` crash `traffic-color check` in a debug
/// build). In the release .wasm a 1 MiB program of `@` makes `on_configure` abort on a 512 MB
/// allocation (rendering a million diagnostics, each repeating its whole source line), so the
/// operator sees "memory allocation failed" instead of a diagnostic. A program at the size
/// limit must be rejected quickly, within the wasm stack, with a bounded report.
#[test]
fn a_megabyte_of_junk_is_rejected_quickly_with_a_bounded_report() {
    let limit = lang::limits::MAX_PROGRAM_BYTES;
    for (what, source) in [
        ("unexpected characters", "@".repeat(limit)),
        (
            "unexpected characters in lines",
            "@".repeat(99).add_newlines(limit),
        ),
        (
            "invalid escapes",
            format!(
                "match {{ path == \"{}\" }} -> \"x\"",
                "\\q".repeat(limit / 2 - 20)
            ),
        ),
    ] {
        let out = compile_in_child(what, &source, Duration::from_secs(30));
        let bytes: usize = out
            .rsplit(' ')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        assert!(out.starts_with("rejected"), "{what}: {out}");
        assert!(
            bytes <= 4 * limit,
            "{what}: {out}: the rendered report is more than 4x the program"
        );
    }
}

/// Deep but legal-looking shapes at the size limit: rejected (nesting limit 32), never a
/// stack overflow.
#[test]
fn deep_nesting_at_the_size_limit_is_rejected_without_overflow() {
    let n = 200_000;
    for (what, source) in [
        (
            "parentheses",
            format!(
                "match {{ {}exists(header[\"a\"]){} }} -> \"x\"",
                "(".repeat(n),
                ")".repeat(n)
            ),
        ),
        (
            "bangs",
            format!(
                "match {{ {}exists(header[\"a\"]) }} -> \"x\"",
                "!".repeat(n)
            ),
        ),
        (
            "brackets",
            format!("match {{ path in {} }} -> \"x\"", "[".repeat(n)),
        ),
        (
            "and chain",
            format!(
                "match {{ {} }} -> \"x\"",
                vec!["path == \"/\""; n / 10].join(" && ")
            ),
        ),
    ] {
        let out = compile_in_child(what, &source, Duration::from_secs(30));
        assert!(
            out.starts_with("rejected") || out.starts_with("ok"),
            "{what}: {out}"
        );
    }
}

trait AddNewlines {
    fn add_newlines(self, total: usize) -> String;
}

impl AddNewlines for String {
    /// Repeats `self` + `\n` up to `total` bytes.
    fn add_newlines(self, total: usize) -> String {
        let line = format!("{self}\n");
        line.repeat(total / line.len())
    }
}

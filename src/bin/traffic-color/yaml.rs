//! A small YAML writer for the manifests the tool renders (no YAML crate): block style, plain
//! scalars only where no YAML 1.1 or 1.2 parser could read them as anything but a string,
//! JSON-quoted strings elsewhere (a valid YAML double-quoted scalar), and multi-line text as a
//! literal block when that keeps it byte for byte.

use serde_json::Value;
use std::fmt::Write as _;

/// Words YAML 1.1 parsers read as booleans or null.
const YAML_WORDS: &[&str] = &[
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
];

/// A string as a YAML scalar: plain when nothing could read it as another type or as syntax,
/// else a JSON string (a valid YAML double-quoted scalar).
fn scalar_str(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:=@+-".contains(c))
        && !YAML_WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        Value::from(s).to_string()
    }
}

pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => scalar_str(s),
        other => other.to_string(),
    }
}

/// The rules as a literal block (`|`, `|-` or `|+`) when YAML keeps them byte for byte:
/// printable text without carriage returns, tabs or YAML's other line breaks, whose first
/// line does not start with a space. None otherwise (the caller quotes them).
fn literal_block(s: &str, indent: usize) -> Option<String> {
    let printable = s.chars().all(|c| {
        c == '\n'
            || (!c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'))
    });
    let body = s.trim_end_matches('\n');
    if !printable || body.is_empty() || body.starts_with(' ') {
        return None;
    }
    let chomp = match s.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}\n");
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    Some(out)
}

/// A value in block style at `indent` (used for maps and lists inside the spec).
pub fn block(out: &mut String, indent: usize, key: &str, v: &Value) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let _ = writeln!(out, "{pad}{}:", scalar_str(key));
            for (k, v) in m {
                block(out, indent + 2, k, v);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let _ = writeln!(out, "{pad}{}:", scalar_str(key));
            for item in a {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut first = true;
                        for (k, v) in m {
                            let mut sub = String::new();
                            block(&mut sub, indent + 2, k, v);
                            let lead = if first {
                                format!("{pad}- ")
                            } else {
                                format!("{pad}  ")
                            };
                            first = false;
                            out.push_str(&lead);
                            out.push_str(&sub[indent + 2..]);
                        }
                    }
                    other => {
                        let _ = writeln!(out, "{pad}- {}", scalar(other));
                    }
                }
            }
        }
        Value::Object(_) => {
            let _ = writeln!(out, "{pad}{}: {{}}", scalar_str(key));
        }
        Value::Array(_) => {
            let _ = writeln!(out, "{pad}{}: []", scalar_str(key));
        }
        Value::String(s) if s.contains('\n') => match literal_block(s, indent + 2) {
            Some(b) => {
                let _ = write!(out, "{pad}{}: {b}", scalar_str(key));
            }
            None => {
                let _ = writeln!(out, "{pad}{}: {}", scalar_str(key), scalar(v));
            }
        },
        other => {
            let _ = writeln!(out, "{pad}{}: {}", scalar_str(key), scalar(other));
        }
    }
}

/// Appends `# comment` to the line that starts at `line_start`, when that line is the last one
/// written and the value fit on it.
pub fn with_comment(out: &mut String, line_start: usize, comment: &str) {
    // `line_start` is where the key's (single) line begins; put the comment at its end.
    if out.ends_with('\n') && !out[line_start..out.len() - 1].contains('\n') {
        out.pop();
        let _ = writeln!(out, "  # {comment}");
    }
}

//! Everything that can be wrong with a program, each kind with the data its message needs.
//! Diagnostics are collected, never first-fail: a user fixing a rules file sees every mistake.

use super::span::{Span, line_col};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    UnterminatedString,
    InvalidEscape(String),
    UnexpectedChar(char),
    InvalidNumber(String),
    Expected {
        expected: &'static str,
        found: String,
    },
    UnknownSource(String),
    UnknownOperator(String),
    InvalidRegex {
        pattern: String,
        reason: String,
    },
    MissingBucketGroup,
    EmptyBucketGroup,
    MissingSplitGroup,
    /// `visitor` in the rules, but no `visitor` in the config.
    VisitorNotConfigured,
    TypeMismatch {
        value: &'static str,
        op: String,
        wants: &'static str,
    },
    ValueIsNotCondition,
    DuplicateDefault {
        first_line: usize,
    },
    DefaultNotLast,
    InvalidTag(String),
    InvalidRuleName(String),
    DuplicateRuleName {
        first_line: usize,
    },
    InvalidTime {
        text: String,
        reason: &'static str,
    },
    EmptyWindow,
    InvalidIp(String),
    EmptyName,
    EmptyList,
    NoRules,
    TooManyErrors {
        limit: usize,
    },
    TooManyRules {
        limit: usize,
    },
    TooDeep {
        limit: usize,
    },
    ProgramTooLarge {
        bytes: usize,
        limit: usize,
    },
    RegexTooLong {
        limit: usize,
    },
    RegexTooComplex {
        pattern: String,
        limit: usize,
    },
    RegexesTooLarge {
        limit: usize,
    },
    TooManyRegexScans {
        limit: usize,
    },
    ListTooLong {
        limit: usize,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            UnterminatedString => write!(
                f,
                "unterminated string; close it with `\"` on the same line"
            ),
            InvalidEscape(e) => write!(
                f,
                "invalid escape `{e}` in string; escapes are \\\" \\\\ \\n \\t \\r \\u{{..}} (write `\\\\` for a regex backslash)"
            ),
            UnexpectedChar(c) => write!(f, "unexpected character `{}`", escape(&c.to_string())),
            InvalidNumber(n) => write!(f, "invalid number or version `{n}`"),
            Expected { expected, found } => write!(f, "expected {expected}, found {found}"),
            UnknownSource(s) => write!(
                f,
                "unknown source `{s}`; expected one of header[..], query[..], cookie[..], token[..], path, method, host, source.ip, bucket(.., \"group\"), split(.., \"group\"), visitor, baggage[..]"
            ),
            UnknownOperator(o) => write!(
                f,
                "unknown operator `{o}`; expected one of ==, !=, =~, !~, <, <=, >, >=, in, not in, starts_with, ends_with, contains"
            ),
            InvalidRegex { pattern, reason } => {
                write!(f, "invalid regex `{pattern}`: {}", reason.trim())
            }
            MissingBucketGroup => write!(
                f,
                "bucket needs a group: bucket(key, \"group\"); without one, cohorts of different rules would coincide"
            ),
            EmptyBucketGroup => write!(f, "bucket group must not be empty"),
            MissingSplitGroup => write!(
                f,
                "split needs a group: split(\"group\") or split(key, \"group\"); without one, splits of different rules would coincide"
            ),
            VisitorNotConfigured => write!(
                f,
                "`visitor` needs the config key `visitor` (the cookie that keeps a visitor's id)"
            ),
            TypeMismatch { value, op, wants } => {
                write!(f, "type error: `{op}` on {value} needs {wants}")
            }
            ValueIsNotCondition => write!(
                f,
                "a value is not a condition; compare it (e.g. `== \"x\"`) or test it with exists(..)"
            ),
            DuplicateDefault { first_line } => {
                write!(
                    f,
                    "duplicate default; the first one is on line {first_line}"
                )
            }
            InvalidRuleName(n) => write!(
                f,
                "invalid rule name `{n}`: use 1 to 64 characters from A-Z a-z 0-9 . _ - ~"
            ),
            DuplicateRuleName { first_line } => {
                write!(
                    f,
                    "duplicate rule name; the first use is on line {first_line}"
                )
            }
            DefaultNotLast => write!(f, "`default` must be the last rule"),
            InvalidTag(t) => write!(
                f,
                "invalid tag `{t}`: use 1 to 64 characters from A-Z a-z 0-9 . _ - ~"
            ),
            InvalidTime { text, reason } => {
                write!(f, "invalid RFC 3339 time `{text}`: {reason}")
            }
            EmptyWindow => write!(f, "time window is empty: `from` must be before `until`"),
            InvalidIp(s) => write!(f, "invalid IP address or CIDR `{s}`"),
            EmptyName => write!(f, "name must not be empty"),
            EmptyList => write!(f, "list must not be empty"),
            NoRules => write!(f, "program has no rules"),
            TooManyErrors { limit } => {
                write!(f, "too many errors; stopped after the first {limit}")
            }
            TooManyRules { limit } => write!(f, "too many rules (limit {limit})"),
            TooDeep { limit } => write!(f, "expression nested too deeply (limit {limit})"),
            ProgramTooLarge { bytes, limit } => {
                write!(f, "program is {bytes} bytes (limit {limit})")
            }
            RegexTooLong { limit } => write!(f, "regex too long (limit {limit} characters)"),
            RegexTooComplex { pattern, limit } => write!(
                f,
                "regex `{pattern}` is too complex: its automaton would exceed {limit} bytes; use fewer or smaller counted repetitions, or split it into several rules"
            ),
            TooManyRegexScans { limit } => write!(
                f,
                "too many distinct regex tests that scan their value (limit {limit} per program, so a request stays within a few milliseconds); reuse a pattern, or use starts_with, ==, in [..] or a `^literal` pattern"
            ),
            RegexesTooLarge { limit } => write!(
                f,
                "the program's regexes together exceed {limit} bytes of automata; this one is past the limit"
            ),
            ListTooLong { limit } => write!(f, "list too long (limit {limit} items)"),
        }
    }
}

/// Shows control characters as `\u{..}` so a message stays on one line. Written out rather than
/// `escape_debug`, which pulls Unicode tables into the .wasm for no benefit here.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Characters of a source line shown in a diagnostic, and how many of them before the error.
const SHOWN_CHARS: usize = 160;
const SHOWN_BEFORE: usize = 60;

/// One error at a place in the program; `rule` is the 1-based rule it belongs to, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub kind: ErrorKind,
    pub span: Span,
    pub rule: Option<usize>,
}

impl Diagnostic {
    pub fn new(kind: ErrorKind, span: Span) -> Self {
        Diagnostic {
            kind,
            span,
            rule: None,
        }
    }

    /// 1-based line and column of the error's start.
    pub fn position(&self, source: &str) -> (usize, usize) {
        let (line, column, _) = line_col(source, self.span.start);
        (line, column)
    }

    /// The rustc-style rendering: message, position, the source line and a caret under the span.
    pub fn render(&self, source: &str) -> String {
        let (line, column, text) = line_col(source, self.span.start);
        let width = self
            .span
            .text(source)
            .split('\n')
            .next()
            .map_or(1, |s| s.chars().count().max(1));
        // Long lines are cut to a window around the error, so a report stays readable and
        // bounded whatever the program looks like.
        let long = text.chars().count() > SHOWN_CHARS;
        let skip = if long {
            column.saturating_sub(1 + SHOWN_BEFORE)
        } else {
            0
        };
        let mut shown: String = text.chars().skip(skip).take(SHOWN_CHARS).collect();
        let mut caret_pad = column - 1 - skip;
        if skip > 0 {
            shown.insert_str(0, "...");
            caret_pad += 3;
        }
        if text.chars().count() > skip + SHOWN_CHARS {
            shown.push_str("...");
        }
        let width = width.min(SHOWN_CHARS.saturating_sub(caret_pad).max(1));
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let rule = self.rule.map_or(String::new(), |r| format!(" (rule {r})"));
        format!(
            "error: {kind}\n{pad}--> line {line}, column {column}{rule}\n{pad} |\n{line} | {shown}\n{pad} | {caret_pad}{carets}\n",
            kind = self.kind,
            caret_pad = " ".repeat(caret_pad),
            carets = "^".repeat(width),
        )
    }
}

/// Adds `d` unless `MAX_DIAGNOSTICS` are already collected.
pub(crate) fn report(errors: &mut Vec<Diagnostic>, d: Diagnostic) {
    if errors.len() < super::limits::MAX_DIAGNOSTICS {
        errors.push(d);
    }
}

/// Renders every diagnostic, in source order.
pub fn render_all(diagnostics: &[Diagnostic], source: &str) -> String {
    diagnostics.iter().map(|d| d.render(source)).collect()
}

/// Makes collected diagnostics into the report a user reads: each tagged with its rule (the
/// last rule start at or before it), echoes dropped, sorted by position, duplicates removed,
/// and a closing note when the cap was reached.
pub(crate) fn tidy(errors: &mut Vec<Diagnostic>, source: &str, rule_starts: &[usize]) {
    for e in errors.iter_mut() {
        let n = rule_starts.partition_point(|&s| s <= e.span.start);
        e.rule = (n > 0).then_some(n);
    }
    // An unterminated string swallows the rest of its line, so syntax errors the parser then
    // finds on that line are echoes of it, not news.
    let unterminated: Vec<usize> = errors
        .iter()
        .filter(|e| e.kind == ErrorKind::UnterminatedString)
        .map(|e| e.position(source).0)
        .collect();
    errors.retain(|e| {
        !matches!(e.kind, ErrorKind::Expected { .. })
            || !unterminated.contains(&e.position(source).0)
    });
    // Stable, by insertion: at most MAX_DIAGNOSTICS of them, and `sort_by_key` would bring in
    // several KB of the standard sort for this one type (see `lang::sorted`).
    for i in 1..errors.len() {
        let mut j = i;
        while j > 0
            && (errors[j - 1].span.start, errors[j - 1].span.end)
                > (errors[j].span.start, errors[j].span.end)
        {
            errors.swap(j - 1, j);
            j -= 1;
        }
    }
    errors.dedup();
    if errors.len() >= super::limits::MAX_DIAGNOSTICS {
        let at = errors.last().map_or(Span::new(0, 0), |e| e.span);
        errors.push(Diagnostic::new(
            ErrorKind::TooManyErrors {
                limit: super::limits::MAX_DIAGNOSTICS,
            },
            at,
        ));
    }
}

//! `check` as data: whether a config compiles, and each problem with where it is and the text
//! `traffic-color check` prints for it (the same `Display` and [`Diagnostic::render`]).

use crate::config::{ConfigError, FilterConfig};
use crate::lang::Diagnostic;
use crate::lang::span::line_col;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Checked {
    pub ok: bool,
    /// The config hash the filter reports for it (`traffic_color_config_info{hash}`).
    pub hash: Option<String>,
    /// Rules other than `default`.
    pub rules: usize,
    pub default: Option<String>,
    /// Every tag the program can set, in order of first use.
    pub tags: Vec<String>,
    pub diagnostics: Vec<Problem>,
}

/// One problem. `where` is `rules` (positions in the rules program's text) or `config`
/// (positions in the JSON); all 1-based, the end exclusive.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "where")]
    pub place: &'static str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub message: String,
    /// Exactly what `traffic-color check` prints for it.
    pub text: String,
}

/// Checks a JSON config or a rules program (see [`super::filter_json`]).
pub fn check(text: &str) -> Checked {
    let json = super::filter_json(text);
    let hash = crate::config_hash::of_json(json.as_bytes()).map(|h| h.to_string());
    match FilterConfig::from_json(json.as_bytes()) {
        Ok(config) => {
            let program = &config.program;
            let mut tags: Vec<String> = Vec::new();
            let all = program.rules.iter().map(|r| &r.tag).chain(&program.default);
            for tag in all {
                if !tags.iter().any(|t| t == tag.as_str()) {
                    tags.push(tag.as_str().to_string());
                }
            }
            Checked {
                ok: true,
                hash,
                rules: program.rules.len(),
                default: program.default.as_ref().map(|t| t.as_str().to_string()),
                tags,
                diagnostics: Vec::new(),
            }
        }
        Err(e) => Checked {
            ok: false,
            hash: None,
            rules: 0,
            default: None,
            tags: Vec::new(),
            diagnostics: problems(&e),
        },
    }
}

/// The problems in a rejected config, one per diagnostic for rejected rules.
pub fn problems(e: &ConfigError) -> Vec<Problem> {
    let at = |line: usize, column: usize| Problem {
        place: "config",
        line,
        column,
        end_line: line,
        end_column: column,
        message: e.to_string(),
        text: e.to_string(),
    };
    match e {
        ConfigError::Rules {
            source,
            diagnostics,
        } => diagnostics
            .iter()
            .map(|d| rule_problem(d, source))
            .collect(),
        ConfigError::Empty => vec![at(1, 1)],
        ConfigError::Json { line, column, .. } => vec![at(*line, *column)],
        ConfigError::HeaderName { at: a, .. }
        | ConfigError::ReservedHeader { at: a, .. }
        | ConfigError::Visitor { at: a, .. }
        | ConfigError::JwtKey { at: a, .. } => vec![at(a.line, a.column)],
    }
}

fn rule_problem(d: &Diagnostic, source: &str) -> Problem {
    let (line, column, _) = line_col(source, d.span.start);
    let (end_line, end_column, _) = line_col(source, d.span.end);
    Problem {
        place: "rules",
        line,
        column,
        end_line,
        end_column,
        message: d.kind.to_string(),
        text: d.render(source),
    }
}

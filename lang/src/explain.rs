//! Why a request got its color: the same evaluation as [`Program::decide`], step by step, with
//! the values each comparison saw. Used by the command-line tool; the filter never calls it.

use super::eval::{DecidedBy, Facts, Seen};
use super::program::{Cond, Program};
use serde::Serialize;
use serde_json::Value as Json;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The color set, or `None` when the header is left unset.
    pub color: Option<String>,
    /// `rule N`, `default` or `none`.
    pub decided_by: String,
    /// The 1-based index of the deciding rule, if a rule decided.
    pub rule: Option<usize>,
    /// Every rule evaluated, in order, up to the one that matched.
    pub rules: Vec<RuleTrace>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrace {
    pub rule: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub line: usize,
    pub source: String,
    pub tag: String,
    /// False when the rule's time window excluded it (its condition is then not evaluated).
    pub in_window: bool,
    pub matched: bool,
    pub condition: Option<Step>,
}

/// One node of a condition. `result` is `None` when evaluation short-circuited past it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub text: String,
    pub result: Option<bool>,
    /// What the value read as: a quoted string, JSON, a number, an address, or `absent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Step>,
}

impl Program {
    /// Explains the decision for `facts`; `source` is the program text it was compiled from.
    pub fn explain(&self, source: &str, facts: &impl Facts) -> Explanation {
        let decision = self.decide(facts);
        let now = if self.needs.clock { facts.now() } else { None };
        let mut rules = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let in_window = rule.window.contains(now);
            let condition = in_window.then(|| step(&rule.cond, source, facts, true));
            let matched = condition.as_ref().is_some_and(|c| c.result == Some(true));
            rules.push(RuleTrace {
                rule: i + 1,
                name: rule.name.clone(),
                line: rule.line,
                source: rule.span.text(source).to_string(),
                tag: rule.tag.as_str().to_string(),
                in_window,
                matched,
                condition,
            });
            if matched {
                break;
            }
        }
        let rule = match decision.by {
            DecidedBy::Rule(n) => Some(n),
            DecidedBy::Default | DecidedBy::Nothing => None,
        };
        let decided_by = decision.by.to_string();
        Explanation {
            color: decision.tag.map(|t| t.as_str().to_string()),
            decided_by,
            rule,
            rules,
        }
    }
}

/// Mirrors `Cond::holds`, including short-circuiting; `run` is false for skipped subtrees.
fn step(cond: &Cond, source: &str, facts: &impl Facts, run: bool) -> Step {
    let leaf =
        |text: String, result: Option<bool>, saw: Option<String>, why: Option<String>| Step {
            text,
            result,
            saw,
            why,
            children: Vec::new(),
        };
    match cond {
        Cond::Any(cs) | Cond::All(cs) => {
            let any = matches!(cond, Cond::Any(_));
            let mut running = run;
            let mut children = Vec::new();
            for c in cs {
                let child = step(c, source, facts, running);
                if running && child.result == Some(any) {
                    running = false;
                }
                children.push(child);
            }
            let result = run.then(|| {
                let decided = children.iter().any(|c| c.result == Some(any));
                if any { decided } else { !decided }
            });
            Step {
                text: if any { "any of" } else { "all of" }.to_string(),
                result,
                saw: None,
                why: None,
                children,
            }
        }
        Cond::Not(inner) => {
            let child = step(inner, source, facts, run);
            Step {
                text: "not".to_string(),
                result: child.result.map(|r| !r),
                saw: None,
                why: None,
                children: vec![child],
            }
        }
        Cond::Exists { val, span } => {
            let text = format!("exists({})", span.text(source));
            if !run {
                return leaf(text, None, None, None);
            }
            let seen = val.read(facts);
            leaf(text, Some(seen.is_some()), Some(show(seen)), None)
        }
        Cond::Test {
            val, test, span, ..
        } => {
            let text = span.text(source).to_string();
            if !run {
                return leaf(text, None, None, None);
            }
            let seen = val.read(facts);
            let (result, why) = match seen {
                None => (false, None),
                Some(s) => match test.check.eval(s) {
                    None => (
                        false,
                        Some("not comparable with the literal, so false".to_string()),
                    ),
                    Some(b) => (b != test.negate, None),
                },
            };
            leaf(text, Some(result), Some(show(seen)), why)
        }
    }
}

fn show(seen: Option<Seen<'_>>) -> String {
    match seen {
        None => "absent".to_string(),
        Some(Seen::Text(t)) => Json::from(t).to_string(),
        Some(Seen::Json(j)) => j.to_string(),
        Some(Seen::Num(n)) => n.to_string(),
        Some(Seen::Ip(ip)) => ip.to_string(),
    }
}

impl Explanation {
    /// The human-readable form: the trace, then the color.
    pub fn render(&self) -> String {
        let mut out = render_rules(&self.rules);
        let color = self
            .color
            .as_ref()
            .map_or("unset (header removed)".to_string(), |c| format!("\"{c}\""));
        let _ = writeln!(out, "=> color {color}, decided by {}", self.decided_by);
        out
    }
}

/// Each rule evaluated, with every condition's result and the value it saw.
pub fn render_rules(rules: &[RuleTrace]) -> String {
    let mut out = String::new();
    for r in rules {
        let name = r
            .name
            .as_ref()
            .map_or(String::new(), |n| format!(" \"{n}\""));
        let _ = writeln!(out, "rule {}{name} (line {}): {}", r.rule, r.line, r.source);
        match &r.condition {
            None => {
                let _ = writeln!(out, "  skipped: outside its time window");
            }
            Some(c) => render_step(c, 1, &mut out),
        }
    }
    out
}

fn render_step(s: &Step, depth: usize, out: &mut String) {
    let mark = match s.result {
        Some(true) => "true ",
        Some(false) => "false",
        None => "  -  ",
    };
    let _ = write!(out, "{}{mark}  {}", "  ".repeat(depth), s.text);
    if let Some(saw) = &s.saw {
        let _ = write!(out, "    saw {saw}");
    }
    if let Some(why) = &s.why {
        let _ = write!(out, " ({why})");
    }
    if s.result.is_none() && s.children.is_empty() {
        let _ = write!(out, "    (not evaluated)");
    }
    out.push('\n');
    for c in &s.children {
        render_step(c, depth + 1, out);
    }
}

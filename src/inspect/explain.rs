//! `explain`: the verdict for one request and, when the rules decided, why each rule matched
//! or not. `traffic-color explain` prints [`render`] or the JSON of [`Explained`]; the cockpit
//! shows the JSON.

use super::Judge;
use crate::config::FilterConfig;
use crate::lang::eval::DecidedBy;
use crate::lang::explain::{RuleTrace, render_rules};
use crate::request::{RequestFacts, SimpleRequest};
use crate::verdict::{BaggageEdit, Decided, KeptFrom, Verdict};

/// What `explain --json` prints: the verdict, and the rules' trace when the rules decided.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explained {
    pub color: Option<String>,
    pub decided_by: String,
    pub rule: Option<usize>,
    /// The color header as it arrived.
    pub incoming: Option<String>,
    /// The incoming color header is removed.
    pub stripped: bool,
    /// With `baggage` configured: `unchanged`, `set` or `removed`, and the header sent on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baggage: Option<BaggageReport>,
    pub rules: Vec<RuleTrace>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaggageReport {
    pub edit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Our member did not fit: the header goes on without any member of that key.
    pub full: bool,
}

/// Explains `req` under the config it is judged by (see [`Judge::config_for`]).
pub fn explain(judge: &Judge, req: &SimpleRequest) -> Explained {
    let config = judge.config_for(req);
    let verdict = Verdict::for_request(config, req, None);
    let program = &config.program;
    let rules = match verdict.decided {
        Decided::Rules(_) => {
            let facts = RequestFacts::new(req, &program.needs, &config.claims);
            program.explain(&config.rules, &facts).rules
        }
        Decided::Kept(_) => Vec::new(),
    };
    Explained {
        color: verdict.color.map(|t| t.as_str().to_string()),
        decided_by: verdict.decided.to_string(),
        rule: match verdict.decided {
            Decided::Rules(DecidedBy::Rule(n)) => Some(n),
            _ => None,
        },
        incoming: verdict.incoming.clone(),
        stripped: verdict.stripped,
        baggage: config.baggage.as_ref().map(|_| BaggageReport {
            edit: match verdict.baggage_edit {
                BaggageEdit::Leave => "unchanged",
                BaggageEdit::Set(_) => "set",
                BaggageEdit::Remove => "removed",
            },
            header: match &verdict.baggage_edit {
                BaggageEdit::Set(h) => Some(h.clone()),
                _ => None,
            },
            full: verdict.baggage_full,
        }),
        rules,
    }
}

/// The text form of `explain`: the trace, what happens to the incoming color and to baggage,
/// then the color.
pub fn render(e: &Explained, config: &FilterConfig) -> String {
    let header = config.header.as_str();
    let mut out = render_rules(&e.rules);
    if let Some(incoming) = &e.incoming {
        let fate = if e.stripped {
            "removed: a client must not choose its color"
        } else {
            "kept: `keep` is on and it is one of the program's tags"
        };
        out.push_str(&format!(
            "incoming {header} {}: {fate}\n",
            serde_json::Value::from(incoming.as_str())
        ));
    }
    if let Some(key) = &config.baggage
        && e.decided_by == Decided::Kept(KeptFrom::Baggage).to_string()
    {
        out.push_str(&format!(
            "incoming baggage member {}: kept: `keep` is on and it is one of the program's tags\n",
            key.as_str()
        ));
    }
    if let Some(b) = &e.baggage {
        let line = match (&b.header, b.edit) {
            (Some(h), _) => format!("baggage set to {}", serde_json::Value::from(h.as_str())),
            (None, "removed") => "baggage removed: no member left".to_string(),
            _ => "baggage unchanged".to_string(),
        };
        out.push_str(&line);
        if b.full {
            out.push_str(" (full: sent on without a color member)");
        }
        out.push('\n');
    }
    let color = e
        .color
        .as_ref()
        .map_or("unset (header removed)".to_string(), |c| format!("\"{c}\""));
    out.push_str(&format!("=> color {color}, decided by {}\n", e.decided_by));
    out
}

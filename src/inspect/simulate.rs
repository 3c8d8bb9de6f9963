//! Many requests through a config: `simulate`'s tally of colors and rules, and the cockpit's
//! "what changes" between two configs over the same requests.

use super::Judge;
use super::request::RequestLine;
use crate::config::FilterConfig;
use crate::request::SimpleRequest;
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

/// How a verdict's color is spelled in counts: the tag, or `(unset)` when no color is set.
pub fn color_name(v: &Verdict<'_>) -> String {
    v.color
        .map_or("(unset)".to_string(), |t| t.as_str().to_string())
}

#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub requests: u64,
    pub colors: BTreeMap<String, u64>,
    pub rules: BTreeMap<String, u64>,
    /// Requests whose incoming color header was removed.
    pub stripped: u64,
}

impl Tally {
    pub fn add(&mut self, config: &FilterConfig, req: &SimpleRequest) {
        let v = Verdict::for_request(config, req, None);
        self.requests += 1;
        *self.colors.entry(color_name(&v)).or_default() += 1;
        *self.rules.entry(v.decided.to_string()).or_default() += 1;
        self.stripped += u64::from(v.stripped);
    }

    pub fn render(&self) -> String {
        let share = |n: u64| 100.0 * n as f64 / self.requests.max(1) as f64;
        let mut out = format!(
            "{} requests\n\ncolor             requests   share\n",
            self.requests
        );
        for (c, n) in &self.colors {
            out.push_str(&format!("{c:<17} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        out.push_str("\ndecided by        requests   share\n");
        let mut rules: Vec<_> = self.rules.iter().collect();
        rules.sort_by_key(|(r, _)| {
            r.strip_prefix("rule ")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        });
        for (r, n) in rules {
            out.push_str(&format!("{r:<17} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        if self.stripped > 0 {
            out.push_str(&format!(
                "\nincoming color removed: {} ({:.2}%)\n",
                self.stripped,
                share(self.stripped)
            ));
        }
        out
    }
}

/// How many of the same requests would change color from one config to another.
#[derive(Debug, Default, Serialize)]
pub struct Changes {
    pub requests: u64,
    pub changed: u64,
    /// Requests per color under each config.
    pub old: BTreeMap<String, u64>,
    pub new: BTreeMap<String, u64>,
    /// Changed requests per (from, to) pair, the largest first.
    pub moves: Vec<Move>,
    /// The first [`MAX_EXAMPLES`] changed requests, with what decided them before and after.
    pub examples: Vec<Example>,
}

#[derive(Debug, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Example {
    /// The request as judged: with the `x-request-id` it was given, so explaining it again
    /// gives the same answer.
    pub request: RequestLine,
    pub from: String,
    pub to: String,
    pub old_decided: String,
    pub new_decided: String,
}

pub const MAX_EXAMPLES: usize = 20;

/// Judges each request under both configs, as `simulate` would. A request without an
/// `x-request-id` gets the one `simulate` gives the `i`-th line (0-based), the same under both.
pub fn changes(
    old: &Judge,
    new: &Judge,
    requests: &[RequestLine],
    now: Option<i64>,
) -> Result<Changes, String> {
    let mut out = Changes::default();
    let mut moves: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (i, line) in requests.iter().enumerate() {
        let mut req = line
            .to_request(now)
            .map_err(|e| format!("request {}: {e}", i + 1))?;
        super::request::with_request_id(&mut req, i as u64);
        let before = Verdict::for_request(old.config_for(&req), &req, None);
        let after = Verdict::for_request(new.config_for(&req), &req, None);
        let (from, to) = (color_name(&before), color_name(&after));
        out.requests += 1;
        *out.old.entry(from.clone()).or_default() += 1;
        *out.new.entry(to.clone()).or_default() += 1;
        if from == to {
            continue;
        }
        out.changed += 1;
        *moves.entry((from.clone(), to.clone())).or_default() += 1;
        if out.examples.len() < MAX_EXAMPLES {
            let mut request = line.clone();
            if !has_request_id(line) {
                let id = super::request::request_id(i as u64);
                request
                    .headers
                    .push((crate::lang::REQUEST_ID.to_string(), id));
            }
            out.examples.push(Example {
                request,
                from,
                to,
                old_decided: before.decided.to_string(),
                new_decided: after.decided.to_string(),
            });
        }
    }
    out.moves = moves
        .into_iter()
        .map(|((from, to), count)| Move { from, to, count })
        .collect();
    out.moves.sort_by_key(|m| std::cmp::Reverse(m.count));
    Ok(out)
}

fn has_request_id(line: &RequestLine) -> bool {
    line.headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(crate::lang::REQUEST_ID))
}

//! Names of the filter's Prometheus metrics. Proxy-wasm metrics have no labels, so labels are
//! written into the stat name in Istio's convention, `<metric>.<label>=.=<value>;.;` per label,
//! and turned back into labels by Envoy's `stats_tags`: the regex `(T=\.=(.*?);\.;)` for each
//! label T, exactly what Istio's bootstrap generates for every name in `extraStatTags`
//! ([`STATS_TAGS`], envoy/envoy.yaml). Envoy removes each match from the name, and the dot left
//! before the first one with it (seen with Envoy 1.36 to 1.40), so
//! `traffic_color_requests_total.color=.=canary;.;` is `traffic_color_requests_total{color="canary"}`.
//! Without those regexes the metrics still appear, with the labels folded into the name
//! (`traffic_color_requests_total_color___canary___`).
//!
//! | stat (Envoy adds the `wasmcustom.` prefix) | Prometheus |
//! |---|---|
//! | `traffic_color_requests_total.color=.=<tag>;.;` | `traffic_color_requests_total{color}`; `unset`: no rule matched and no default |
//! | `traffic_color_rule_hits_total.rule=.=<n>;.;[name=.=<name>;.;]` | `traffic_color_rule_hits_total{rule,name}`; `n` is the 1-based rule or `default`, `name` a rule's optional `match "name"` |
//! | `traffic_color_responses_total.color=.=<tag>;.;class=.=<c>xx;.;` | `traffic_color_responses_total{color,class}`, at the end of each colored request's stream |
//! | `traffic_color_request_duration_milliseconds.color=.=<tag>;.;` | a histogram of the same requests' durations, in whole milliseconds |
//! | `traffic_color_unmatched_total` | requests no `match` rule matched (default or unset) |
//! | `traffic_color_client_color_stripped_total` | requests whose incoming color header was removed |
//! | `traffic_color_kept_total` | requests whose incoming color was kept (`keep`) |
//! | `traffic_color_config_loads_total` / `_config_rejections_total` | configurations accepted / rejected |
//! | `traffic_color_config_info.hash=.=<hash>;.;` | a gauge: 1 while the config with that [hash](crate::config_hash) runs, 0 once it was replaced |

use crate::lang::Program;
use crate::lang::eval::DecidedBy;
use crate::lang::program::Tag;
use crate::outcome::{Outcome, StatusClass};
use crate::verdict::Counter;

pub const PREFIX: &str = "traffic_color";

/// Every label the filter writes into a stat name, with the regex Istio's bootstrap template
/// (`tools/packaging/common/envoy_bootstrap.json`) generates for it when it is listed in
/// `extraStatTags`: `(T=\.=(.*?);\.;)`. The example Envoy config carries the same regexes, so
/// one set of names is labelled alike in a hand-written Envoy and in a mesh.
pub const STATS_TAGS: &[(&str, &str)] = &[
    ("color", r"(color=\.=(.*?);\.;)"),
    ("rule", r"(rule=\.=(.*?);\.;)"),
    ("name", r"(name=\.=(.*?);\.;)"),
    ("class", r"(class=\.=(.*?);\.;)"),
    ("hash", r"(hash=\.=(.*?);\.;)"),
];

/// A stat name with labels in Istio's convention. Label values are tags, rule names, status
/// classes and hashes, whose alphabets (see `lang::compile`) contain neither `=` nor `;`, so a
/// value can never end a label early or forge another one.
pub fn stat(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut name = format!("{PREFIX}_{metric}");
    if !labels.is_empty() {
        name.push('.');
    }
    for (label, value) in labels {
        name.push_str(label);
        name.push_str("=.=");
        name.push_str(value);
        name.push_str(";.;");
    }
    name
}

/// The kind of a metric, as proxy-wasm defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Unitless `u64` samples; Envoy buckets them (by default 0.5 … 3,600,000, made for ms).
    Histogram,
}

/// The metrics for the outcomes of one color's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeNames {
    /// One per [`StatusClass`], in [`StatusClass::ALL`] order.
    pub responses: [String; 5],
    pub duration: String,
}

/// Every metric a program needs, by name, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// One per distinct tag (rules then default), plus `unset` last.
    pub colors: Vec<(String, String)>,
    /// One per rule, in order, then `default`.
    pub rules: Vec<String>,
    pub unmatched: String,
    pub stripped: String,
    pub kept: String,
    /// Per color, in the order of `colors`; none unless the config turns `outcome_metrics` on,
    /// so that a scrape shows no outcome series rather than zeros that look like no traffic.
    pub outcomes: Vec<OutcomeNames>,
}

pub fn config_loads() -> String {
    stat("config_loads_total", &[])
}

pub fn config_rejections() -> String {
    stat("config_rejections_total", &[])
}

/// The `_info` gauge of the config with this hash.
pub fn config_info(hash: &str) -> String {
    stat("config_info", &[("hash", hash)])
}

/// The color label used when the header is left unset.
pub const UNSET: &str = "unset";

impl Names {
    pub fn for_program(program: &Program, outcomes: bool) -> Names {
        let mut tags: Vec<String> = Vec::new();
        for tag in program
            .rules
            .iter()
            .map(|r| &r.tag)
            .chain(program.default.as_ref())
        {
            if !tags.iter().any(|t| t == tag.as_str()) {
                tags.push(tag.as_str().to_string());
            }
        }
        tags.push(UNSET.to_string());
        let outcomes = if outcomes {
            tags.iter()
                .map(|t| OutcomeNames {
                    responses: StatusClass::ALL
                        .map(|c| stat("responses_total", &[("color", t), ("class", c.label())])),
                    duration: stat("request_duration_milliseconds", &[("color", t)]),
                })
                .collect()
        } else {
            Vec::new()
        };
        let colors = tags
            .into_iter()
            .map(|t| {
                let name = stat("requests_total", &[("color", &t)]);
                (t, name)
            })
            .collect();
        let rules = program
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let n = (i + 1).to_string();
                match &r.name {
                    Some(name) => stat("rule_hits_total", &[("rule", &n), ("name", name)]),
                    None => stat("rule_hits_total", &[("rule", &n)]),
                }
            })
            .chain(std::iter::once(stat(
                "rule_hits_total",
                &[("rule", "default")],
            )))
            .collect();
        Names {
            colors,
            rules,
            unmatched: stat("unmatched_total", &[]),
            stripped: stat("client_color_stripped_total", &[]),
            kept: stat("kept_total", &[]),
            outcomes,
        }
    }
}

/// The host's ids of one color's outcome metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OutcomeIds {
    responses: [u32; 5],
    duration: u32,
}

/// The host's id of every metric a program needs, resolved once per config so that a request
/// only increments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// `(tag, id)` per tag, then `unset`.
    colors: Vec<(String, u32)>,
    /// By rule index, then `default` last.
    rules: Vec<u32>,
    unmatched: u32,
    stripped: u32,
    kept: u32,
    /// By color slot (the index in `colors`).
    outcomes: Vec<OutcomeIds>,
}

/// A metric update for the host: add one to a counter, or record a histogram sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Increment(u32),
    Record(u32, u64),
}

impl Ids {
    /// Defines every metric through `define` (the host's `define_metric`); `None` if any fails.
    pub fn define(names: &Names, mut define: impl FnMut(Kind, &str) -> Option<u32>) -> Option<Ids> {
        let mut counter = |name: &str| define(Kind::Counter, name);
        let colors = names
            .colors
            .iter()
            .map(|(tag, name)| Some((tag.clone(), counter(name)?)))
            .collect::<Option<Vec<_>>>()?;
        let rules = names
            .rules
            .iter()
            .map(|n| counter(n))
            .collect::<Option<Vec<u32>>>()?;
        let unmatched = counter(&names.unmatched)?;
        let stripped = counter(&names.stripped)?;
        let kept = counter(&names.kept)?;
        let outcomes = names
            .outcomes
            .iter()
            .map(|o| {
                let mut responses = [0u32; 5];
                for (id, name) in responses.iter_mut().zip(&o.responses) {
                    *id = define(Kind::Counter, name)?;
                }
                Some(OutcomeIds {
                    responses,
                    duration: define(Kind::Histogram, &o.duration)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Ids {
            colors,
            rules,
            unmatched,
            stripped,
            kept,
            outcomes,
        })
    }

    /// The slot of a color (`None`: `unset`), to count its request's outcome later.
    pub fn slot(&self, color: Option<&Tag>) -> Option<usize> {
        let color = color.map_or(UNSET, |t| t.as_str());
        self.colors.iter().position(|(t, _)| t == color)
    }

    /// The id to increment for `counter`.
    pub fn of(&self, counter: Counter<'_>) -> Option<u32> {
        match counter {
            Counter::Color(tag) => self.colors.get(self.slot(tag)?).map(|c| c.1),
            Counter::RuleHit(DecidedBy::Rule(n)) => self.rules.get(n.checked_sub(1)?).copied(),
            Counter::RuleHit(DecidedBy::Default) => self.rules.last().copied(),
            Counter::RuleHit(DecidedBy::Nothing) => None,
            Counter::Unmatched => Some(self.unmatched),
            Counter::Stripped => Some(self.stripped),
            Counter::Kept => Some(self.kept),
        }
    }

    /// What to record for the outcome of a request of color `slot`: its status class's counter
    /// and its duration, each only when known.
    pub fn outcome(&self, slot: usize, outcome: &Outcome) -> impl Iterator<Item = Update> + use<> {
        let ids = self.outcomes.get(slot);
        let response = ids
            .zip(outcome.class)
            .map(|(ids, class)| Update::Increment(ids.responses[class.index()]));
        let duration = ids
            .zip(outcome.duration_ms)
            .map(|(ids, ms)| Update::Record(ids.duration, ms));
        response.into_iter().chain(duration)
    }
}

/// Counter increments held in the VM until the next flush, by the host's counter id.
///
/// Each `proxy_increment_metric` crosses the Wasm boundary (about a microsecond of Envoy CPU),
/// and a request makes up to four; adding them up here and handing the host one sum per counter
/// once a second costs a request none. A scrape then sees a count up to a flush period late.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Few distinct counters move between two flushes, so a list beats a map in size and speed.
    pending: Vec<(u32, u64)>,
    /// The proxy's clock (ns) at the last [`Tally::take`], once one was given.
    flushed_at: Option<u64>,
}

impl Tally {
    pub fn add(&mut self, id: u32) {
        match self.pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.pending.push((id, 1)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether counts have waited longer than `max_ns` since the last flush: whoever flushes
    /// on a timer has stopped, so the caller should flush now rather than hold them for a tick
    /// that may never come. A tally never flushed starts its wait at the first clock reading
    /// it is shown.
    pub fn overdue(&mut self, now: Option<u64>, max_ns: u64) -> bool {
        let (Some(now), false) = (now, self.pending.is_empty()) else {
            return false;
        };
        let since = *self.flushed_at.get_or_insert(now);
        now.saturating_sub(since) > max_ns
    }

    /// The pending sums, each at most `i64::MAX` (the host's offset type; a larger sum stays
    /// pending for the next flush), leaving the tally empty of everything returned.
    pub fn take(&mut self, now: Option<u64>) -> Vec<(u32, i64)> {
        if now.is_some() {
            self.flushed_at = now;
        }
        let mut out = Vec::with_capacity(self.pending.len());
        self.pending.retain_mut(|(id, n)| {
            let part = i64::try_from(*n).unwrap_or(i64::MAX);
            out.push((*id, part));
            *n -= part.unsigned_abs();
            *n > 0
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn names_cover_every_tag_and_rule() {
        let p = crate::lang::compile(
            "match { path == \"/a\" } -> \"canary\"\nmatch \"bees\" { path == \"/b\" } -> \"blue\"\nmatch { path == \"/c\" } -> \"canary\"\ndefault -> \"stable\"",
        )
        .unwrap();
        let n = Names::for_program(&p, true);
        let colors: Vec<&str> = n.colors.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(colors, ["canary", "blue", "stable", "unset"]);
        assert_eq!(
            n.colors[0].1,
            "traffic_color_requests_total.color=.=canary;.;"
        );
        assert_eq!(n.rules.len(), 4);
        assert_eq!(n.rules[0], "traffic_color_rule_hits_total.rule=.=1;.;");
        assert_eq!(
            n.rules[1],
            "traffic_color_rule_hits_total.rule=.=2;.;name=.=bees;.;"
        );
        assert_eq!(
            n.rules[3],
            "traffic_color_rule_hits_total.rule=.=default;.;"
        );
        assert_eq!(n.unmatched, "traffic_color_unmatched_total");
        assert_eq!(n.outcomes.len(), 4);
        assert_eq!(
            n.outcomes[1].responses,
            ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .map(|c| format!("traffic_color_responses_total.color=.=blue;.;class=.={c};.;"))
        );
        assert_eq!(
            n.outcomes[3].duration,
            "traffic_color_request_duration_milliseconds.color=.=unset;.;"
        );
        assert_eq!(
            config_info("00ff"),
            "traffic_color_config_info.hash=.=00ff;.;"
        );
        assert_eq!(config_loads(), "traffic_color_config_loads_total");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_counter_of_a_verdict_has_its_own_id() {
        let p = crate::lang::compile(
            "match { path == \"/a\" } -> \"canary\"\nmatch { path == \"/b\" } -> \"blue\"\ndefault -> \"stable\"",
        )
        .unwrap();
        let names = Names::for_program(&p, true);
        let mut defined = Vec::new();
        let ids = Ids::define(&names, |kind, n| {
            defined.push((kind, n.to_string()));
            u32::try_from(defined.len()).ok()
        })
        .unwrap();
        let name_of = |id: u32| defined[id as usize - 1].1.clone();
        let blue = &p.rules[1].tag;
        assert_eq!(
            name_of(ids.of(Counter::Color(Some(blue))).unwrap()),
            "traffic_color_requests_total.color=.=blue;.;"
        );
        assert_eq!(
            name_of(ids.of(Counter::Color(None)).unwrap()),
            "traffic_color_requests_total.color=.=unset;.;"
        );
        assert_eq!(
            name_of(ids.of(Counter::RuleHit(DecidedBy::Rule(2))).unwrap()),
            "traffic_color_rule_hits_total.rule=.=2;.;"
        );
        assert_eq!(
            name_of(ids.of(Counter::RuleHit(DecidedBy::Default)).unwrap()),
            "traffic_color_rule_hits_total.rule=.=default;.;"
        );
        assert_eq!(
            name_of(ids.of(Counter::Kept).unwrap()),
            "traffic_color_kept_total"
        );
        assert_eq!(ids.of(Counter::RuleHit(DecidedBy::Nothing)), None);
        assert_eq!(ids.of(Counter::RuleHit(DecidedBy::Rule(9))), None);
        // Each name defined once, histograms as histograms.
        let mut all: Vec<&str> = defined.iter().map(|(_, n)| n.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), defined.len());
        for (kind, name) in &defined {
            assert_eq!(
                *kind == Kind::Histogram,
                name.contains("duration"),
                "{name}"
            );
        }
        assert!(Ids::define(&names, |_, _| None).is_none());
        let mut n = 0;
        assert!(
            Ids::define(&names, |_, _| {
                n += 1;
                (n < defined.len()).then_some(n as u32)
            })
            .is_none(),
            "the last definition failing fails them all"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn outcomes_go_to_their_color_and_class() {
        let p =
            crate::lang::compile("match { path == \"/a\" } -> \"canary\"\ndefault -> \"stable\"")
                .unwrap();
        let names = Names::for_program(&p, true);
        let mut defined = Vec::new();
        let ids = Ids::define(&names, |_, n| {
            defined.push(n.to_string());
            u32::try_from(defined.len()).ok()
        })
        .unwrap();
        let name_of = |id: u32| defined[id as usize - 1].as_str();
        let stable = ids.slot(p.default.as_ref()).unwrap();
        let unset = ids.slot(None).unwrap();
        assert_eq!(
            (ids.slot(Some(&p.rules[0].tag)), stable, unset),
            (Some(0), 1, 2)
        );
        let got: Vec<(String, Option<u64>)> = ids
            .outcome(
                stable,
                &Outcome {
                    class: Some(StatusClass::ServerError),
                    duration_ms: Some(42),
                },
            )
            .map(|u| match u {
                Update::Increment(id) => (name_of(id).to_string(), None),
                Update::Record(id, v) => (name_of(id).to_string(), Some(v)),
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "traffic_color_responses_total.color=.=stable;.;class=.=5xx;.;".to_string(),
                    None
                ),
                (
                    "traffic_color_request_duration_milliseconds.color=.=stable;.;".to_string(),
                    Some(42)
                ),
            ]
        );
        // Absent parts record nothing; a slot that does not exist records nothing.
        let absent = Outcome {
            class: None,
            duration_ms: None,
        };
        assert_eq!(ids.outcome(unset, &absent).count(), 0);
        let only_class = Outcome {
            class: Some(StatusClass::Success),
            duration_ms: None,
        };
        assert_eq!(ids.outcome(unset, &only_class).count(), 1);
        assert_eq!(ids.outcome(99, &only_class).count(), 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn without_outcome_metrics_no_outcome_is_defined_or_recorded() {
        let p =
            crate::lang::compile("match { path == \"/a\" } -> \"canary\"\ndefault -> \"stable\"")
                .unwrap();
        let names = Names::for_program(&p, false);
        assert!(names.outcomes.is_empty());
        assert_eq!(names.colors.len(), 3);
        let mut kinds = Vec::new();
        let ids = Ids::define(&names, |kind, _| {
            kinds.push(kind);
            u32::try_from(kinds.len()).ok()
        })
        .unwrap();
        assert!(kinds.iter().all(|k| *k == Kind::Counter), "{kinds:?}");
        // colors (3), rules (1 and default), unmatched, stripped, kept
        assert_eq!(kinds.len(), 3 + 2 + 3);
        let done = Outcome {
            class: Some(StatusClass::ServerError),
            duration_ms: Some(5),
        };
        let slot = ids.slot(p.default.as_ref()).unwrap();
        assert_eq!(ids.outcome(slot, &done).count(), 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn labels_use_the_regexes_istio_generates() {
        for (tag, regex) in STATS_TAGS {
            assert_eq!(*regex, format!(r"({tag}=\.=(.*?);\.;)"));
        }
        // Every label a name carries has its regex.
        let p = crate::lang::compile("match \"n\" { path == \"/a\" } -> \"canary\"").unwrap();
        let names = Names::for_program(&p, true);
        let all = names
            .colors
            .iter()
            .map(|c| &c.1)
            .chain(&names.rules)
            .chain(names.outcomes.iter().flat_map(|o| o.responses.iter()))
            .cloned()
            .chain([config_info("ab")]);
        for name in all {
            for part in name.split(";.;").filter(|p| p.contains("=.=")) {
                let label = part.split("=.=").next().unwrap_or("");
                let label = label.rsplit('.').next().unwrap_or(label);
                assert!(
                    STATS_TAGS.iter().any(|(t, _)| *t == label),
                    "{name}: {label}"
                );
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_example_envoy_config_carries_the_tag_regexes() {
        let yaml = include_str!("../envoy/envoy.yaml");
        for (tag, regex) in STATS_TAGS {
            assert!(yaml.contains(&format!("tag_name: {tag}")), "{tag}");
            assert!(yaml.contains(&format!("regex: '{regex}'")), "{regex}");
        }
    }
    #[wasm_bindgen_test(unsupported = test)]
    fn a_tally_sums_each_counter_until_taken() {
        let mut t = Tally::default();
        assert!(t.is_empty());
        assert_eq!(t.take(None), []);
        for id in [7, 3, 7, 7, 9, 3] {
            t.add(id);
        }
        assert!(!t.is_empty());
        assert_eq!(t.take(Some(10)), [(7, 3), (3, 2), (9, 1)]);
        assert!(t.is_empty());
        assert_eq!(t.take(Some(20)), []);
        t.add(3);
        assert_eq!(t.take(None), [(3, 1)]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_sum_beyond_the_hosts_offset_is_handed_over_in_parts() {
        let mut t = Tally {
            pending: vec![(1, u64::MAX), (2, 5)],
            flushed_at: None,
        };
        assert_eq!(t.take(None), [(1, i64::MAX), (2, 5)]);
        // u64::MAX is 2 × i64::MAX + 1.
        assert_eq!(t.take(None), [(1, i64::MAX)]);
        assert_eq!(t.take(None), [(1, 1)]);
        assert!(t.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tally_is_overdue_only_with_counts_waiting_past_the_limit() {
        let mut t = Tally::default();
        // Nothing pending: never overdue, however late.
        assert!(!t.overdue(Some(u64::MAX), 0));
        t.add(1);
        // No clock: cannot tell.
        assert!(!t.overdue(None, 0));
        // Never flushed: the wait starts at the first reading.
        assert!(!t.overdue(Some(1_000), 500));
        assert!(!t.overdue(Some(1_500), 500));
        assert!(t.overdue(Some(1_501), 500));
        t.take(Some(2_000));
        t.add(1);
        assert!(!t.overdue(Some(2_400), 500));
        assert!(t.overdue(Some(2_600), 500));
        // A clock that went backwards is not a reason to flush.
        assert!(!t.overdue(Some(5), 500));
    }
}

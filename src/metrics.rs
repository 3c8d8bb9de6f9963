//! Names of the filter's Prometheus counters. Proxy-wasm metrics have no labels, so labels are
//! encoded in the stat name as `.<label>.<value>` segments that Envoy's `stats_tags` turn into
//! Prometheus labels (the regexes are in [`STATS_TAGS`] and envoy/envoy.yaml); without them the
//! counters still appear, with the labels folded into the name.
//!
//! | stat (Envoy adds the `wasmcustom.` prefix) | Prometheus |
//! |---|---|
//! | `traffic_color.requests_total.color.<tag>` | `traffic_color_requests_total{color}` |
//! | `traffic_color.requests_total.color.unset` | no rule matched and no default |
//! | `traffic_color.rule_hits_total.rule.<n>[.name.<name>]` | `traffic_color_rule_hits_total{rule,name}`; `n` is the 1-based rule or `default`, `name` a rule's optional `match "name"` |
//! | `traffic_color.unmatched_total` | requests no `match` rule matched (default or unset) |
//! | `traffic_color.client_color_stripped_total` | requests whose incoming color header was removed |
//! | `traffic_color.kept_total` | requests whose incoming color was kept (`keep`) |
//! | `traffic_color.config_loads_total` / `config_rejections_total` | configurations accepted / rejected |

use crate::lang::Program;
use crate::lang::eval::DecidedBy;
use crate::verdict::Counter;

pub const PREFIX: &str = "traffic_color";

/// `(tag name, regex)` pairs for Envoy's `stats_config.stats_tags`, matching the names above.
pub const STATS_TAGS: &[(&str, &str)] = &[
    (
        "color",
        r"^wasmcustom\.traffic_color\.requests_total(\.color\.(.+))$",
    ),
    (
        "rule",
        r"^wasmcustom\.traffic_color\.rule_hits_total(\.rule\.([^.]+))",
    ),
    (
        "name",
        r"^wasmcustom\.traffic_color\.rule_hits_total\.rule\.[^.]+(\.name\.(.+))$",
    ),
];

/// Every counter a program needs, by name, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// One per distinct tag (rules then default), plus `unset` last.
    pub colors: Vec<(String, String)>,
    /// One per rule, in order, then `default`.
    pub rules: Vec<String>,
    pub unmatched: String,
    pub stripped: String,
    pub kept: String,
}

pub fn config_loads() -> String {
    format!("{PREFIX}.config_loads_total")
}

pub fn config_rejections() -> String {
    format!("{PREFIX}.config_rejections_total")
}

/// The color label used when the header is left unset.
pub const UNSET: &str = "unset";

impl Names {
    pub fn for_program(program: &Program) -> Names {
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
        let colors = tags
            .into_iter()
            .map(|t| {
                let name = format!("{PREFIX}.requests_total.color.{t}");
                (t, name)
            })
            .collect();
        let rules = program
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| match &r.name {
                Some(name) => format!("{PREFIX}.rule_hits_total.rule.{}.name.{name}", i + 1),
                None => format!("{PREFIX}.rule_hits_total.rule.{}", i + 1),
            })
            .chain(std::iter::once(format!(
                "{PREFIX}.rule_hits_total.rule.default"
            )))
            .collect();
        Names {
            colors,
            rules,
            unmatched: format!("{PREFIX}.unmatched_total"),
            stripped: format!("{PREFIX}.client_color_stripped_total"),
            kept: format!("{PREFIX}.kept_total"),
        }
    }
}

/// The host's id of every counter a program needs, resolved once per config so that a request
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
}

impl Ids {
    /// Defines every counter through `define` (the host's `define_metric`); `None` if any fails.
    pub fn define(names: &Names, mut define: impl FnMut(&str) -> Option<u32>) -> Option<Ids> {
        let colors = names
            .colors
            .iter()
            .map(|(tag, name)| Some((tag.clone(), define(name)?)))
            .collect::<Option<Vec<_>>>()?;
        let rules = names
            .rules
            .iter()
            .map(|n| define(n))
            .collect::<Option<Vec<u32>>>()?;
        Some(Ids {
            colors,
            rules,
            unmatched: define(&names.unmatched)?,
            stripped: define(&names.stripped)?,
            kept: define(&names.kept)?,
        })
    }

    /// The id to increment for `counter`.
    pub fn of(&self, counter: Counter<'_>) -> Option<u32> {
        match counter {
            Counter::Color(tag) => {
                let color = tag.map_or(UNSET, |t| t.as_str());
                self.colors.iter().find(|(t, _)| t == color).map(|c| c.1)
            }
            Counter::RuleHit(DecidedBy::Rule(n)) => self.rules.get(n.checked_sub(1)?).copied(),
            Counter::RuleHit(DecidedBy::Default) => self.rules.last().copied(),
            Counter::RuleHit(DecidedBy::Nothing) => None,
            Counter::Unmatched => Some(self.unmatched),
            Counter::Stripped => Some(self.stripped),
            Counter::Kept => Some(self.kept),
        }
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
        let n = Names::for_program(&p);
        let colors: Vec<&str> = n.colors.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(colors, ["canary", "blue", "stable", "unset"]);
        assert_eq!(n.colors[0].1, "traffic_color.requests_total.color.canary");
        assert_eq!(n.rules.len(), 4);
        assert_eq!(n.rules[0], "traffic_color.rule_hits_total.rule.1");
        assert_eq!(n.rules[1], "traffic_color.rule_hits_total.rule.2.name.bees");
        assert_eq!(n.rules[3], "traffic_color.rule_hits_total.rule.default");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_counter_of_a_verdict_has_its_own_id() {
        let p = crate::lang::compile(
            "match { path == \"/a\" } -> \"canary\"\nmatch { path == \"/b\" } -> \"blue\"\ndefault -> \"stable\"",
        )
        .unwrap();
        let names = Names::for_program(&p);
        let mut defined = Vec::new();
        let ids = Ids::define(&names, |n| {
            defined.push(n.to_string());
            u32::try_from(defined.len()).ok()
        })
        .unwrap();
        let name_of = |c| defined[ids.of(c).unwrap() as usize - 1].clone();
        let blue = &p.rules[1].tag;
        assert_eq!(
            name_of(Counter::Color(Some(blue))),
            "traffic_color.requests_total.color.blue"
        );
        assert_eq!(
            name_of(Counter::Color(None)),
            "traffic_color.requests_total.color.unset"
        );
        assert_eq!(
            name_of(Counter::RuleHit(DecidedBy::Rule(2))),
            "traffic_color.rule_hits_total.rule.2"
        );
        assert_eq!(
            name_of(Counter::RuleHit(DecidedBy::Default)),
            "traffic_color.rule_hits_total.rule.default"
        );
        assert_eq!(name_of(Counter::Kept), "traffic_color.kept_total");
        assert_eq!(ids.of(Counter::RuleHit(DecidedBy::Nothing)), None);
        assert_eq!(ids.of(Counter::RuleHit(DecidedBy::Rule(9))), None);
        assert!(Ids::define(&names, |_| None).is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_example_envoy_config_carries_the_tag_regexes() {
        let yaml = include_str!("../envoy/envoy.yaml");
        for (tag, regex) in STATS_TAGS {
            assert!(yaml.contains(&format!("tag_name: {tag}")), "{tag}");
            assert!(yaml.contains(&format!("regex: '{regex}'")), "{regex}");
        }
    }
}

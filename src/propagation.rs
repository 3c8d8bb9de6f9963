//! Carrying a color across hops. With `keep`, a color set by a trusted earlier hop (in the color
//! header, or in W3C `baggage` for services that forward only tracing headers) is kept instead of
//! being recomputed; with `baggage`, the color is also written into the `baggage` header, merged
//! with the members already there.

use crate::config::FilterConfig;
use crate::lang::eval::{DecidedBy, Facts};
use crate::lang::program::{Program, Tag};

/// How a request got its color.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The rules decided.
    Decided(DecidedBy),
    /// `keep`: the incoming color header carried one of the program's tags.
    KeptHeader,
    /// `keep`: the incoming baggage member carried one of the program's tags.
    KeptBaggage,
}

impl Outcome {
    /// The value of the debug header: rule index, `default`, `none` or `kept`.
    pub fn describe(self) -> String {
        match self {
            Outcome::Decided(DecidedBy::Rule(n)) => n.to_string(),
            Outcome::Decided(DecidedBy::Default) => "default".to_string(),
            Outcome::Decided(DecidedBy::Nothing) => "none".to_string(),
            Outcome::KeptHeader | Outcome::KeptBaggage => "kept".to_string(),
        }
    }
}

/// The color for a request: kept from an earlier hop when the config says so and the incoming
/// value is a known tag, else decided by the rules. `incoming` is the color header as it
/// arrived; `baggage` is read only when needed.
pub fn color<'c>(
    config: &'c FilterConfig,
    incoming: Option<&str>,
    baggage: impl FnOnce() -> Option<String>,
    facts: &impl Facts,
) -> (Option<&'c Tag>, Outcome) {
    if config.keep {
        if let Some(tag) = incoming.and_then(|v| known_tag(&config.program, v)) {
            return (Some(tag), Outcome::KeptHeader);
        }
        if let Some(key) = &config.baggage {
            let kept = baggage()
                .and_then(|b| baggage_get(&b, key.as_str()))
                .and_then(|v| known_tag(&config.program, &v));
            if let Some(tag) = kept {
                return (Some(tag), Outcome::KeptBaggage);
            }
        }
    }
    let d = config.program.decide(facts);
    (d.tag, Outcome::Decided(d.by))
}

/// W3C Baggage limits: longer headers are not parsed (nor extended).
pub const MAX_BAGGAGE_BYTES: usize = 8192;
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// The incoming color to keep: only a tag this program can produce, so a kept value is always
/// one the mesh routes on (anything else is stripped and recomputed).
pub fn known_tag<'p>(program: &'p Program, value: &str) -> Option<&'p Tag> {
    let value = value.trim();
    program
        .rules
        .iter()
        .map(|r| &r.tag)
        .chain(program.default.as_ref())
        .find(|t| t.as_str() == value)
}

/// The value of `key` in a baggage header (`k1=v1;prop,k2=v2`), percent-decoded.
pub fn baggage_get(baggage: &str, key: &str) -> Option<String> {
    if baggage.len() > MAX_BAGGAGE_BYTES {
        return None;
    }
    baggage
        .split(',')
        .take(MAX_BAGGAGE_MEMBERS)
        .filter_map(|member| {
            let kv = member.split(';').next()?;
            let (k, v) = kv.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
        .next()
        .and_then(crate::request::query::decode_percent)
        .map(std::borrow::Cow::into_owned)
}

/// `baggage` with `key=value` set (or, for `None`, the `key` member removed): an existing member
/// with that key is replaced in place, every other member (and its properties) is kept as it was.
/// `None` when the result would exceed the W3C limits (the header is then left alone); an empty
/// string when no member is left.
pub fn baggage_set(baggage: Option<&str>, key: &str, value: Option<&str>) -> Option<String> {
    let ours = value.map(|v| format!("{key}={v}"));
    let Some(existing) = baggage.map(str::trim).filter(|b| !b.is_empty()) else {
        return Some(ours.unwrap_or_default());
    };
    let mut members: Vec<String> = Vec::new();
    let mut replaced = false;
    for member in existing.split(',') {
        let name = member
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(k, _)| k.trim());
        if name == Some(key) {
            if !replaced {
                members.extend(ours.clone());
                replaced = true;
            }
        } else if !member.trim().is_empty() {
            members.push(member.trim().to_string());
        }
    }
    if !replaced {
        members.extend(ours);
    }
    let merged = members.join(",");
    (merged.len() <= MAX_BAGGAGE_BYTES && members.len() <= MAX_BAGGAGE_MEMBERS).then_some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_members() {
        let b = "userId=alice, traffic-color=canary;prop=1 ,serverNode=DF%2028";
        assert_eq!(baggage_get(b, "traffic-color").as_deref(), Some("canary"));
        assert_eq!(baggage_get(b, "serverNode").as_deref(), Some("DF 28"));
        assert_eq!(baggage_get(b, "nope"), None);
        assert_eq!(baggage_get("broken", "broken"), None);
        assert_eq!(baggage_get(&"a=b,".repeat(5000), "a"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn merges_without_clobbering() {
        let set = |b: Option<&str>, v: Option<&str>| baggage_set(b, "tc", v);
        assert_eq!(set(None, Some("canary")).as_deref(), Some("tc=canary"));
        assert_eq!(set(Some(" "), Some("canary")).as_deref(), Some("tc=canary"));
        assert_eq!(
            set(Some("userId=alice,tc=stable;p=1, x=y;q"), Some("canary")).as_deref(),
            Some("userId=alice,tc=canary,x=y;q")
        );
        assert_eq!(
            set(Some("userId=alice"), Some("canary")).as_deref(),
            Some("userId=alice,tc=canary")
        );
        assert_eq!(
            set(Some("userId=alice,tc=canary"), None).as_deref(),
            Some("userId=alice")
        );
        assert_eq!(set(Some("tc=canary"), None).as_deref(), Some(""));
        assert_eq!(set(Some(&"a=b,".repeat(3000)), Some("canary")), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keep_policy() {
        use crate::request::{RequestFacts, SimpleRequest};
        let json = |extra: &str| {
            format!(
                r#"{{"rules": "match {{ header[\"x-canary\"] == \"true\" }} -> \"canary\"\ndefault -> \"stable\""{extra}}}"#
            )
        };
        let run = |cfg: &str, incoming: Option<&str>, baggage: Option<&str>, canary: bool| {
            let c = FilterConfig::from_json(cfg.as_bytes()).unwrap();
            let mut req = SimpleRequest::new("GET", "/");
            if canary {
                req = req.with_header("x-canary", "true");
            }
            let facts = RequestFacts::new(&req, &c.program.needs, &c.claims);
            let (tag, outcome) = color(&c, incoming, || baggage.map(String::from), &facts);
            (tag.map(|t| t.as_str().to_string()), outcome)
        };
        let strip = json("");
        let keep = json(r#", "keep": true, "baggage": "tc""#);
        let decided = |n| Outcome::Decided(n);
        // Default: an incoming color never survives.
        assert_eq!(
            run(&strip, Some("canary"), None, false),
            (Some("stable".into()), decided(DecidedBy::Default))
        );
        // keep: a known incoming tag is kept, even against the rules.
        assert_eq!(
            run(&keep, Some("canary"), None, false),
            (Some("canary".into()), Outcome::KeptHeader)
        );
        assert_eq!(
            run(&keep, Some("stable"), None, true),
            (Some("stable".into()), Outcome::KeptHeader)
        );
        // ... an unknown one is recomputed.
        assert_eq!(
            run(&keep, Some("evil"), None, true),
            (Some("canary".into()), decided(DecidedBy::Rule(1)))
        );
        // ... and baggage is the fallback when the header did not travel.
        assert_eq!(
            run(&keep, None, Some("a=b,tc=canary"), false),
            (Some("canary".into()), Outcome::KeptBaggage)
        );
        assert_eq!(
            run(&keep, None, Some("tc=evil"), false),
            (Some("stable".into()), decided(DecidedBy::Default))
        );
        assert_eq!(
            run(&strip, None, Some("tc=canary"), false),
            (Some("stable".into()), decided(DecidedBy::Default))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn only_known_tags_are_kept() {
        let p =
            crate::lang::compile("match { path == \"/\" } -> \"canary\"\ndefault -> \"stable\"")
                .unwrap();
        assert_eq!(known_tag(&p, "canary").map(|t| t.as_str()), Some("canary"));
        assert_eq!(
            known_tag(&p, " stable ").map(|t| t.as_str()),
            Some("stable")
        );
        assert_eq!(known_tag(&p, "evil"), None);
    }
}

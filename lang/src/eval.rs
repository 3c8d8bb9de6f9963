//! Evaluates a compiled program against one request's facts. First matching rule wins.
//! An absent value makes every test on it false; `!` negates whole conditions only.

use super::program::*;
use crate::bucket::{bucket_of_prefixed, split_of_prefixed};
use serde_json::Value as Json;
use std::cell::Cell;
use std::cmp::Ordering;
use std::net::IpAddr;

/// Request data by slot, fetched and decoded lazily by the implementation (at most once each).
pub trait Facts {
    fn header(&self, slot: usize) -> Option<&str>;
    fn query(&self, slot: usize) -> Option<&str>;
    fn cookie(&self, slot: usize) -> Option<&str>;
    fn claim(&self, slot: usize) -> Option<&Json>;
    fn baggage(&self, slot: usize) -> Option<&str>;
    /// The sticky visitor id, read from its cookie or minted for this request.
    fn visitor(&self) -> Option<&str>;
    fn path(&self) -> Option<&str>;
    fn method(&self) -> Option<&str>;
    fn host(&self) -> Option<&str>;
    fn source_ip(&self) -> Option<IpAddr>;
    /// Unix nanoseconds on the proxy's clock.
    fn now(&self) -> Option<i64>;
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// 1-based index among the program's rules.
    Rule(usize),
    Default,
    /// No rule matched and there is no default: the color header is left unset.
    Nothing,
}

impl std::fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecidedBy::Rule(n) => write!(f, "rule {n}"),
            DecidedBy::Default => f.write_str("default"),
            DecidedBy::Nothing => f.write_str("none"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    pub tag: Option<&'p Tag>,
    pub by: DecidedBy,
}

/// Answers of the regex tests that scan their value, by `Cond::Test::scan` slot, for one
/// request: bit `i` of `known` says slot `i` ran, of `some` that the value was comparable, of
/// `yes` that it matched. On the stack: `MAX_REGEX_SCANS` is at most 64.
#[derive(Default)]
pub(crate) struct Memo {
    known: Cell<u64>,
    some: Cell<u64>,
    yes: Cell<u64>,
}

const _: () = assert!(super::limits::MAX_REGEX_SCANS <= 64);

impl Memo {
    fn get_or(&self, slot: u8, run: impl FnOnce() -> Option<bool>) -> Option<bool> {
        let bit = 1u64 << (slot & 63);
        if self.known.get() & bit != 0 {
            return (self.some.get() & bit != 0).then_some(self.yes.get() & bit != 0);
        }
        let answer = run();
        self.known.set(self.known.get() | bit);
        if let Some(yes) = answer {
            self.some.set(self.some.get() | bit);
            if yes {
                self.yes.set(self.yes.get() | bit);
            }
        }
        answer
    }
}

impl Program {
    pub fn decide(&self, facts: &impl Facts) -> Decision<'_> {
        let now = if self.needs.clock { facts.now() } else { None };
        let memo = Memo::default();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.window.contains(now) && rule.cond.holds_with(facts, &memo) {
                return Decision {
                    tag: Some(&rule.tag),
                    by: DecidedBy::Rule(i + 1),
                };
            }
        }
        match &self.default {
            Some(tag) => Decision {
                tag: Some(tag),
                by: DecidedBy::Default,
            },
            None => Decision {
                tag: None,
                by: DecidedBy::Nothing,
            },
        }
    }
}

/// A value as read from the request.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    Text(&'a str),
    Json(&'a Json),
    Num(f64),
    Ip(IpAddr),
}

impl Cond {
    pub fn holds(&self, facts: &impl Facts) -> bool {
        self.holds_with(facts, &Memo::default())
    }

    pub(crate) fn holds_with(&self, facts: &impl Facts, memo: &Memo) -> bool {
        match self {
            Cond::Any(cs) => cs.iter().any(|c| c.holds_with(facts, memo)),
            Cond::All(cs) => cs.iter().all(|c| c.holds_with(facts, memo)),
            Cond::Not(c) => !c.holds_with(facts, memo),
            Cond::Exists { val, .. } => val.read(facts).is_some(),
            Cond::Test {
                val,
                test,
                scan: None,
                ..
            } => val.read(facts).is_some_and(|seen| test.holds(seen)),
            Cond::Test {
                val,
                test,
                scan: Some(slot),
                ..
            } => val.read(facts).is_some_and(|seen| {
                memo.get_or(*slot, || test.check.eval(seen))
                    .is_some_and(|b| b != test.negate)
            }),
        }
    }
}

impl Val {
    pub fn read<'f>(&self, facts: &'f impl Facts) -> Option<Seen<'f>> {
        match self {
            Val::Header(i) => facts.header(*i).map(Seen::Text),
            Val::Query(i) => facts.query(*i).map(Seen::Text),
            Val::Cookie(i) => facts.cookie(*i).map(Seen::Text),
            Val::Claim(i) => facts.claim(*i).filter(|j| !j.is_null()).map(Seen::Json),
            Val::Path => facts.path().map(Seen::Text),
            Val::Method => facts.method().map(Seen::Text),
            Val::Host => facts.host().map(Seen::Text),
            Val::SourceIp => facts.source_ip().map(Seen::Ip),
            Val::Bucket { key, prefix } => {
                let n = with_key_text(key, facts, |k| bucket_of_prefixed(prefix, k))?;
                Some(Seen::Num(f64::from(n)))
            }
            Val::Split { key, prefix } => {
                with_key_text(key, facts, |k| split_of_prefixed(prefix, k)).map(Seen::Num)
            }
            Val::Visitor => facts.visitor().map(Seen::Text),
            Val::Baggage(i) => facts.baggage(*i).map(Seen::Text),
        }
    }
}

/// Hashes a bucket's or split's key as text: strings as they are, numbers as JSON writes them,
/// addresses in their usual form; objects, arrays and booleans have no key.
fn with_key_text<T>(key: &Val, facts: &impl Facts, hash: impl FnOnce(&str) -> T) -> Option<T> {
    let formatted;
    let key: &str = match key.read(facts)? {
        Seen::Text(s) => s,
        Seen::Json(Json::String(s)) => s,
        Seen::Json(Json::Number(n)) => {
            formatted = n.to_string();
            &formatted
        }
        Seen::Json(_) => return None,
        // Only a bucket reads as a number here, and buckets are whole numbers.
        Seen::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
            formatted = (n as i64).to_string();
            &formatted
        }
        Seen::Num(_) => return None,
        Seen::Ip(ip) => {
            formatted = ip.to_string();
            &formatted
        }
    };
    Some(hash(key))
}

impl Test {
    #[inline]
    pub fn holds(&self, seen: Seen<'_>) -> bool {
        self.check.eval(seen).is_some_and(|b| b != self.negate)
    }
}

impl Check {
    /// `None` when the value cannot be read as what the check compares (absent for this test).
    #[inline]
    pub fn eval(&self, seen: Seen<'_>) -> Option<bool> {
        match seen {
            Seen::Json(Json::Array(items)) => {
                if let Check::Contains(s) = self {
                    return Some(items.iter().any(|j| as_text(j) == Some(s.as_str())));
                }
                let mut result = None;
                for item in items {
                    match self.eval(Seen::Json(item)) {
                        Some(true) => return Some(true),
                        Some(false) => result = Some(false),
                        None => {}
                    }
                }
                result
            }
            Seen::Json(Json::Object(_) | Json::Null) => None,
            Seen::Ip(ip) => match self {
                Check::InNets(nets) => Some(nets.iter().any(|n| n.contains(&ip))),
                _ => None,
            },
            _ => self.eval_scalar(seen),
        }
    }

    #[inline]
    fn eval_scalar(&self, seen: Seen<'_>) -> Option<bool> {
        match self {
            Check::Eq(lit) => eq(seen, lit),
            Check::OneOf(set) => {
                if let Some(text) = text(seen)
                    && set.strings.contains(text)
                {
                    return Some(true);
                }
                let mut result = None;
                for lit in &set.others {
                    match eq(seen, lit) {
                        Some(true) => return Some(true),
                        Some(false) => result = Some(false),
                        None => {}
                    }
                }
                if !set.strings.is_empty() && text(seen).is_some() {
                    result = Some(false);
                }
                result
            }
            Check::Regex(re) => text(seen).map(|t| re.is_match(t)),
            Check::StartsWith(s) => text(seen).map(|t| t.starts_with(s.as_str())),
            Check::EndsWith(s) => text(seen).map(|t| t.ends_with(s.as_str())),
            Check::Contains(s) => text(seen).map(|t| t.contains(s.as_str())),
            Check::Order(order, bound) => {
                let ordering = match bound {
                    Bound::Num(n) => number(seen)?.partial_cmp(n)?,
                    Bound::Version(v) => version(seen)?.cmp_precedence(v),
                };
                Some(match order {
                    Order::Lt => ordering == Ordering::Less,
                    Order::Le => ordering != Ordering::Greater,
                    Order::Gt => ordering == Ordering::Greater,
                    Order::Ge => ordering != Ordering::Less,
                })
            }
            Check::InNets(_) => None,
        }
    }
}

#[inline]
fn eq(seen: Seen<'_>, lit: &Scalar) -> Option<bool> {
    match lit {
        Scalar::Str(s) => text(seen).map(|t| t == s),
        Scalar::Num(n) => number(seen).map(|x| x == *n),
        Scalar::Bool(b) => boolean(seen).map(|x| x == *b),
        Scalar::Version(v) => version(seen).map(|x| x.cmp_precedence(v) == Ordering::Equal),
    }
}

/// Strings as themselves; JSON numbers and booleans are not text (compare them as what they are).
#[inline]
fn text<'a>(seen: Seen<'a>) -> Option<&'a str> {
    match seen {
        Seen::Text(t) => Some(t),
        Seen::Json(j) => as_text(j),
        _ => None,
    }
}

#[inline]
fn as_text(j: &Json) -> Option<&str> {
    j.as_str()
}

#[inline]
fn number(seen: Seen<'_>) -> Option<f64> {
    let n = match seen {
        Seen::Text(t) => t.trim().parse::<f64>().ok()?,
        Seen::Json(Json::Number(n)) => n.as_f64()?,
        Seen::Json(Json::String(s)) => s.trim().parse::<f64>().ok()?,
        Seen::Num(n) => n,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

#[inline]
fn boolean(seen: Seen<'_>) -> Option<bool> {
    match seen {
        Seen::Json(Json::Bool(b)) => Some(*b),
        _ => match text(seen)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
    }
}

/// Reads app versions leniently: `v5.2`, `5.2` and `5` read as 5.2.0, 5.2.0 and 5.0.0, because
/// clients rarely send all three parts; anything else must be semver.
#[inline]
fn version(seen: Seen<'_>) -> Option<semver::Version> {
    let raw = text(seen)?.trim();
    let raw = raw.strip_prefix(['v', 'V']).unwrap_or(raw);
    if let Ok(v) = semver::Version::parse(raw) {
        return Some(v);
    }
    let (core, rest) = match raw.find(['-', '+']) {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    let parts = core.split('.').count();
    if !(1..=2).contains(&parts) {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok()
}

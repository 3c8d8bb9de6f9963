//! The compiled program: what a request is evaluated against. Built once per config and shared.
//! Every value a rule reads is a slot index, so a request fetches each header, query key,
//! cookie and claim at most once, and only those the program names.

use super::pattern::Pattern;
use super::span::Span;
use ipnet::IpNet;

#[derive(Debug)]
pub struct Program {
    pub rules: Vec<Rule>,
    pub default: Option<Tag>,
    /// 1-based line of `default`, if any.
    pub default_line: Option<usize>,
    pub needs: Needs,
}

/// A color, validated to be safe as a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(pub(crate) String);

impl Tag {
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug)]
pub struct Rule {
    /// The optional `match "name"`, for metrics and explanations.
    pub name: Option<String>,
    pub cond: Cond,
    pub window: Window,
    pub tag: Tag,
    /// 1-based line of the rule's `match`, for logs and explanations.
    pub line: usize,
    /// The rule's source text, from `match` to its tag.
    pub span: Span,
}

/// A half-open time window `[from, until)` in Unix nanoseconds; unbounded sides are `None`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    #[inline]
    pub fn is_always(&self) -> bool {
        self.from.is_none() && self.until.is_none()
    }

    /// A windowed rule is out of force when the clock is unknown.
    #[inline]
    pub fn contains(&self, now: Option<i64>) -> bool {
        if self.is_always() {
            return true;
        }
        let Some(now) = now else { return false };
        self.from.is_none_or(|f| now >= f) && self.until.is_none_or(|u| now < u)
    }
}

#[derive(Debug)]
pub enum Cond {
    Any(Vec<Cond>),
    All(Vec<Cond>),
    Not(Box<Cond>),
    /// `span` covers the value inside `exists(..)`, for explanations.
    Exists {
        val: Val,
        span: Span,
    },
    /// `span` covers the whole comparison, `value` the value on its left. `scan` is the memo
    /// slot of a regex test that reads its whole value: identical tests (same value, same
    /// pattern) share one, so a request scans each value once per distinct pattern whatever
    /// the number of rules (`limits::MAX_REGEX_SCANS`).
    Test {
        val: Val,
        test: Test,
        span: Span,
        value: Span,
        scan: Option<u8>,
    },
}

/// Where a value comes from; the index is the slot in [`Needs`].
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Header(usize),
    Query(usize),
    Cookie(usize),
    Claim(usize),
    Path,
    Method,
    Host,
    SourceIp,
    Bucket {
        key: Box<Val>,
        prefix: String,
    },
    /// A number in [0, 100) with four decimals, for percentages finer than 1%.
    Split {
        key: Box<Val>,
        prefix: String,
    },
    Visitor,
    Baggage(usize),
}

/// A comparison; `negate` turns `==` into `!=`, `in` into `not in`, `=~` into `!~`. A negated
/// test is still false when the value is absent or cannot be read as the literal's type.
#[derive(Debug)]
pub struct Test {
    pub check: Check,
    pub negate: bool,
}

#[derive(Debug)]
pub enum Check {
    Eq(Scalar),
    OneOf(OneOf),
    Regex(Pattern),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Order(Order, Bound),
    InNets(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Num(f64),
    Version(semver::Version),
    Bool(bool),
}

/// A literal list: strings in a set for the common case, everything else tried in order.
#[derive(Debug)]
pub struct OneOf {
    pub strings: StrSet,
    pub others: Vec<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Num(f64),
    Version(semver::Version),
}

/// The exact set of request data the program reads.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Needs {
    /// Lower-case header names.
    pub headers: Vec<String>,
    pub queries: Vec<String>,
    pub cookies: Vec<String>,
    /// Claim paths, e.g. `["realm_access", "roles"]`.
    pub claims: Vec<Vec<String>>,
    /// W3C baggage member keys.
    pub baggage: Vec<String>,
    /// Where the program first reads `visitor` (the config must then set `visitor`).
    pub visitor: Option<Span>,
    pub path: bool,
    pub method: bool,
    pub host: bool,
    pub source_ip: bool,
    /// Some rule has a time window.
    pub clock: bool,
}

impl Needs {
    pub(crate) fn slot<T: PartialEq + Clone>(list: &mut Vec<T>, item: &T) -> usize {
        match list.iter().position(|x| x == item) {
            Some(i) => i,
            None => {
                list.push(item.clone());
                list.len() - 1
            }
        }
    }
}

/// A set of strings as a sorted list: lists in rules are short, and a binary search over them
/// beats hashing the haystack (and keeps a hasher out of the module).
#[derive(Debug)]
pub struct StrSet(Vec<String>);

impl StrSet {
    pub fn new(strings: Vec<String>) -> Self {
        let mut strings = super::sorted(strings);
        strings.dedup();
        StrSet(strings)
    }

    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        self.0.binary_search_by(|item| item.as_str().cmp(s)).is_ok()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

//! Requests to try a config on when no real traffic is at hand: synthetic users, which spread
//! over every split and bucket as real users would, and requests built from the literals the
//! rules compare against, which reach the rules a random user never would (a header, a cookie,
//! a claim, a path).

use super::request::{RequestLine, encode, request_id};
use crate::config::FilterConfig;
use crate::lang::ast::{Expr, Literal, LiteralKind, Op, Value, ValueKind};
use crate::lang::pattern::Pattern;
use serde_json::Value as Json;

/// The header synthetic users carry their id in (as `simulate --users` does).
pub const USER_HEADER: &str = "x-user-id";

/// At most this many requests from literals, however long the program's lists are.
pub const MAX_LITERAL_REQUESTS: usize = 1_000;

/// One thing a request carries.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    Header(String, String),
    Query(String, String),
    Cookie(String, String),
    Claim(Vec<String>, Json),
    Path(String),
    Method(String),
    Host(String),
    SourceIp(String),
    Baggage(String, String),
}

impl Fact {
    fn apply(&self, r: &mut RequestLine) {
        match self {
            Fact::Header(k, v) => r.headers.push((k.clone(), v.clone())),
            Fact::Query(k, v) => r.query.push((k.clone(), v.clone())),
            Fact::Cookie(k, v) => r.cookies.push((k.clone(), v.clone())),
            Fact::Claim(path, v) => {
                let claims = r
                    .claims
                    .get_or_insert_with(|| Json::Object(Default::default()));
                set_claim(claims, path, v.clone());
            }
            Fact::Path(p) => r.path = p.clone(),
            Fact::Method(m) => r.method = m.clone(),
            Fact::Host(h) => r.headers.push((":authority".to_string(), h.clone())),
            Fact::SourceIp(ip) => r.source_ip = Some(ip.clone()),
            Fact::Baggage(k, v) => r
                .headers
                .push(("baggage".to_string(), format!("{k}={}", encode(v)))),
        }
    }
}

/// Sets `claims[path[0]][path[1]]... = value`, making objects on the way.
fn set_claim(claims: &mut Json, path: &[String], value: Json) {
    let mut at = claims;
    for key in path {
        if !at.is_object() {
            *at = Json::Object(Default::default());
        }
        let Json::Object(map) = at else { return };
        at = map.entry(key.clone()).or_insert(Json::Null);
    }
    *at = value;
}

/// Deeper claim paths are left out of samples: JSON that deep is refused by parsers (and
/// serde_json's own recursion limit is 128).
const MAX_CLAIM_DEPTH: usize = 64;

/// What a rule's comparisons need from a request.
#[derive(Default)]
struct RuleFacts {
    /// A value for each comparison that makes it count towards the rule matching (none for
    /// comparisons under a `!`: leaving them out satisfies them).
    together: Vec<Fact>,
    /// Every literal the rule compares against, as a value: each one a request alone.
    each: Vec<Fact>,
}

/// `users` synthetic users (`x-user-id: user-1` … and the same id in every other source a split
/// or bucket hashes), then requests from the program's literals: one per rule with a value for
/// each of its comparisons, and one per distinct literal alone. With `keep`, one request per
/// tag arriving with that color. Every request has an `x-request-id`, as Envoy gives it.
pub fn sample(config: &FilterConfig, users: u64) -> Vec<RequestLine> {
    let program = crate::lang::parse(&config.rules);
    let mut keys: Vec<&Value> = Vec::new();
    let mut rules: Vec<RuleFacts> = Vec::new();
    for rule in &program.rules {
        let mut facts = RuleFacts::default();
        if let Some(cond) = &rule.condition {
            walk(cond, true, &mut facts, &mut keys);
        }
        rules.push(facts);
    }
    let mut out = Vec::new();
    for i in 1..=users {
        let id = format!("user-{i}");
        let mut r = RequestLine::default();
        r.headers.push((USER_HEADER.to_string(), id.clone()));
        for key in &keys {
            if let Some(fact) = fact_for(key, Json::from(id.as_str()))
                && fact != Fact::Header(USER_HEADER.to_string(), id.clone())
            {
                fact.apply(&mut r);
            }
        }
        r.headers
            .push((crate::lang::REQUEST_ID.to_string(), request_id(i)));
        out.push(r);
    }
    let mut made: Vec<RequestLine> = Vec::new();
    let mut add = |r: RequestLine| {
        if made.len() < MAX_LITERAL_REQUESTS && !made.contains(&r) {
            made.push(r);
        }
    };
    for rule in &rules {
        if !rule.together.is_empty() {
            let mut r = RequestLine::default();
            for fact in &rule.together {
                fact.apply(&mut r);
            }
            add(r);
        }
    }
    for fact in rules.iter().flat_map(|r| &r.each) {
        let mut r = RequestLine::default();
        fact.apply(&mut r);
        add(r);
    }
    if config.keep {
        let program = &config.program;
        for tag in program.rules.iter().map(|r| &r.tag).chain(&program.default) {
            let mut r = RequestLine::default();
            r.headers
                .push((config.header.as_str().to_string(), tag.as_str().to_string()));
            add(r);
        }
    }
    for (n, mut r) in (users.saturating_add(1)..).zip(made) {
        if !r.headers.iter().any(|(k, _)| k == crate::lang::REQUEST_ID) {
            r.headers
                .push((crate::lang::REQUEST_ID.to_string(), request_id(n)));
        }
        out.push(r);
    }
    out
}

/// Collects a rule's facts (see [`RuleFacts`]) and the keys its splits and buckets hash;
/// `positive` is false under an odd number of `!`.
fn walk<'a>(expr: &'a Expr, positive: bool, facts: &mut RuleFacts, keys: &mut Vec<&'a Value>) {
    match expr {
        Expr::Or(terms) | Expr::And(terms) => {
            for t in terms {
                walk(t, positive, facts, keys);
            }
        }
        Expr::Not(inner) => walk(inner, !positive, facts, keys),
        Expr::Exists(value) => {
            collect_keys(value, keys);
            if let Some(f) = fact_for(value, Json::from("1")) {
                if positive {
                    facts.together.push(f.clone());
                }
                facts.each.push(f);
            }
        }
        Expr::Compare { value, op, literal } => {
            collect_keys(value, keys);
            let op = op.node;
            let items = literals(literal);
            let negated = matches!(op, Op::Ne | Op::NotIn | Op::NotMatch);
            // A negated test is false on an absent value, so it needs some other value; an
            // ordering needs one on the right side of the bound.
            let wanted = match items.first() {
                Some(first) if positive && negated => other(first, op),
                Some(first) if positive => satisfying(first, op),
                _ => None,
            };
            if let Some(f) = wanted.and_then(|v| fact_for(value, v)) {
                facts.together.push(f);
            }
            if positive
                && let (Some(bound), Some(key)) = (number_of(literal), drawn_key(value, op))
                && let Some(f) = key_within(&key, op, bound)
            {
                facts.together.push(f);
            }
            for l in items {
                if let Some(f) = edge(l, op).and_then(|v| fact_for(value, v)) {
                    facts.each.push(f);
                }
            }
        }
        Expr::Bare(value) => collect_keys(value, keys),
        Expr::Invalid => {}
    }
}

/// What a bucket or split hashes: the key's source (`None`: the request id) and the group.
struct DrawnKey<'a> {
    key: Option<&'a Value>,
    group: String,
    split: bool,
}

fn drawn_key(value: &Value, op: Op) -> Option<DrawnKey<'_>> {
    if !matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq) {
        return None;
    }
    match &value.node {
        ValueKind::Bucket { key, group } => Some(DrawnKey {
            key: Some(key),
            group: group.as_ref()?.node.clone(),
            split: false,
        }),
        ValueKind::Split { key, group } => Some(DrawnKey {
            key: key.as_deref(),
            group: group.as_ref()?.node.clone(),
            split: true,
        }),
        _ => None,
    }
}

fn number_of(literal: &Literal) -> Option<f64> {
    match literal.node {
        LiteralKind::Num(n) => Some(n),
        _ => None,
    }
}

/// A user id that draws a bucket or split for which `op bound` holds (`user-N`, the first
/// of a few thousand that does), as the fact that carries it.
fn key_within(drawn: &DrawnKey<'_>, op: Op, bound: f64) -> Option<Fact> {
    let holds = |x: f64| match op {
        Op::Lt => x < bound,
        Op::Le => x <= bound,
        Op::Gt => x > bound,
        Op::Ge => x >= bound,
        _ => x == bound,
    };
    let id = (1..=4096).map(|n| format!("user-{n}")).find(|id| {
        holds(if drawn.split {
            crate::bucket::split(&drawn.group, id)
        } else {
            f64::from(crate::bucket::bucket(&drawn.group, id))
        })
    })?;
    match drawn.key {
        Some(key) => fact_for(key, Json::from(id)),
        None => Some(Fact::Header(crate::lang::REQUEST_ID.to_string(), id)),
    }
}

fn collect_keys<'a>(value: &'a Value, keys: &mut Vec<&'a Value>) {
    match &value.node {
        ValueKind::Bucket { key, .. } | ValueKind::Split { key: Some(key), .. } => {
            if !keys.iter().any(|k| k.node == key.node) {
                keys.push(key);
            }
            collect_keys(key, keys);
        }
        _ => {}
    }
}

fn literals(literal: &Literal) -> Vec<&Literal> {
    match &literal.node {
        LiteralKind::List(items) => items.iter().collect(),
        _ => vec![literal],
    }
}

/// The literal as a value: the edge of `op literal` (for a regex, a short string it matches).
fn edge(literal: &Literal, op: Op) -> Option<Json> {
    Some(match &literal.node {
        LiteralKind::Str(s) if matches!(op, Op::Match | Op::NotMatch) => {
            Json::from(Pattern::new(s).ok()?.example()?)
        }
        LiteralKind::Str(s) => Json::from(s.as_str()),
        LiteralKind::Num(n) => number(*n),
        LiteralKind::Version(v) => Json::from(v.to_string()),
        LiteralKind::Bool(b) => Json::Bool(*b),
        LiteralKind::List(_) | LiteralKind::Invalid => return None,
    })
}

/// Whole numbers as integers, so a header reads `30`, not `30.0`.
fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// A value for which `op literal` holds.
fn satisfying(literal: &Literal, op: Op) -> Option<Json> {
    let step = match op {
        Op::Gt => 1,
        Op::Lt => -1,
        _ => return edge(literal, op),
    };
    Some(match &literal.node {
        LiteralKind::Num(n) => number(n + f64::from(step)),
        LiteralKind::Version(v) if step > 0 => Json::from(
            semver::Version::new(v.major, v.minor, v.patch.saturating_add(1)).to_string(),
        ),
        LiteralKind::Version(v) => {
            let (major, minor, patch) = match (v.major, v.minor, v.patch) {
                (major, minor, patch) if patch > 0 => (major, minor, patch - 1),
                (major, minor, _) if minor > 0 => (major, minor - 1, 0),
                (major, _, _) => (major.checked_sub(1)?, 0, 0),
            };
            Json::from(semver::Version::new(major, minor, patch).to_string())
        }
        _ => return edge(literal, op),
    })
}

/// A value for which the negated test `op literal` holds: present, and not the literal (nor,
/// for `!~`, anything the regex matches).
fn other(literal: &Literal, op: Op) -> Option<Json> {
    let candidates = ["other", "x", "0", "~"];
    match (&literal.node, op) {
        (LiteralKind::Str(s), Op::NotMatch) => {
            let p = Pattern::new(s).ok()?;
            candidates
                .iter()
                .find(|c| !p.is_match(c))
                .map(|c| Json::from(*c))
        }
        (LiteralKind::Str(s), _) => Json::from(format!("not-{s}")).into(),
        (LiteralKind::Num(n), _) => Some(number(n + 1.0)),
        (LiteralKind::Bool(b), _) => Some(Json::Bool(!b)),
        (LiteralKind::Version(v), _) => Some(Json::from(
            semver::Version::new(v.major, v.minor, v.patch.saturating_add(1)).to_string(),
        )),
        _ => None,
    }
}
/// The fact that makes `value` read as `v` (claims keep its JSON type; text sources get its
/// text).
fn fact_for(value: &Value, v: Json) -> Option<Fact> {
    let text = match &v {
        Json::String(s) => s.clone(),
        Json::Null => return None,
        other => other.to_string(),
    };
    Some(match &value.node {
        ValueKind::Header(name) => Fact::Header(name.clone(), text),
        ValueKind::Query(name) => Fact::Query(name.clone(), text),
        ValueKind::Cookie(name) => Fact::Cookie(name.clone(), text),
        ValueKind::Token(path) if path.len() > MAX_CLAIM_DEPTH => return None,
        ValueKind::Token(path) => Fact::Claim(path.clone(), v),
        ValueKind::Path if text.starts_with('/') => Fact::Path(text),
        ValueKind::Path => Fact::Path(format!("/{text}")),
        ValueKind::Method => Fact::Method(text),
        ValueKind::Host => Fact::Host(text),
        ValueKind::SourceIp => {
            Fact::SourceIp(text.split('/').next().unwrap_or_default().to_string())
        }
        ValueKind::Baggage(key) => Fact::Baggage(key.clone(), text),
        ValueKind::Bucket { .. }
        | ValueKind::Split { .. }
        | ValueKind::Visitor
        | ValueKind::Invalid => return None,
    })
}

//! Requests to try a config on when no real traffic is at hand: synthetic users, which spread
//! over every split and bucket as real users would, and requests built from the literals the
//! rules compare against, which reach the rules a random user never would (a header, a cookie,
//! a claim, a path).

use super::request::{RequestLine, encode, request_id};
use crate::config::FilterConfig;
use crate::lang::ast::{Expr, Literal, LiteralKind, Op, Value, ValueKind};
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

fn set_claim(claims: &mut Json, path: &[String], value: Json) {
    let Some((first, rest)) = path.split_first() else {
        *claims = value;
        return;
    };
    if !claims.is_object() {
        *claims = Json::Object(Default::default());
    }
    if let Json::Object(map) = claims {
        let slot = map.entry(first.clone()).or_insert(Json::Null);
        set_claim(slot, rest, value);
    }
}

/// `users` synthetic users (`x-user-id: user-1` … and the same id in every other source a split
/// or bucket hashes), then requests from the program's literals: one per rule with a value for
/// each of its comparisons, and one per distinct value alone. With `keep`, one request per tag
/// arriving with that color. Every request has an `x-request-id`, as Envoy gives it.
pub fn sample(config: &FilterConfig, users: u64) -> Vec<RequestLine> {
    let program = crate::lang::parse(&config.rules);
    let mut keys: Vec<&Value> = Vec::new();
    let mut per_rule: Vec<Vec<Vec<Fact>>> = Vec::new();
    for rule in &program.rules {
        let mut facts = Vec::new();
        if let Some(cond) = &rule.condition {
            walk(cond, &mut facts, &mut keys);
        }
        per_rule.push(facts);
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
    for comparisons in &per_rule {
        if comparisons.len() > 1 {
            let mut r = RequestLine::default();
            for fact in comparisons
                .iter()
                .filter_map(|alternatives| alternatives.first())
            {
                fact.apply(&mut r);
            }
            add(r);
        }
    }
    for fact in per_rule.iter().flatten().flatten() {
        let mut r = RequestLine::default();
        fact.apply(&mut r);
        add(r);
    }
    if config.keep {
        let tags = config
            .program
            .rules
            .iter()
            .map(|r| &r.tag)
            .chain(&config.program.default);
        for tag in tags {
            let mut r = RequestLine::default();
            r.headers
                .push((config.header.as_str().to_string(), tag.as_str().to_string()));
            add(r);
        }
    }
    for (n, mut r) in (users + 1..).zip(made) {
        r.headers
            .push((crate::lang::REQUEST_ID.to_string(), request_id(n)));
        out.push(r);
    }
    out
}

/// Collects, for each comparison and `exists`, the facts that could satisfy it (one list per
/// comparison, alternatives for a list literal), and the keys splits and buckets hash.
fn walk<'a>(expr: &'a Expr, facts: &mut Vec<Vec<Fact>>, keys: &mut Vec<&'a Value>) {
    match expr {
        Expr::Or(terms) | Expr::And(terms) => {
            for t in terms {
                walk(t, facts, keys);
            }
        }
        Expr::Not(inner) => walk(inner, facts, keys),
        Expr::Exists(value) => {
            collect_keys(value, keys);
            if let Some(f) = fact_for(value, Json::from("1")) {
                facts.push(vec![f]);
            }
        }
        Expr::Compare { value, op, literal } => {
            collect_keys(value, keys);
            let alternatives: Vec<Fact> = literals(literal)
                .into_iter()
                .filter_map(|l| example(l, op.node))
                .filter_map(|v| fact_for(value, v))
                .collect();
            if !alternatives.is_empty() {
                facts.push(alternatives);
            }
        }
        Expr::Bare(value) => collect_keys(value, keys),
        Expr::Invalid => {}
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

/// A value that meets `op literal`, or at least sits on its edge: the literal itself, or for a
/// regex, its text when it is a plain literal between optional anchors.
fn example(literal: &Literal, op: Op) -> Option<Json> {
    Some(match &literal.node {
        LiteralKind::Str(s) if matches!(op, Op::Match | Op::NotMatch) => {
            let s = s.strip_prefix('^').unwrap_or(s);
            let s = s.strip_suffix('$').unwrap_or(s);
            if s.chars().any(|c| "\\.+*?()|[]{}^$".contains(c)) {
                return None;
            }
            Json::from(s)
        }
        LiteralKind::Str(s) => Json::from(s.as_str()),
        // Whole numbers as integers, so a header reads `30`, not `30.0`.
        LiteralKind::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Json::from(*n as i64),
        LiteralKind::Num(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        LiteralKind::Version(v) => Json::from(v.to_string()),
        LiteralKind::Bool(b) => Json::Bool(*b),
        LiteralKind::List(_) | LiteralKind::Invalid => return None,
    })
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

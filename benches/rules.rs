//! Native micro-benchmarks of the rules engine (no proxy, no Wasm): `cargo bench --bench rules`.
//!
//! * `evaluate/*`: deciding the color of one request with the 20-rule program of the Envoy
//!   benchmark (bench/rules.tc, claims from an unverified bearer token), for a few representative
//!   requests of bench/mix.json and for the whole mix; a fresh `RequestFacts` per request, so
//!   decoding the query, cookies and token is included, as in the filter.
//! * `compile/*`: compiling the 20-rule program and a 1,000-rule one.
//!
//! BENCHMARKS.md explains how these relate to the Envoy figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value};
use std::hint::black_box;
use traffic_color::config::{ClaimSource, ClaimTrust};
use traffic_color::lang::{Program, compile};
use traffic_color::request::token_cache::TokenCache;
use traffic_color::request::{RequestFacts, SimpleRequest};

const RULES: &str = include_str!("../bench/rules.tc");
const MIX: &str = include_str!("../bench/mix.json");

/// The proxy's clock during the benchmark (2027-01-15), and the tokens' expiry (2033).
const NOW_NANOS: i64 = 1_800_000_000 * 1_000_000_000;
const EXP: i64 = 2_000_000_000;

fn program(source: &str) -> Program {
    compile(source).unwrap_or_else(|d| panic!("{}", traffic_color::lang::render_all(&d, source)))
}

/// An RS256-shaped bearer token carrying `claims` (nobody checks the signature here).
fn token(claims: &Map<String, Value>) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = claims.clone();
    claims.insert("iat".into(), Value::from(EXP - 86_400 * 365));
    claims.insert("exp".into(), Value::from(EXP));
    let sig: Vec<u8> = (0..256u32).map(|i| ((i * 73 + 11) % 256) as u8).collect();
    format!(
        "{}.{}.{}",
        e.encode(r#"{"alg":"RS256","typ":"JWT","kid":"bench-2026-11"}"#),
        e.encode(Value::Object(claims).to_string()),
        e.encode(sig)
    )
}

/// bench/mix.json as `(name, request, expected color)`, headers as Envoy presents them.
fn mix() -> Vec<(String, SimpleRequest, String)> {
    let doc: Value = serde_json::from_str(MIX).unwrap();
    let common = doc["common_headers"].as_object().unwrap();
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut headers = common.clone();
            if let Some(own) = r["headers"].as_object() {
                headers.extend(own.clone());
            }
            let mut req =
                SimpleRequest::new(r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
            for (k, v) in &headers {
                let k = if k == "host" {
                    ":authority"
                } else {
                    k.as_str()
                };
                req = req.with_header(k, v.as_str().unwrap());
            }
            if let Some(claims) = r["claims"].as_object() {
                req = req.with_header("authorization", &format!("Bearer {}", token(claims)));
            }
            req.now = Some(NOW_NANOS);
            req.source_address = Some("127.0.0.1:50000".into());
            (
                r["name"].as_str().unwrap().to_string(),
                req,
                r["expect"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn color<'p>(p: &'p Program, source: &ClaimSource, req: &SimpleRequest) -> Option<&'p str> {
    let facts = RequestFacts::new(req, &p.needs, source);
    p.decide(&facts).tag.map(|t| t.as_str())
}

fn evaluate(c: &mut Criterion) {
    let p = program(RULES);
    let source = ClaimSource::of(ClaimTrust::Unverified);
    let mix = mix();
    // The benchmark measures the right thing only if the colors are the expected ones.
    for (name, req, expect) in &mix {
        assert_eq!(color(&p, &source, req), Some(expect.as_str()), "{name}");
    }

    let mut g = c.benchmark_group("evaluate");
    for pick in [
        "canary header",              // rule 1: the cheapest decision
        "home, anonymous",            // all 20 rules, then the default; no token
        "static-ish page, logged in", // all 20 rules, then the default; a token, two buckets
        "blue tester",                // token claims + a regex on the query (rule 6)
        "search",                     // a bucket on a cookie (rule 17)
    ] {
        let (_, req, _) = mix.iter().find(|(n, _, _)| n == pick).unwrap();
        g.bench_with_input(BenchmarkId::new("20 rules", pick), req, |b, req| {
            b.iter(|| color(&p, &source, black_box(req)).map(str::len))
        });
    }
    g.throughput(Throughput::Elements(mix.len() as u64));
    g.bench_function(
        BenchmarkId::new("20 rules", format!("whole mix ({} requests)", mix.len())),
        |b| {
            b.iter(|| {
                mix.iter()
                    .map(|(_, req, _)| color(&p, &source, black_box(req)).map_or(0, str::len))
                    .sum::<usize>()
            })
        },
    );
    // As the filter runs: one token cache per worker, so a token sent again is not decoded again.
    let cache = TokenCache::new();
    g.bench_function(
        BenchmarkId::new(
            "20 rules",
            format!("whole mix ({} requests), token cache", mix.len()),
        ),
        |b| {
            b.iter(|| {
                mix.iter()
                    .map(|(_, req, _)| {
                        let facts = RequestFacts::new(black_box(req), &p.needs, &source)
                            .with_token_cache(&cache);
                        p.decide(&facts).tag.map_or(0, |t| t.as_str().len())
                    })
                    .sum::<usize>()
            })
        },
    );
    g.finish();
}

/// A 1,000-rule program: the 20 rules of bench/rules.tc, 50 times over with distinct names,
/// literals and tags, and one default.
fn thousand_rules() -> String {
    let body: Vec<&str> = RULES.lines().filter(|l| l.starts_with("match ")).collect();
    let mut out = String::new();
    for i in 0..50 {
        for line in &body {
            let line = line
                .replacen("match \"", &format!("match \"r{i}-"), 1)
                .replace("\"canary\"", &format!("\"canary-{i}\""))
                .replace("\"true\"", &format!("\"true-{i}\""))
                .replace("<= 20", &format!("<= {}", 1 + i % 20))
                .replace("/api/v3/", &format!("/api/v3/{i}/"));
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("default -> \"stable\"\n");
    out
}

fn compiling(c: &mut Criterion) {
    let big = thousand_rules();
    assert_eq!(program(&big).rules.len(), 1000);
    let mut g = c.benchmark_group("compile");
    g.bench_function("20 rules", |b| {
        b.iter(|| program(black_box(RULES)).rules.len())
    });
    g.sample_size(20);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 rules", |b| {
        b.iter(|| program(black_box(&big)).rules.len())
    });
    g.finish();
}

criterion_group!(benches, evaluate, compiling);
criterion_main!(benches);

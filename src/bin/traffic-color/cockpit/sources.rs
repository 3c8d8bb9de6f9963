//! Where the live numbers come from: a local Envoy's admin endpoint (the filter's counters and
//! histograms, turned into rates over a short sliding window here) or Prometheus (the series
//! prometheus/traffic-color.rules.yaml records). Either one failing makes the numbers stale,
//! never the server fail.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Error ratio and p95 are computed over this much history (rates over the last poll).
pub const WINDOW: Duration = Duration::from_secs(10);

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus text exposition format (what Envoy's `/stats/prometheus` serves):
/// comments and lines it cannot read are skipped.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let end = loop {
            // skip separators
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let &(start, c) = chars.peek()?;
            if c == '}' {
                break start + 1;
            }
            let mut key_end = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    key_end = i;
                    break;
                }
            }
            let key = r.get(start..key_end)?.trim().to_string();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
        };
        rest = r.get(end..)?;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// What one poll of Envoy's admin endpoint says, per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub requests: BTreeMap<String, f64>,
    /// (rule, name) -> hits
    pub rules: BTreeMap<(String, Option<String>), f64>,
    /// color -> (all responses, 5xx responses)
    pub responses: BTreeMap<String, (f64, f64)>,
    /// color -> cumulative buckets (le, count), ascending
    pub buckets: BTreeMap<String, Vec<(f64, f64)>>,
    pub unmatched: f64,
    pub stripped: f64,
    /// Hashes whose `traffic_color_config_info` gauge is 1.
    pub active_hashes: BTreeSet<String>,
}

impl Snapshot {
    pub fn from_samples(samples: &[Sample]) -> Snapshot {
        let mut s = Snapshot::default();
        for x in samples {
            let color = || x.label("color").unwrap_or("unset").to_string();
            match x.name.as_str() {
                "traffic_color_requests_total" => {
                    *s.requests.entry(color()).or_default() += x.value;
                }
                "traffic_color_rule_hits_total" => {
                    let rule = x.label("rule").unwrap_or("?").to_string();
                    let name = x.label("name").map(str::to_string);
                    *s.rules.entry((rule, name)).or_default() += x.value;
                }
                "traffic_color_responses_total" => {
                    let e = s.responses.entry(color()).or_default();
                    e.0 += x.value;
                    if x.label("class") == Some("5xx") {
                        e.1 += x.value;
                    }
                }
                "traffic_color_request_duration_milliseconds_bucket" => {
                    let Some(le) = x.label("le").and_then(|l| match l {
                        "+Inf" => Some(f64::INFINITY),
                        l => l.parse::<f64>().ok(),
                    }) else {
                        continue;
                    };
                    let b = s.buckets.entry(color()).or_default();
                    match b.iter_mut().find(|(l, _)| *l == le) {
                        Some(slot) => slot.1 += x.value,
                        None => b.push((le, x.value)),
                    }
                }
                "traffic_color_unmatched_total" => s.unmatched += x.value,
                "traffic_color_client_color_stripped_total" => s.stripped += x.value,
                "traffic_color_config_info" if x.value >= 1.0 => {
                    if let Some(h) = x.label("hash") {
                        s.active_hashes.insert(h.to_string());
                    }
                }
                _ => {}
            }
        }
        for b in s.buckets.values_mut() {
            b.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        s
    }
}

/// A counter's growth; a counter that went down was reset (Envoy restarted): count from 0.
fn delta(new: f64, old: f64) -> f64 {
    if new >= old { new - old } else { new }
}

/// The quantile `q` of a cumulative histogram, interpolated linearly within the bucket
/// (Prometheus' histogram_quantile); None without observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                // Above the highest finite bound: that bound is all one can say.
                return Some(prev.0);
            }
            let in_bucket = count - prev.1;
            let frac = if in_bucket > 0.0 {
                (rank - prev.1) / in_bucket
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    None
}

/// Turns successive snapshots into the `stats` event: rates from the last two polls, error
/// ratio and p95 over [`WINDOW`].
#[derive(Default)]
pub struct Window {
    history: VecDeque<(Instant, Snapshot)>,
}

impl Window {
    pub fn push(&mut self, at: Instant, s: Snapshot) {
        self.history.push_back((at, s));
        while self
            .history
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > WINDOW + Duration::from_millis(500))
        {
            self.history.pop_front();
        }
    }

    /// The stats body (`colors`, `rules`, `unmatched_per_s`, `stripped_per_s`) and the active
    /// hash; the caller adds time, staleness and when the hash was loaded.
    pub fn stats(&self) -> (Map<String, Value>, Option<String>) {
        let mut out = Map::new();
        let Some((t_now, now)) = self.history.back() else {
            out.insert("colors".into(), json!({}));
            out.insert("rules".into(), json!([]));
            out.insert("unmatched_per_s".into(), json!(0.0));
            out.insert("stripped_per_s".into(), json!(0.0));
            return (out, None);
        };
        let last = self.history.len().checked_sub(2).map(|i| &self.history[i]);
        let first = self.history.front();
        let per_s = |get: &dyn Fn(&Snapshot) -> f64| -> f64 {
            match last {
                Some((t, s)) => {
                    let dt = t_now.duration_since(*t).as_secs_f64();
                    if dt > 0.0 {
                        delta(get(now), get(s)) / dt
                    } else {
                        0.0
                    }
                }
                None => 0.0,
            }
        };
        let rates: BTreeMap<&String, f64> = now
            .requests
            .keys()
            .map(|c| (c, per_s(&|s| s.requests.get(c).copied().unwrap_or(0.0))))
            .collect();
        let all: f64 = rates.values().sum();
        let mut colors = Map::new();
        for (color, total) in &now.requests {
            let rps = rates.get(color).copied().unwrap_or(0.0);
            let (mut error_ratio, mut p95) = (Value::Null, Value::Null);
            if let Some((_, old)) = first.filter(|_| self.history.len() > 1) {
                let (n1, e1) = now.responses.get(color).copied().unwrap_or_default();
                let (n0, e0) = old.responses.get(color).copied().unwrap_or_default();
                let n = delta(n1, n0);
                if n > 0.0 {
                    error_ratio = json!(delta(e1, e0) / n);
                }
                if let Some(b1) = now.buckets.get(color) {
                    let b0 = old.buckets.get(color);
                    let d: Vec<(f64, f64)> = b1
                        .iter()
                        .map(|&(le, c)| {
                            let before = b0
                                .and_then(|b| b.iter().find(|(l, _)| *l == le))
                                .map_or(0.0, |x| x.1);
                            (le, delta(c, before))
                        })
                        .collect();
                    if let Some(q) = quantile(0.95, &d) {
                        p95 = json!(q);
                    }
                }
            }
            colors.insert(
                color.clone(),
                json!({
                    "rps": rps,
                    "share": if all > 0.0 { rps / all } else { 0.0 },
                    "error_ratio": error_ratio,
                    "p95_ms": p95,
                    "total": total.round() as u64,
                }),
            );
        }
        let rules: Vec<Value> = now
            .rules
            .iter()
            .map(|((rule, name), total)| {
                let key = (rule.clone(), name.clone());
                json!({
                    "rule": rule,
                    "name": name,
                    "per_s": per_s(&|s| s.rules.get(&key).copied().unwrap_or(0.0)),
                    "total": total.round() as u64,
                })
            })
            .collect();
        out.insert("colors".into(), Value::Object(colors));
        out.insert("rules".into(), Value::Array(rules));
        out.insert("unmatched_per_s".into(), json!(per_s(&|s| s.unmatched)));
        out.insert("stripped_per_s".into(), json!(per_s(&|s| s.stripped)));
        // One VM per config: a single active hash. Several (a config mid-swap) -> the newest is
        // unknown here, so none is claimed.
        let hash = (now.active_hashes.len() == 1)
            .then(|| now.active_hashes.iter().next().cloned())
            .flatten();
        (out, hash)
    }
}

/// Prometheus' `/api/v1/query` answer as (labels, value) pairs; NaN and ±Inf are None.
pub fn parse_query(body: &str) -> Result<QueryResult, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "query failed: {}",
            v["error"].as_str().unwrap_or("no error message")
        ));
    }
    let result = v["data"]["result"]
        .as_array()
        .ok_or("no data.result in the answer")?;
    Ok(result
        .iter()
        .map(|r| {
            let labels = r["metric"].as_object().cloned().unwrap_or_default();
            let value = r["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|x| x.is_finite());
            (labels, value)
        })
        .collect())
}

/// The PromQL the Prometheus source asks, keyed by what it fills in.
pub const PROM_QUERIES: &[(&str, &str)] = &[
    ("rps", "color:traffic_color_requests:rate5m"),
    ("share", "color:traffic_color_requests:share5m"),
    ("error_ratio", "color:traffic_color_error_ratio:rate5m"),
    (
        "p95_ms",
        "color:traffic_color_request_duration_milliseconds:p95_5m",
    ),
    ("total", "sum by (color) (traffic_color_requests_total)"),
    (
        "rule_rate",
        "sum by (rule, name) (rate(traffic_color_rule_hits_total[5m]))",
    ),
    (
        "rule_total",
        "sum by (rule, name) (traffic_color_rule_hits_total)",
    ),
    ("unmatched", "sum(rate(traffic_color_unmatched_total[5m]))"),
    (
        "stripped",
        "sum(rate(traffic_color_client_color_stripped_total[5m]))",
    ),
    ("hash", "count by (hash) (traffic_color_config_info == 1)"),
];

/// Each series' labels and value.
pub type QueryResult = Vec<(Map<String, Value>, Option<f64>)>;

/// Assembles the stats body from the answers to [`PROM_QUERIES`] (same order).
pub fn prometheus_stats(answers: &[(&str, QueryResult)]) -> (Map<String, Value>, Option<String>) {
    let get = |key: &str| {
        answers
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r.as_slice())
            .unwrap_or(&[])
    };
    let label =
        |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let mut colors: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for key in ["rps", "share", "error_ratio", "p95_ms", "total"] {
        for (labels, v) in get(key) {
            let Some(color) = label(labels, "color") else {
                continue;
            };
            let entry = colors.entry(color).or_insert_with(|| {
                let mut m = Map::new();
                m.insert("rps".into(), json!(0.0));
                m.insert("share".into(), json!(0.0));
                m.insert("error_ratio".into(), Value::Null);
                m.insert("p95_ms".into(), Value::Null);
                m.insert("total".into(), json!(0));
                m
            });
            let value = match (key, v) {
                ("total", Some(x)) => json!(x.round() as u64),
                (_, Some(x)) => json!(x),
                ("rps" | "share", None) => json!(0.0),
                ("total", None) => json!(0),
                (_, None) => Value::Null,
            };
            entry.insert(key.into(), value);
        }
    }
    let mut rules: BTreeMap<(String, Option<String>), (f64, u64)> = BTreeMap::new();
    for (labels, v) in get("rule_rate") {
        let k = (
            label(labels, "rule").unwrap_or_default(),
            label(labels, "name"),
        );
        rules.entry(k).or_default().0 = v.unwrap_or(0.0);
    }
    for (labels, v) in get("rule_total") {
        let k = (
            label(labels, "rule").unwrap_or_default(),
            label(labels, "name"),
        );
        rules.entry(k).or_default().1 = v.unwrap_or(0.0).round() as u64;
    }
    let scalar = |key: &str| get(key).first().and_then(|(_, v)| *v).unwrap_or(0.0);
    let hashes: Vec<String> = get("hash")
        .iter()
        .filter_map(|(l, _)| label(l, "hash"))
        .collect();
    let mut out = Map::new();
    out.insert(
        "colors".into(),
        Value::Object(
            colors
                .into_iter()
                .map(|(k, v)| (k, Value::Object(v)))
                .collect(),
        ),
    );
    out.insert(
        "rules".into(),
        Value::Array(
            rules
                .into_iter()
                .map(|((rule, name), (per_s, total))| {
                    json!({"rule": rule, "name": name, "per_s": per_s, "total": total})
                })
                .collect(),
        ),
    );
    out.insert("unmatched_per_s".into(), json!(scalar("unmatched")));
    out.insert("stripped_per_s".into(), json!(scalar("stripped")));
    // Proxies on different configs (a rollout in progress): no single hash to show.
    let hash = (hashes.len() == 1).then(|| hashes[0].clone());
    (out, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVOY: &str = r#"# TYPE traffic_color_requests_total counter
traffic_color_requests_total{color="canary"} 10
traffic_color_requests_total{color="stable"} 30
traffic_color_rule_hits_total{rule="1",name="testers"} 10
traffic_color_rule_hits_total{rule="default"} 30
traffic_color_responses_total{color="canary",class="2xx"} 8
traffic_color_responses_total{color="canary",class="5xx"} 2
traffic_color_responses_total{color="stable",class="2xx"} 30
traffic_color_unmatched_total{} 30
traffic_color_client_color_stripped_total{} 4
traffic_color_config_info{hash="aa"} 0
traffic_color_config_info{hash="bb"} 1
# TYPE traffic_color_request_duration_milliseconds histogram
traffic_color_request_duration_milliseconds_bucket{color="canary",le="1"} 0
traffic_color_request_duration_milliseconds_bucket{color="canary",le="10"} 10
traffic_color_request_duration_milliseconds_bucket{color="canary",le="+Inf"} 10
"#;

    #[test]
    fn parses_envoy_text() {
        let samples = parse_prometheus(ENVOY);
        assert_eq!(samples.len(), 14);
        assert_eq!(
            samples[1].labels,
            vec![("color".to_string(), "stable".to_string())]
        );
        let s = Snapshot::from_samples(&samples);
        assert_eq!(s.requests["canary"], 10.0);
        assert_eq!(s.responses["canary"], (10.0, 2.0));
        assert_eq!(s.rules[&("default".into(), None)], 30.0);
        assert_eq!(s.rules[&("1".into(), Some("testers".into()))], 10.0);
        assert_eq!(s.unmatched, 30.0);
        assert_eq!(s.stripped, 4.0);
        assert_eq!(s.active_hashes.iter().collect::<Vec<_>>(), vec!["bb"]);
        assert_eq!(s.buckets["canary"].last(), Some(&(f64::INFINITY, 10.0)));
    }

    #[test]
    fn labels_with_escapes_and_junk_lines() {
        let s = parse_prometheus("a{x=\"q\\\"uote\",y=\"\"} 1.5\nnot a sample\nb 2 1700000000\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label("x"), Some("q\"uote"));
        assert_eq!(s[0].label("y"), Some(""));
        assert_eq!(s[1].value, 2.0);
    }

    fn snap(canary: f64, stable: f64, c5xx: f64, fast: f64, slow: f64) -> Snapshot {
        let text = format!(
            "traffic_color_requests_total{{color=\"canary\"}} {canary}\n\
             traffic_color_requests_total{{color=\"stable\"}} {stable}\n\
             traffic_color_responses_total{{color=\"canary\",class=\"2xx\"}} {}\n\
             traffic_color_responses_total{{color=\"canary\",class=\"5xx\"}} {c5xx}\n\
             traffic_color_request_duration_milliseconds_bucket{{color=\"canary\",le=\"10\"}} {fast}\n\
             traffic_color_request_duration_milliseconds_bucket{{color=\"canary\",le=\"100\"}} {}\n\
             traffic_color_request_duration_milliseconds_bucket{{color=\"canary\",le=\"+Inf\"}} {}\n",
            canary - c5xx,
            fast + slow,
            fast + slow
        );
        Snapshot::from_samples(&parse_prometheus(&text))
    }

    #[test]
    fn rates_shares_errors_and_p95_from_deltas() {
        let t0 = Instant::now();
        let mut w = Window::default();
        w.push(t0, snap(100.0, 100.0, 0.0, 100.0, 0.0));
        w.push(
            t0 + Duration::from_secs(1),
            snap(130.0, 190.0, 3.0, 110.0, 20.0),
        );
        let (s, _) = w.stats();
        let canary = &s["colors"]["canary"];
        assert!((canary["rps"].as_f64().unwrap() - 30.0).abs() < 1e-9);
        assert!((canary["share"].as_f64().unwrap() - 0.25).abs() < 1e-9);
        assert!((canary["error_ratio"].as_f64().unwrap() - 0.1).abs() < 1e-9);
        // 30 new observations, 10 under 10 ms and 20 in (10, 100]: the 95th is in the slow bucket.
        let p95 = canary["p95_ms"].as_f64().unwrap();
        assert!(p95 > 10.0 && p95 <= 100.0, "{p95}");
        assert_eq!(canary["total"], 130);
        assert!((s["colors"]["stable"]["rps"].as_f64().unwrap() - 90.0).abs() < 1e-9);
        assert!(s["colors"]["stable"]["error_ratio"].is_null());
    }

    #[test]
    fn a_reset_counter_counts_from_zero_and_old_history_drops_out() {
        let t0 = Instant::now();
        let mut w = Window::default();
        w.push(t0, snap(1000.0, 0.0, 0.0, 0.0, 0.0));
        w.push(t0 + Duration::from_secs(2), snap(20.0, 0.0, 0.0, 0.0, 0.0));
        let (s, _) = w.stats();
        assert!((s["colors"]["canary"]["rps"].as_f64().unwrap() - 10.0).abs() < 1e-9);
        w.push(t0 + Duration::from_secs(30), snap(20.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(w.history.len(), 1);
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        assert_eq!(quantile(0.5, &[(10.0, 50.0), (20.0, 100.0)]), Some(10.0));
        assert_eq!(quantile(0.75, &[(10.0, 50.0), (20.0, 100.0)]), Some(15.0));
        assert_eq!(quantile(0.95, &[(10.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.95, &[(10.0, 1.0), (f64::INFINITY, 100.0)]),
            Some(10.0)
        );
    }

    #[test]
    fn prometheus_answers_make_the_same_shape() {
        let q = |body: &str| parse_query(body).unwrap();
        let answers = vec![
            (
                "rps",
                q(
                    r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"color":"canary"},"value":[1,"2.5"]}]}}"#,
                ),
            ),
            (
                "p95_ms",
                q(
                    r#"{"status":"success","data":{"result":[{"metric":{"color":"canary"},"value":[1,"NaN"]}]}}"#,
                ),
            ),
            (
                "hash",
                q(
                    r#"{"status":"success","data":{"result":[{"metric":{"hash":"ab"},"value":[1,"3"]}]}}"#,
                ),
            ),
        ];
        let (s, hash) = prometheus_stats(&answers);
        assert_eq!(s["colors"]["canary"]["rps"], 2.5);
        assert!(s["colors"]["canary"]["p95_ms"].is_null());
        assert_eq!(hash.as_deref(), Some("ab"));
        assert!(parse_query(r#"{"status":"error","error":"bad"}"#).is_err());
        assert!(parse_query("<html>").is_err());
    }
}

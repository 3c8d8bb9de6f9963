//! What the filter does to one request, decided without the host: the color, what decided it,
//! the edits to the color header and to `baggage`, and the counters to bump. The filter, the
//! command-line tool, the tests and the fuzz targets all call [`Verdict::for_request`], so none
//! of them can disagree about `keep`, stripping or baggage; the filter only reads the host,
//! [applies](Verdict::apply) the verdict and logs.

use crate::config::FilterConfig;
use crate::lang::eval::DecidedBy;
use crate::lang::program::{Program, Tag};
use crate::request::token_cache::TokenCache;
use crate::request::{RequestFacts, RequestSource, baggage};
use std::fmt;

/// Why a request has the color it leaves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The rules decided (a rule, the default, or nothing).
    Rules(DecidedBy),
    /// `keep`: an earlier, trusted hop set one of the program's tags.
    Kept(KeptFrom),
}

/// Where a kept color was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptFrom {
    Header,
    Baggage,
}

/// The one spelling of "what decided", in the debug header, `explain`, `simulate` and logs.
impl fmt::Display for Decided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decided::Rules(by) => by.fmt(f),
            Decided::Kept(KeptFrom::Header) => f.write_str("kept from header"),
            Decided::Kept(KeptFrom::Baggage) => f.write_str("kept from baggage"),
        }
    }
}

/// What happens to the color header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorEdit<'c> {
    /// The header goes on as it arrived: kept, or none arrived and none is set.
    Leave,
    /// Every incoming value replaced by this one.
    Set(&'c Tag),
    /// Every incoming value removed, nothing set.
    Remove,
}

/// What happens to the `baggage` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaggageEdit {
    /// No `baggage` key configured, or the header already says what it should.
    Leave,
    /// Every `baggage` header replaced by this one.
    Set(String),
    /// Every `baggage` header removed: no member is left.
    Remove,
}

/// A counter a verdict bumps (see [`crate::metrics::Names`] for the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter<'c> {
    /// `requests_total{color}`; `None` is `unset`.
    Color(Option<&'c Tag>),
    /// `rule_hits_total{rule}`: a rule's 1-based index, or the default.
    RuleHit(DecidedBy),
    Unmatched,
    Stripped,
    Kept,
}

/// The decision for one request and everything the filter does because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'c> {
    /// The color the request leaves with; `None`: no color header.
    pub color: Option<&'c Tag>,
    pub decided: Decided,
    /// The color header the request arrived with (its first value, if it was text).
    pub incoming: Option<String>,
    /// A color header arrived (text or not) and is not kept: it is removed or replaced.
    pub stripped: bool,
    pub color_edit: ColorEdit<'c>,
    pub baggage_edit: BaggageEdit,
    /// Our baggage member was due but the header was full: the header goes on without any
    /// member of that key (never with the one that arrived).
    pub baggage_full: bool,
    /// With `visitor` configured: the visitor id the rules saw, and whether it was minted.
    pub visitor: Option<Visitor>,
}

/// An anonymous visitor's sticky id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// 32 lower-case hex digits.
    pub id: String,
    /// Minted for this request (the cookie was missing or malformed): the response carries
    /// [`Verdict::set_cookie`].
    pub minted: bool,
}

/// A visitor id as minted: anything else in the cookie is replaced, never an error.
fn is_visitor_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new visitor id: a hash of the request id Envoy generated at the edge (random, and the
/// same on every hop), or, without one, of the client address and the clock.
fn mint_visitor<R: RequestSource>(request: &R) -> String {
    let seed = match request.header(crate::lang::REQUEST_ID) {
        Some(id) => id.into_owned(),
        None => format!(
            "{}|{}",
            request.source_address().unwrap_or_default(),
            request.now().unwrap_or_default()
        ),
    };
    let hash = murmur3::murmur3_x64_128(&mut seed.as_bytes(), 0).unwrap_or(0);
    format!("{hash:032x}")
}

/// An edit the host refused (a header, or a filter-state key), with the host's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditFailed<'a> {
    pub header: &'a str,
    pub status: u32,
}

/// The writes a verdict needs from a proxy. The filter implements it over proxy-wasm calls;
/// tests implement it over a header list.
///
/// No route refresh is asked for: Envoy re-selects the route by itself when a module of ABI
/// 0.2.1 (what the Rust SDK exports) changes a request header, on every Envoy the end-to-end
/// suite runs (1.36, 1.38, 1.40), so an explicit `clear_route_cache` would be a wasted host
/// call on every request.
pub trait Proxy {
    /// Replaces every value of a request header (lower-case `name`) by `value`, or removes
    /// them all for `None`; the error is the host's status.
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), u32>;
    fn count(&mut self, counter: Counter<'_>);
    /// Stores `value` in the request's filter state under `key` (Envoy: `wasm.<key>`).
    fn publish(&mut self, key: &str, value: &str) -> Result<(), u32>;
}

/// Filter-state keys, with `filter_state` on: access logs read them as
/// `%FILTER_STATE(wasm.traffic_color.color:PLAIN)%`.
pub const STATE_COLOR: &str = "traffic_color.color";
pub const STATE_DECIDED: &str = "traffic_color.decided";

impl<'c> Verdict<'c> {
    /// The verdict for a request under `config`. `tokens` keeps decoded tokens across requests
    /// (the filter has one per worker).
    pub fn for_request<R: RequestSource>(
        config: &'c FilterConfig,
        request: &R,
        tokens: Option<&TokenCache>,
    ) -> Verdict<'c> {
        let program = &config.program;
        let incoming = request
            .header(config.header.as_str())
            .map(|v| v.into_owned());
        let arrived = incoming.is_some() || request.has_header(config.header.as_str());
        let wants_baggage = config.baggage.is_some();
        let baggage_in = wants_baggage
            .then(|| baggage::join(&request.header_values("baggage")).map(|b| b.into_owned()))
            .flatten();

        let kept = if config.keep {
            let from_header = incoming
                .as_deref()
                .and_then(|v| known_tag(program, v))
                .map(|t| (t, KeptFrom::Header));
            from_header.or_else(|| {
                let key = config.baggage.as_ref()?;
                let value = baggage::member(baggage_in.as_deref()?, key.as_str())?;
                Some((known_tag(program, &value)?, KeptFrom::Baggage))
            })
        } else {
            None
        };
        let visitor = config.visitor.as_ref().map(|cookie| {
            let values = request.header_values("cookie");
            let sent =
                crate::request::cookie::first_values(&values, std::slice::from_ref(&cookie.name))
                    .pop()
                    .flatten()
                    .filter(|id| is_visitor_id(id));
            match sent {
                Some(id) => Visitor { id, minted: false },
                None => Visitor {
                    id: mint_visitor(request),
                    minted: true,
                },
            }
        });
        let (color, decided) = match kept {
            Some((tag, from)) => (Some(tag), Decided::Kept(from)),
            None => {
                let facts = RequestFacts::new(request, &program.needs, &config.claims)
                    .with_visitor(visitor.as_ref().map(|v| v.id.as_str()));
                let facts = match tokens {
                    Some(cache) => facts.with_token_cache(cache),
                    None => facts,
                };
                let d = program.decide(&facts);
                (d.tag, Decided::Rules(d.by))
            }
        };
        let kept_header = decided == Decided::Kept(KeptFrom::Header);
        let color_edit = match color {
            _ if kept_header => ColorEdit::Leave,
            Some(tag) => ColorEdit::Set(tag),
            None if arrived => ColorEdit::Remove,
            None => ColorEdit::Leave,
        };
        let (baggage_edit, baggage_full) = match &config.baggage {
            None => (BaggageEdit::Leave, false),
            Some(key) => {
                let want = color.map(Tag::as_str);
                let out = baggage::rewrite(baggage_in.as_deref(), key.as_str(), want);
                let edit = if Some(out.header.as_str()) == baggage_in.as_deref()
                    || (out.header.is_empty() && baggage_in.is_none())
                {
                    BaggageEdit::Leave
                } else if out.header.is_empty() {
                    BaggageEdit::Remove
                } else {
                    BaggageEdit::Set(out.header)
                };
                (edit, want.is_some() && !out.added)
            }
        };
        Verdict {
            color,
            decided,
            stripped: arrived && !kept_header,
            incoming,
            color_edit,
            baggage_edit,
            baggage_full,
            visitor,
        }
    }

    /// The response's `Set-Cookie` value when a visitor id was minted.
    pub fn set_cookie(&self, config: &FilterConfig) -> Option<String> {
        let visitor = self.visitor.as_ref().filter(|v| v.minted)?;
        Some(config.visitor.as_ref()?.set_cookie(&visitor.id))
    }

    /// Every counter this request bumps, each once.
    pub fn counters(&self) -> impl Iterator<Item = Counter<'c>> + use<'c> {
        let (rule, unmatched, kept) = match self.decided {
            Decided::Rules(by @ DecidedBy::Rule(_)) => (Some(Counter::RuleHit(by)), None, None),
            Decided::Rules(by @ DecidedBy::Default) => {
                (Some(Counter::RuleHit(by)), Some(Counter::Unmatched), None)
            }
            Decided::Rules(DecidedBy::Nothing) => (None, Some(Counter::Unmatched), None),
            Decided::Kept(_) => (None, None, Some(Counter::Kept)),
        };
        let stripped = self.stripped.then_some(Counter::Stripped);
        [
            Some(Counter::Color(self.color)),
            rule,
            unmatched,
            kept,
            stripped,
        ]
        .into_iter()
        .flatten()
    }

    /// Makes the edits and bumps the counters: one host write per header that changes. An
    /// edit the host refuses does not stop the others; the first refusal is returned for the log.
    pub fn apply<'a>(
        &self,
        config: &'a FilterConfig,
        proxy: &mut impl Proxy,
    ) -> Result<(), EditFailed<'a>> {
        for counter in self.counters() {
            proxy.count(counter);
        }
        let color = match self.color_edit {
            ColorEdit::Leave => None,
            ColorEdit::Set(tag) => Some(Some(tag.as_str())),
            ColorEdit::Remove => Some(None),
        };
        let baggage = match &self.baggage_edit {
            BaggageEdit::Leave => None,
            BaggageEdit::Set(value) => Some(Some(value.as_str())),
            BaggageEdit::Remove => Some(None),
        };
        let mut failed = None;
        for (header, value) in [(config.header.as_str(), color), ("baggage", baggage)] {
            if let Some(value) = value
                && let Err(status) = proxy.set_request_header(header, value)
            {
                failed.get_or_insert(EditFailed { header, status });
            }
        }
        if config.filter_state {
            let color = self.color.map_or(crate::metrics::UNSET, Tag::as_str);
            let decided = self.decided.to_string();
            for (key, value) in [(STATE_COLOR, color), (STATE_DECIDED, decided.as_str())] {
                if let Err(status) = proxy.publish(key, value) {
                    failed.get_or_insert(EditFailed {
                        header: key,
                        status,
                    });
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::SimpleRequest;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn config(extra: &str) -> FilterConfig {
        let json = format!(
            r#"{{"rules": "match {{ header[\"x-canary\"] == \"true\" }} -> \"canary\"\ndefault -> \"stable\""{extra}}}"#
        );
        FilterConfig::from_json(json.as_bytes()).unwrap()
    }

    fn request(canary: bool, incoming: Option<&str>, baggage: Option<&str>) -> SimpleRequest {
        let mut req = SimpleRequest::new("GET", "/");
        if canary {
            req = req.with_header("x-canary", "true");
        }
        if let Some(v) = incoming {
            req = req.with_header("x-version-route", v);
        }
        if let Some(b) = baggage {
            req = req.with_header("baggage", b);
        }
        req
    }

    fn run(
        c: &FilterConfig,
        canary: bool,
        incoming: Option<&str>,
        baggage: Option<&str>,
    ) -> (Option<String>, Decided) {
        let v = Verdict::for_request(c, &request(canary, incoming, baggage), None);
        (v.color.map(|t| t.as_str().to_string()), v.decided)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keep_policy() {
        let strip = config("");
        let keep = config(r#", "keep": true, "baggage": "tc""#);
        let rules = |by| Decided::Rules(by);
        // Default: an incoming color never survives.
        assert_eq!(
            run(&strip, false, Some("canary"), None),
            (Some("stable".into()), rules(DecidedBy::Default))
        );
        // keep: a known incoming tag is kept, even against the rules.
        assert_eq!(
            run(&keep, false, Some("canary"), None),
            (Some("canary".into()), Decided::Kept(KeptFrom::Header))
        );
        assert_eq!(
            run(&keep, true, Some("stable"), None),
            (Some("stable".into()), Decided::Kept(KeptFrom::Header))
        );
        // ... an unknown one is recomputed.
        assert_eq!(
            run(&keep, true, Some("evil"), None),
            (Some("canary".into()), rules(DecidedBy::Rule(1)))
        );
        // ... and baggage is the fallback when the header did not travel.
        assert_eq!(
            run(&keep, false, None, Some("a=b,tc=canary")),
            (Some("canary".into()), Decided::Kept(KeptFrom::Baggage))
        );
        assert_eq!(
            run(&keep, false, None, Some("tc=evil")),
            (Some("stable".into()), rules(DecidedBy::Default))
        );
        assert_eq!(
            run(&strip, false, None, Some("tc=canary")),
            (Some("stable".into()), rules(DecidedBy::Default))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn edits_and_counters() {
        let c = config(r#", "baggage": "tc""#);
        let v = Verdict::for_request(&c, &request(true, Some("stable"), Some("a=1")), None);
        assert!(v.stripped);
        assert_eq!(v.incoming.as_deref(), Some("stable"));
        assert!(matches!(v.color_edit, ColorEdit::Set(t) if t.as_str() == "canary"));
        assert_eq!(v.baggage_edit, BaggageEdit::Set("a=1,tc=canary".into()));
        assert_eq!(
            v.counters().collect::<Vec<_>>(),
            [
                Counter::Color(v.color),
                Counter::RuleHit(DecidedBy::Rule(1)),
                Counter::Stripped
            ]
        );
        // Nothing to change in baggage that already says it.
        let v = Verdict::for_request(&c, &request(true, None, Some("tc=canary")), None);
        assert_eq!(v.baggage_edit, BaggageEdit::Leave);
        assert!(!v.stripped);
        // No rule and no default: the header and our member go.
        let none = FilterConfig::from_json(
            br#"{"rules": "match { header[\"x-canary\"] == \"true\" } -> \"canary\"", "baggage": "tc"}"#,
        )
        .unwrap();
        let v = Verdict::for_request(
            &none,
            &request(false, Some("canary"), Some("tc=canary")),
            None,
        );
        assert_eq!(v.color, None);
        assert_eq!(v.color_edit, ColorEdit::Remove);
        assert_eq!(v.baggage_edit, BaggageEdit::Remove);
        assert_eq!(
            v.counters().collect::<Vec<_>>(),
            [Counter::Color(None), Counter::Unmatched, Counter::Stripped]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_kept_color_is_counted_as_kept_only() {
        let c = config(r#", "keep": true"#);
        let v = Verdict::for_request(&c, &request(false, Some("canary"), None), None);
        assert_eq!(v.color_edit, ColorEdit::Leave);
        assert_eq!(
            v.counters().collect::<Vec<_>>(),
            [Counter::Color(v.color), Counter::Kept]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_visitor_without_a_valid_cookie_gets_one_and_keeps_it() {
        let c = FilterConfig::from_json(
            br#"{"rules": "match { split(visitor, \"v\") < 50 } -> \"canary\"\ndefault -> \"stable\"", "visitor": {"cookie": "tcv", "max_age": 60}}"#,
        )
        .unwrap();
        let first = SimpleRequest::new("GET", "/").with_header("x-request-id", "a1b2");
        let v = Verdict::for_request(&c, &first, None);
        let visitor = v.visitor.clone().unwrap();
        assert!(visitor.minted && visitor.id.len() == 32, "{visitor:?}");
        assert_eq!(
            v.set_cookie(&c).as_deref(),
            Some(
                format!(
                    "tcv={}; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax",
                    visitor.id
                )
                .as_str()
            )
        );
        // The next visit carries the cookie: same id, same color, nothing minted.
        for request_id in ["x", "y", "z"] {
            let again = SimpleRequest::new("GET", "/")
                .with_header("x-request-id", request_id)
                .with_header("cookie", &format!("a=1; tcv={}", visitor.id));
            let w = Verdict::for_request(&c, &again, None);
            assert_eq!(
                w.visitor.as_ref().map(|v| (&v.id, v.minted)),
                Some((&visitor.id, false))
            );
            assert_eq!(w.color, v.color);
            assert_eq!(w.set_cookie(&c), None);
        }
        // A malformed cookie is replaced, never an error.
        for bad in [
            "tcv=",
            "tcv=XYZ",
            "tcv=0123456789abcdef0123456789ABCDEF",
            "tcv=%zz",
        ] {
            let req = SimpleRequest::new("GET", "/").with_header("cookie", bad);
            let w = Verdict::for_request(&c, &req, None);
            assert!(w.visitor.is_some_and(|v| v.minted), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn decided_reads_one_way() {
        let shown = [
            Decided::Rules(DecidedBy::Rule(3)),
            Decided::Rules(DecidedBy::Default),
            Decided::Rules(DecidedBy::Nothing),
            Decided::Kept(KeptFrom::Header),
            Decided::Kept(KeptFrom::Baggage),
        ]
        .map(|d| d.to_string());
        assert_eq!(
            shown,
            [
                "rule 3",
                "default",
                "none",
                "kept from header",
                "kept from baggage"
            ]
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

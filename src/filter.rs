//! The proxy-wasm glue: the only module that talks to the host. It compiles the config once in
//! the root context, and per request evaluates, strips any client-sent color, stamps the
//! computed one and asks Envoy to re-select the route.
//!
//! The SDK's convenience getters unwrap host results (a trap is an outage for the worker), so
//! request data is read through the `hostcalls` that return `Result`, and errors mean "absent".

use crate::config::ClaimTrust;
use crate::config::FilterConfig;
use crate::lang::eval::DecidedBy;
use crate::lang::program::Tag;
use crate::metrics;
use crate::propagation::{self, Outcome};
use crate::request::header_map::HeaderMap;
use crate::request::token_cache::TokenCache;
use crate::request::{RequestFacts, RequestSource};
use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ColorRoot { active: None }) });
}}

struct ColorRoot {
    active: Option<Rc<Active>>,
}

/// What every request of this VM shares: the compiled config and its counters.
struct Active {
    config: FilterConfig,
    counters: Counters,
    bulk_headers: bool,
    /// Decoded tokens of this worker's recent requests (`jwt.trust: unverified`).
    tokens: TokenCache,
}

/// Metric ids, resolved once per config so a request only increments.
struct Counters {
    /// `(tag, id)` for every tag the program can set, plus `unset`.
    colors: Vec<(String, u32)>,
    /// By rule index, then `default` last.
    rule_hits: Vec<u32>,
    unmatched: u32,
    stripped: u32,
    kept: u32,
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn bump(id: u32) {
    let _ = hostcalls::increment_metric(id, 1);
}

impl Counters {
    fn define(config: &FilterConfig) -> Option<Counters> {
        let names = metrics::Names::for_program(&config.program);
        let colors = names
            .colors
            .iter()
            .map(|(tag, name)| Some((tag.clone(), counter(name)?)))
            .collect::<Option<Vec<_>>>()?;
        let rule_hits = names
            .rules
            .iter()
            .map(|n| counter(n))
            .collect::<Option<Vec<u32>>>()?;
        Some(Counters {
            colors,
            rule_hits,
            unmatched: counter(&names.unmatched)?,
            stripped: counter(&names.stripped)?,
            kept: counter(&names.kept)?,
        })
    }

    fn count(&self, tag: Option<&Tag>, outcome: Outcome) {
        let color = tag.map_or(metrics::UNSET, |t| t.as_str());
        if let Some((_, id)) = self.colors.iter().find(|(t, _)| t == color) {
            bump(*id);
        }
        let rule = match outcome {
            Outcome::Decided(DecidedBy::Rule(n)) => self.rule_hits.get(n - 1),
            Outcome::Decided(DecidedBy::Default) => self.rule_hits.last(),
            Outcome::Decided(DecidedBy::Nothing) => None,
            Outcome::KeptHeader | Outcome::KeptBaggage => {
                bump(self.kept);
                return;
            }
        };
        if let Some(id) = rule {
            bump(*id);
        }
        if !matches!(outcome, Outcome::Decided(DecidedBy::Rule(_))) {
            bump(self.unmatched);
        }
    }
}

impl Context for ColorRoot {}

impl RootContext for ColorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("traffic-color: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        match FilterConfig::from_json(&bytes) {
            Ok(config) => {
                let Some(counters) = Counters::define(&config) else {
                    error!("traffic-color: cannot define metrics");
                    return false;
                };
                if let Some(id) = counter(&metrics::config_loads()) {
                    bump(id);
                }
                info!(
                    "traffic-color: loaded {} rules{}, color header `{}`",
                    config.program.rules.len(),
                    if config.program.default.is_some() {
                        " and a default"
                    } else {
                        ""
                    },
                    config.header.as_str()
                );
                if config.claims.trust() == ClaimTrust::Unverified {
                    warn!(
                        "traffic-color: jwt trust is `unverified`: token claims are read WITHOUT checking signatures; only run this behind a hop that verified the token"
                    );
                }
                let bulk_headers = bulk_headers(&config);
                self.active = Some(Rc::new(Active {
                    config,
                    counters,
                    bulk_headers,
                    tokens: TokenCache::new(),
                }));
                true
            }
            Err(e) => {
                if let Some(id) = counter(&metrics::config_rejections()) {
                    bump(id);
                }
                error!("traffic-color: configuration rejected: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Never `None`: the SDK panics on it, and a panic fails the request. Without an accepted
    /// configuration (hosts normally refuse such a plugin) a request passes uncolored, with
    /// the default color header stripped all the same.
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match self.active.clone() {
            Some(active) => Box::new(Color {
                id: context_id,
                active,
                outcome: Outcome::Decided(DecidedBy::Nothing),
            }),
            None => Box::new(Unconfigured),
        })
    }
}

struct Color {
    id: u32,
    active: Rc<Active>,
    outcome: Outcome,
}

impl Context for Color {}

impl HttpContext for Color {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let active = Rc::clone(&self.active);
        let config = &active.config;
        let header = config.header.as_str();
        let host = Host::new(active.bulk_headers);
        let incoming = host.header(header);
        let mut baggage: Option<Option<String>> = None;
        let facts = RequestFacts::new(&host, &config.program.needs, &config.claims)
            .with_token_cache(&active.tokens);
        let (tag, outcome) = propagation::color(
            config,
            incoming.as_deref(),
            || {
                baggage
                    .get_or_insert_with(|| host.header("baggage").map(Cow::into_owned))
                    .clone()
            },
            &facts,
        );
        self.outcome = outcome;
        active.counters.count(tag, outcome);
        if incoming.is_some() && outcome != Outcome::KeptHeader {
            bump(active.counters.stripped);
        }
        // Unless kept, the incoming color must never survive: remove it, then stamp ours.
        let stamped =
            hostcalls::set_map_value(MapType::HttpRequestHeaders, header, None).and_then(|()| {
                match tag {
                    Some(tag) => hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        header,
                        Some(tag.as_str()),
                    ),
                    None => Ok(()),
                }
            });
        if let Err(status) = stamped {
            warn!("#{} cannot set {header}: {status:?}", self.id);
        }
        if let Some(key) = &config.baggage {
            let current = baggage.unwrap_or_else(|| host.header("baggage").map(Cow::into_owned));
            let merged =
                propagation::baggage_set(current.as_deref(), key.as_str(), tag.map(|t| t.as_str()));
            if let Some(merged) = merged.filter(|m| Some(m) != current.as_ref()) {
                let value = Some(merged.as_str()).filter(|m| !m.is_empty());
                if let Err(status) =
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "baggage", value)
                {
                    warn!("#{} cannot set baggage: {status:?}", self.id);
                }
            }
        }
        // Envoy 1.40 re-selects the route by itself after a header change; older hosts or
        // configs with the refresh off need the explicit call, and some hosts lack it.
        let _ = hostcalls::call_foreign_function("clear_route_cache", None);
        debug!(
            "#{} {header}: {} (by {})",
            self.id,
            tag.map_or("<unset>", |t| t.as_str()),
            outcome.describe()
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(debug_header) = &self.active.config.debug_header {
            let value = self.outcome.describe();
            if let Err(status) = hostcalls::set_map_value(
                MapType::HttpResponseHeaders,
                debug_header.as_str(),
                Some(&value),
            ) {
                warn!(
                    "#{} cannot set {}: {status:?}",
                    self.id,
                    debug_header.as_str()
                );
            }
        }
        Action::Continue
    }
}

struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            crate::config::DEFAULT_HEADER,
            None,
        );
        Action::Continue
    }
}

/// The current request as seen through proxy-wasm host calls.
struct Host {
    /// Read every header in one host call and look them up here, rather than one call each.
    bulk: bool,
    all: OnceCell<HeaderMap>,
}

impl Host {
    fn new(bulk: bool) -> Self {
        Host {
            bulk,
            all: OnceCell::new(),
        }
    }

    fn all(&self) -> &HeaderMap {
        self.all
            .get_or_init(|| HeaderMap::parse(request_header_pairs().unwrap_or_default()))
    }
}

unsafe extern "C" {
    /// The ABI call behind the SDK's `get_map_bytes`, which would copy every pair into two new
    /// allocations; the buffer is indexed in place instead (see [`HeaderMap`]).
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// The request's header map, serialized, in a buffer the host allocated through this module's
/// `proxy_on_memory_allocate`.
fn request_header_pairs() -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a length it obtained from the SDK's allocator
    // (`Vec::with_capacity(size)` then forgotten), so the Vec below takes back exactly that
    // allocation; a null pointer or a failed status means no buffer was handed over.
    unsafe {
        let status =
            proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size);
        if status != 0 || data.is_null() {
            return None;
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// Each host call crosses the Wasm boundary (about a microsecond in V8); the header map costs
/// one call however many headers a program reads. One or two single reads are cheaper than the
/// whole map, so the map is fetched when a request needs more than this many reads, or needs
/// it anyway (cookies, which may span several headers).
const BULK_AFTER_READS: usize = 3;

/// Whether requests under `config` should read the header map in one call.
fn bulk_headers(config: &FilterConfig) -> bool {
    let needs = &config.program.needs;
    let reads = 1 // the incoming color header
        + needs.headers.len()
        + usize::from(needs.path || !needs.queries.is_empty())
        + usize::from(needs.method)
        + usize::from(needs.host)
        + usize::from(!needs.claims.is_empty() && config.claims.trust() == ClaimTrust::Unverified)
        + usize::from(config.keep && config.baggage.is_some());
    !needs.cookies.is_empty() || reads > BULK_AFTER_READS
}

impl RequestSource for Host {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        if self.bulk {
            return std::str::from_utf8(self.all().get(name)?)
                .ok()
                .map(Cow::Borrowed);
        }
        let bytes = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name).ok()??;
        String::from_utf8(bytes).ok().map(Cow::Owned)
    }

    fn header_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        // Only Cookie needs every value; Envoy's single-value getter returns the first one.
        self.all()
            .all(name)
            .filter_map(|v| std::str::from_utf8(v).ok().map(Cow::Borrowed))
            .collect()
    }

    fn source_address(&self) -> Option<String> {
        let bytes = hostcalls::get_property(vec!["source", "address"]).ok()??;
        String::from_utf8(bytes).ok()
    }

    fn verified_claims(&self, namespace: &str, key: &str) -> Option<serde_json::Value> {
        let metadata = hostcalls::get_property(vec!["metadata"]).ok()??;
        crate::request::metadata::verified_claims(&metadata, namespace, key)
    }

    fn now(&self) -> Option<i64> {
        let t = hostcalls::get_current_time().ok()?;
        i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()
    }
}

//! The proxy-wasm glue, the only code that talks to the host: the root context compiles the
//! config once; each request's context reads the host, asks [`Verdict::for_request`] what to do,
//! applies it and logs. Every host call goes through [`host`], which returns the host's status
//! rather than panicking on one it did not expect.

mod host;

use crate::config::{ClaimTrust, FilterConfig};
use crate::config_hash;
use crate::lang::eval::DecidedBy;
use crate::metrics::{self, Kind, Tally, Update};
use crate::outcome::Outcome;
use crate::request::RequestSource;
use crate::request::header_map::HeaderMap;
use crate::request::token_cache::TokenCache;
use crate::verdict::{Counter, Decided, Proxy, Verdict};
use log::{debug, error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

proxy_wasm::main! {{
    install_logger();
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FilterRoot { active: None, info: None }) });
}}

/// Log lines go to the host through [`host::log`], which never panics (the SDK's logger
/// unwraps the host's answer); a panic is logged at Critical before the VM traps.
///
/// The `log` crate's max level mirrors the host's log level, read when a config loads and
/// then once a second on the root context's tick (the level can change at runtime through
/// Envoy's admin `/logging`): a request's `debug!` line is then neither formatted nor sent
/// unless the host would print it.
struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        host::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

fn install_logger() {
    static LOGGER: HostLogger = HostLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
        std::panic::set_hook(Box::new(|panic| {
            host::log(LogLevel::Critical, &panic.to_string());
        }));
    }
}

/// Mirrors the host's log level into the `log` crate; a host that cannot say gets every line.
fn follow_host_log_level() {
    let filter = match host::log_level() {
        Ok(0) => log::LevelFilter::Trace,
        Ok(1) => log::LevelFilter::Debug,
        Ok(2) => log::LevelFilter::Info,
        Ok(3) => log::LevelFilter::Warn,
        Ok(4) => log::LevelFilter::Error,
        Ok(_) => log::LevelFilter::Off,
        Err(_) => log::LevelFilter::Trace,
    };
    log::set_max_level(filter);
}

/// How often the root context re-reads the host's log level and hands the counters' pending
/// sums to the host: a scrape sees a request's counts at most this late.
const TICK_MS: u32 = 1000;

/// A request that finds counts waiting longer than this hands them to the host itself: the root
/// context that should have done it on its tick has stopped ticking (see [`Active::settle`]).
const OVERDUE_NS: u64 = 3 * TICK_MS as u64 * 1_000_000;

struct FilterRoot {
    active: Option<Rc<Active>>,
    /// The id of `traffic_color_config_info{hash}` for the active config, which this root context
    /// holds at 1.
    info: Option<u32>,
}

impl FilterRoot {
    /// The second half of `on_configure`, apart: V8 compiles every function of the module when
    /// Envoy loads it, and the memory its optimizing compiler holds at once grows with the largest
    /// (BENCHMARKS.md, Memory).
    #[inline(never)]
    fn activate(&mut self, config: FilterConfig, bytes: &[u8]) -> bool {
        let names = metrics::Names::for_program(&config.program, config.outcome_metrics);
        let Some(counters) =
            metrics::Ids::define(&names, |kind, n| host::define_metric(kind, n).ok())
        else {
            error!("traffic-color: cannot define metrics");
            return false;
        };
        bump_new(&metrics::config_loads());
        // `from_json` parsed these bytes, so they have a hash.
        let hash = config_hash::of_json(bytes)
            .map(|h| h.to_string())
            .unwrap_or_default();
        let info = host::define_metric(Kind::Gauge, &metrics::config_info(&hash)).ok();
        self.mark(info);
        info!(
            "traffic-color: loaded {} rules{}, color header `{}`, config hash {hash}",
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
        if let Some(old) = self.active.take() {
            old.retire();
        }
        self.active = Some(Rc::new(Active {
            config,
            counters,
            bulk_headers,
            tokens: TokenCache::new(),
            tally: RefCell::new(Tally::default()),
            root_alive: Cell::new(true),
        }));
        true
    }

    /// Marks the config this root now runs in the `_info` gauge (1), and the one it ran before
    /// as gone (0).
    ///
    /// The gauge is shared by name across the proxy's VMs, and not every VM that configured a
    /// plugin is ever told it is done (seen with Envoy 1.40: after a push, the old hash kept one
    /// of its VMs' increments, so a count of VMs would never fall back to 0). So every root
    /// sets 1 (`record`), re-sets it on each tick, and sets 0 when the host tears it down: a
    /// config still running elsewhere (a push that keeps the hash) is back at 1 within a tick.
    fn mark(&mut self, info: Option<u32>) {
        if let Some(old) = self.info.take()
            && Some(old) != info
        {
            let _ = host::record(old, 0);
        }
        if let Some(new) = info
            && host::record(new, 1).is_ok()
        {
            self.info = Some(new);
        }
    }
}

/// What every request of this VM shares: the compiled config and its counters.
struct Active {
    config: FilterConfig,
    counters: metrics::Ids,
    bulk_headers: bool,
    /// Decoded tokens of this worker's recent requests (`jwt.trust: unverified`).
    tokens: TokenCache,
    /// This worker's counter increments since the root context last handed them to the host.
    tally: RefCell<Tally>,
    /// Whether the root context that flushes `tally` on its tick still runs this config. A
    /// stream outlives its root when a config replaces it (Envoy lets open streams finish under
    /// the old plugin); such a stream then flushes its own counts.
    root_alive: Cell<bool>,
}

impl Active {
    fn count(&self, id: u32) {
        match self.tally.try_borrow_mut() {
            Ok(mut tally) => tally.add(id),
            Err(_) => {
                let _ = host::increment(id);
            }
        }
    }

    /// Hands the pending sums to the host; `now` is the proxy's clock, if read.
    fn flush(&self, now: Option<u64>) {
        let sums = match self.tally.try_borrow_mut() {
            Ok(mut tally) if !tally.is_empty() => tally.take(now),
            _ => return,
        };
        for (id, n) in sums {
            let _ = host::add(id, n);
        }
    }

    /// After a request counted: flushes at once if no root context will. A root that was told
    /// it is done (or replaced its config) has retired this; a root dropped without being told
    /// (see [`FilterRoot::mark`]) leaves the flush to [`Drop`], once its last stream ends. Counts
    /// older than [`OVERDUE_NS`] are flushed too, for a root that stays but no longer ticks;
    /// `now` is the clock reading the request made anyway, so that check runs only with outcome
    /// metrics on (without a reading it cannot tell and waits for the tick).
    fn settle(&self, now: Option<u64>) {
        let due = match self.tally.try_borrow_mut() {
            Ok(mut tally) => {
                !tally.is_empty() && (!self.root_alive.get() || tally.overdue(now, OVERDUE_NS))
            }
            Err(_) => false,
        };
        if due {
            self.flush(now);
        }
    }

    /// The root context no longer runs this config: hands over what is pending, and leaves
    /// the streams still holding it to flush their own counts.
    fn retire(&self) {
        self.root_alive.set(false);
        self.flush(None);
    }
}

/// The last holder (a root, or the last stream of a retired config) hands over what is left.
impl Drop for Active {
    fn drop(&mut self) {
        self.flush(None);
    }
}

fn bump_new(name: &str) {
    if let Ok(id) = host::define_counter(name) {
        let _ = host::increment(id);
    }
}

impl Context for FilterRoot {
    /// The host is tearing this plugin down (a config replaced it, or Envoy is stopping).
    fn on_done(&mut self) -> bool {
        self.mark(None);
        if let Some(active) = &self.active {
            active.retire();
        }
        true
    }
}

impl RootContext for FilterRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        follow_host_log_level();
        let _ = host::set_tick_period(TICK_MS);
        true
    }

    fn on_tick(&mut self) {
        follow_host_log_level();
        if let Some(active) = &self.active {
            active.flush(host::now_nanos().ok());
        }
        if let Some(info) = self.info {
            let _ = host::record(info, 1);
        }
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match host::plugin_configuration() {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("traffic-color: cannot read the plugin configuration: status {status}");
                return false;
            }
        };
        let config = match FilterConfig::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                bump_new(&metrics::config_rejections());
                error!("traffic-color: configuration rejected: {e}");
                return false;
            }
        };
        self.activate(config, &bytes)
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Never `None`: the SDK panics on it, and a panic fails the request. Without an accepted
    /// configuration (hosts normally refuse such a plugin) a request passes uncolored, with
    /// the default color header stripped all the same.
    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match self.active.clone() {
            Some(active) => Box::new(FilterStream {
                id: context_id,
                active,
                decided: Decided::Rules(DecidedBy::Nothing),
                set_cookie: None,
                slot: None,
                started: None,
            }),
            None => Box::new(Unconfigured),
        })
    }
}

/// One request (an HTTP stream) under the active config.
struct FilterStream {
    id: u32,
    active: Rc<Active>,
    /// For the debug response header.
    decided: Decided,
    /// A minted visitor id's cookie, for the response.
    set_cookie: Option<String>,
    /// The color's slot in the outcome metrics, once the request has one and the config counts
    /// outcomes; a stream whose request headers never reached this filter (an earlier filter
    /// answered) is not counted.
    slot: Option<usize>,
    /// The proxy's clock when the request headers reached this filter (see [`Outcome`]).
    started: Option<u64>,
}

impl Context for FilterStream {}

/// The verdict's writes, through the host; counts wait in the VM for the next flush.
struct HostWrites<'a> {
    active: &'a Active,
}

impl Proxy for HostWrites<'_> {
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), u32> {
        host::set_header(MapType::HttpRequestHeaders, name, value)
    }

    fn count(&mut self, counter: Counter<'_>) {
        if let Some(id) = self.active.counters.of(counter) {
            self.active.count(id);
        }
    }

    fn publish(&mut self, key: &str, value: &str) -> Result<(), u32> {
        host::set_property(key, value)
    }
}

impl HttpContext for FilterStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let active = Rc::clone(&self.active);
        let config = &active.config;
        if config.outcome_metrics {
            self.started = host::now_nanos().ok();
        }
        let request = HostRequest::new(active.bulk_headers);
        let verdict = decide(config, &request, &active.tokens);
        self.decided = verdict.decided;
        self.set_cookie = verdict.set_cookie(config);
        self.slot = if config.outcome_metrics {
            active.counters.slot(verdict.color)
        } else {
            None
        };
        let mut writes = HostWrites { active: &active };
        if let Err(e) = verdict.apply(config, &mut writes) {
            warn!("#{} cannot set {}: status {}", self.id, e.header, e.status);
        }
        active.settle(self.started);
        if verdict.baggage_full {
            debug!(
                "#{} baggage is full: forwarded without a color member",
                self.id
            );
        }
        debug!(
            "#{} {}: {} ({})",
            self.id,
            config.header.as_str(),
            verdict.color.map_or("<unset>", |t| t.as_str()),
            verdict.decided
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(cookie) = self.set_cookie.take()
            && let Err(status) =
                host::add_header(MapType::HttpResponseHeaders, "set-cookie", &cookie)
        {
            warn!(
                "#{} cannot set the visitor cookie: status {status}",
                self.id
            );
        }
        if let Some(debug_header) = &self.active.config.debug_header {
            let value = self.decided.to_string();
            let name = debug_header.as_str();
            if let Err(status) = host::set_header(MapType::HttpResponseHeaders, name, Some(&value))
            {
                warn!("#{} cannot set {name}: status {status}", self.id);
            }
        }
        Action::Continue
    }

    /// The stream is over, whoever answered it (the upstream, or Envoy itself: a 503 for no
    /// healthy upstream, a timeout): count the response's class and record the duration since
    /// the request headers reached this filter.
    fn on_log(&mut self) {
        let Some(slot) = self.slot else {
            return;
        };
        let code = host::property_at("response\0code").ok().flatten();
        let now = host::now_nanos().ok();
        let outcome = Outcome::new(code.as_deref(), self.started, now);
        for update in self.active.counters.outcome(slot, &outcome) {
            match update {
                Update::Increment(id) => self.active.count(id),
                Update::Record(id, value) => {
                    let _ = host::record(id, value);
                }
            }
        }
        self.active.settle(now);
        debug!(
            "#{} outcome: {} in {} ms",
            self.id,
            outcome.class.map_or("no status", |c| c.label()),
            outcome
                .duration_ms
                .map_or_else(|| "?".to_string(), |ms| ms.to_string())
        );
    }
}

struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let _ = host::set_header(
            MapType::HttpRequestHeaders,
            crate::config::DEFAULT_HEADER,
            None,
        );
        Action::Continue
    }
}

/// The verdict, in a function of its own: inlined, it made `on_http_request_headers` the
/// module's largest function, and V8's optimizing compiler holds memory by the largest
/// functions when Envoy loads the module (BENCHMARKS.md, Memory). It costs one call per request.
#[inline(never)]
fn decide<'c>(config: &'c FilterConfig, request: &HostRequest, tokens: &TokenCache) -> Verdict<'c> {
    Verdict::for_request(config, request, Some(tokens))
}

/// The current request as seen through host calls; a failed call reads as absent.
struct HostRequest {
    /// Read every header in one host call and look them up here, rather than one call each.
    bulk: bool,
    all: OnceCell<HeaderMap>,
    /// The last header name the host said is absent, by the caller's string (address and
    /// length): a verdict asks `header`, then `has_header` for the same name (to tell absent
    /// from not UTF-8), and the second question would cost a second host call on nearly every
    /// request, which arrives without a color header. Another string with the same text just
    /// asks the host again.
    absent: Cell<Option<(usize, usize)>>,
}

impl HostRequest {
    fn new(bulk: bool) -> Self {
        HostRequest {
            bulk,
            all: OnceCell::new(),
            absent: Cell::new(None),
        }
    }

    fn key(name: &str) -> Option<(usize, usize)> {
        Some((name.as_ptr() as usize, name.len()))
    }

    fn all(&self) -> &HeaderMap {
        self.all.get_or_init(|| {
            HeaderMap::parse(
                host::request_header_pairs()
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        })
    }
}

/// Each host call crosses the Wasm boundary (about a microsecond in V8); the header map costs
/// one call however many headers a program reads. One or two single reads are cheaper than the
/// whole map, so the map is fetched when a request needs more than this many reads, or needs
/// it anyway (cookies and baggage, which may span several headers).
const BULK_AFTER_READS: usize = 3;

/// Whether requests under `config` should read the header map in one call.
fn bulk_headers(config: &FilterConfig) -> bool {
    let needs = &config.program.needs;
    let reads = 1 // the incoming color header
        + needs.headers.len()
        + usize::from(needs.path || !needs.queries.is_empty())
        + usize::from(needs.method)
        + usize::from(needs.host)
        + usize::from(!needs.claims.is_empty() && config.claims.trust() == ClaimTrust::Unverified);
    !needs.cookies.is_empty()
        || !needs.baggage.is_empty()
        || config.baggage.is_some()
        || config.visitor.is_some()
        || reads > BULK_AFTER_READS
}

impl RequestSource for HostRequest {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        if self.bulk {
            return std::str::from_utf8(self.all().get(name)?)
                .ok()
                .map(Cow::Borrowed);
        }
        let bytes = match host::header(MapType::HttpRequestHeaders, name) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.absent.set(Self::key(name));
                return None;
            }
            Err(_) => return None,
        };
        String::from_utf8(bytes).ok().map(Cow::Owned)
    }

    fn has_header(&self, name: &str) -> bool {
        if self.bulk {
            return self.all().get(name).is_some();
        }
        if self.absent.get() == Self::key(name) {
            return false;
        }
        matches!(host::header(MapType::HttpRequestHeaders, name), Ok(Some(_)))
    }

    fn header_values(&self, name: &str) -> Vec<Cow<'_, str>> {
        // Envoy's single-value getter returns the first value only.
        self.all()
            .all(name)
            .filter_map(|v| std::str::from_utf8(v).ok().map(Cow::Borrowed))
            .collect()
    }

    fn source_address(&self) -> Option<String> {
        let bytes = host::property(&["source", "address"]).ok()??;
        String::from_utf8(bytes).ok()
    }

    fn verified_claims(&self, namespace: &str, key: &str) -> Option<serde_json::Value> {
        let metadata = host::property(&["metadata"]).ok()??;
        crate::request::metadata::verified_claims(&metadata, namespace, key)
    }

    fn now(&self) -> Option<i64> {
        let nanos = host::now_nanos().ok()?;
        i64::try_from(nanos).ok()
    }
}

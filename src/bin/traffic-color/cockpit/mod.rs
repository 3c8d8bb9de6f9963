//! `traffic-color cockpit`: a web page served by this binary that watches each color live and
//! steers the rules. Local mode pushes to an Envoy through its ECDS resource file; mesh mode
//! only renders WasmPlugin manifests (it never talks to a cluster). docs/cockpit.md has the
//! user's view; the HTTP API is in http.rs.

mod assets;
mod audit;
mod http;
mod push;
mod sources;

use audit::{AuditLog, Entry};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use traffic_color::config::{ConfigError, FilterConfig};
use traffic_color::config_hash;

pub const TOKEN_ENV: &str = "TRAFFIC_COLOR_COCKPIT_TOKEN";

#[derive(Debug, clap::Args)]
#[command(after_help = "Local mode (an Envoy running envoy/envoy-cockpit.yaml):
  traffic-color cockpit --envoy-admin http://127.0.0.1:9901 --ecds envoy/ecds/traffic-color.json
Mesh mode (read-only: a push renders the WasmPlugin manifest for your GitOps flow):
  traffic-color cockpit --prometheus http://prometheus:9090 --wasmplugin istio/wasmplugin.yaml

Then open http://127.0.0.1:9902/. Off loopback (--listen 0.0.0.0:9902) a token is required:
--token T or the environment variable TRAFFIC_COLOR_COCKPIT_TOKEN; every push, rollback and
stop must then carry `Authorization: Bearer T` (the page asks for it once).

Exit codes: 2 usage error, a file that cannot be read, or a binary built without the page.")]
pub struct CockpitArgs {
    /// Address to serve the page and the API on; anything but loopback requires a token
    #[arg(long, default_value = "127.0.0.1:9902", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Access token for every state-changing call (default: $TRAFFIC_COLOR_COCKPIT_TOKEN)
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Local mode: the Envoy admin endpoint (plain http), polled about once a second
    #[arg(long, value_name = "URL", requires = "ecds", conflicts_with_all = ["prometheus", "wasmplugin"])]
    envoy_admin: Option<String>,
    /// Local mode: the ECDS resource file that Envoy watches (envoy/ecds/traffic-color.json)
    #[arg(long, value_name = "FILE", requires = "envoy_admin")]
    ecds: Option<PathBuf>,
    /// Mesh mode: Prometheus (plain http) with prometheus/traffic-color.rules.yaml loaded
    #[arg(long, value_name = "URL", requires = "wasmplugin")]
    prometheus: Option<String>,
    /// Mesh mode: the current WasmPlugin manifest (never written: pushes render a new one)
    #[arg(long, value_name = "FILE", requires = "prometheus")]
    wasmplugin: Option<PathBuf>,
    /// The append-only audit log (JSON lines); default: `<ecds or wasmplugin file>.audit.jsonl`
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Operator recorded in the audit log when a request names none (default: $USER)
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// The tag "everyone to stable" sends everyone to (default: the rules' default tag, else
    /// `stable`)
    #[arg(long, value_name = "TAG")]
    stable: Option<String>,
    /// Seconds a push waits for Envoy to report the new config hash
    #[arg(long, default_value_t = 15, value_name = "S")]
    push_timeout: u64,
    /// Serve the API only, without the page (for a binary built without the browser bundle)
    #[arg(long)]
    no_page: bool,
}

pub enum Target {
    Local {
        admin: String,
        ecds: PathBuf,
    },
    Mesh {
        prometheus: String,
        wasmplugin: PathBuf,
    },
}

impl Target {
    fn file(&self) -> &Path {
        match self {
            Target::Local { ecds, .. } => ecds,
            Target::Mesh { wasmplugin, .. } => wasmplugin,
        }
    }
    fn mode(&self) -> &'static str {
        match self {
            Target::Local { .. } => "local",
            Target::Mesh { .. } => "mesh",
        }
    }
    fn source(&self) -> Value {
        match self {
            Target::Local { admin, .. } => json!({"kind": "envoy", "url": admin}),
            Target::Mesh { prometheus, .. } => json!({"kind": "prometheus", "url": prometheus}),
        }
    }
}

/// What the server knows and shares between request threads and the poller.
pub struct Cockpit {
    pub target: Target,
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub operator: String,
    pub stable_flag: Option<String>,
    pub page: bool,
    push_timeout: Duration,
    agent: ureq::Agent,
    state: Mutex<State>,
    subscribers: Mutex<Vec<SyncSender<Arc<str>>>>,
    last_stats: Mutex<Option<Arc<str>>>,
    /// One push, rollback or stop at a time.
    push_lock: Mutex<()>,
}

struct State {
    /// The filter config JSON text in force (local: the ECDS file; mesh: the manifest).
    config: String,
    hash: String,
    audit: AuditLog,
    /// When this cockpit first saw Envoy report each hash.
    seen: HashMap<String, String>,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

fn hash_of(config: &str) -> String {
    config_hash::of_json(config.as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// The `rules` string of a config JSON text ("" when it has none).
fn rules_of(config: &str) -> String {
    serde_json::from_str::<Value>(config)
        .ok()
        .and_then(|v| v.get("rules").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// The compiler's diagnostics exactly as the browser bundle's `check` reports them.
pub fn diagnostics(e: &ConfigError) -> Vec<Value> {
    traffic_color::inspect::check::problems(e)
        .iter()
        .map(|p| json!(p))
        .collect()
}

/// The config JSON text in force, read from the target file.
fn read_config(target: &Target) -> Result<String, String> {
    match target {
        Target::Local { ecds, .. } => push::read_ecds(ecds).map(|f| f.config),
        Target::Mesh { wasmplugin, .. } => {
            let text = std::fs::read_to_string(wasmplugin)
                .map_err(|e| format!("{}: {e}", wasmplugin.display()))?;
            crate::istio::manifest_plugin_config(&text)
                .map(|v| v.to_string())
                .map_err(|e| format!("{}: {e}", wasmplugin.display()))
        }
    }
}

/// An HTTP answer from an action: status and JSON body.
pub type Answer = (u16, Value);

impl Cockpit {
    pub fn new(args: &CockpitArgs, token: Option<String>) -> Result<Cockpit, String> {
        let target = match (
            &args.envoy_admin,
            &args.ecds,
            &args.prometheus,
            &args.wasmplugin,
        ) {
            (Some(admin), Some(ecds), None, None) => Target::Local {
                admin: base_url(admin)?,
                ecds: ecds.clone(),
            },
            (None, None, Some(prom), Some(wp)) => Target::Mesh {
                prometheus: base_url(prom)?,
                wasmplugin: wp.clone(),
            },
            _ => {
                return Err(
                    "choose a mode: --envoy-admin URL --ecds FILE (local) or --prometheus URL --wasmplugin FILE (mesh)"
                        .into(),
                );
            }
        };
        if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("the token is empty".into());
        }
        if !args.listen.ip().is_loopback() && token.is_none() {
            return Err(format!(
                "--listen {}: not loopback, so a token is required (--token or {TOKEN_ENV})",
                args.listen
            ));
        }
        if let Some(tag) = &args.stable {
            let probe = json!({ "rules": stop_rules(tag) }).to_string();
            FilterConfig::from_json(probe.as_bytes())
                .map_err(|e| format!("--stable `{tag}`: not a tag the rules accept: {e}"))?;
        }
        let config = read_config(&target)?;
        let audit_path = args.audit_log.clone().unwrap_or_else(|| {
            let mut p = target.file().as_os_str().to_owned();
            p.push(".audit.jsonl");
            PathBuf::from(p)
        });
        let audit = AuditLog::open(&audit_path)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .build()
            .into();
        let operator = args
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "operator".into());
        Ok(Cockpit {
            target,
            listen: args.listen,
            token,
            operator,
            stable_flag: args.stable.clone(),
            page: !args.no_page,
            push_timeout: Duration::from_secs(args.push_timeout.max(1)),
            agent,
            state: Mutex::new(State {
                hash: hash_of(&config),
                config,
                audit,
                seen: HashMap::new(),
            }),
            subscribers: Mutex::new(Vec::new()),
            last_stats: Mutex::new(None),
            push_lock: Mutex::new(()),
        })
    }

    pub fn audit_path(&self) -> PathBuf {
        lock(&self.state).audit.path().to_path_buf()
    }

    fn get(&self, url: &str) -> Result<String, String> {
        self.agent
            .get(url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))
    }

    /// Re-reads the target file (edits made outside the cockpit count); keeps the last known
    /// config if the file cannot be read right now.
    fn refresh(&self) -> Result<(), String> {
        let config = read_config(&self.target)?;
        let mut st = lock(&self.state);
        if config != st.config {
            st.hash = hash_of(&config);
            st.config = config;
        }
        Ok(())
    }

    /// The tag "everyone to stable" uses.
    fn stable(&self, config: &str) -> String {
        if let Some(s) = &self.stable_flag {
            return s.clone();
        }
        FilterConfig::from_json(config.as_bytes())
            .ok()
            .and_then(|c| c.program.default.map(|t| t.as_str().to_string()))
            .unwrap_or_else(|| "stable".into())
    }

    /// GET /api/state.
    pub fn state_json(&self) -> Value {
        let _ = self.refresh();
        let st = lock(&self.state);
        let loaded_at = st
            .audit
            .brought_in(&st.hash)
            .map(str::to_string)
            .or_else(|| st.seen.get(&st.hash).cloned());
        let previous = st
            .audit
            .previous(&st.hash)
            .map(|(cfg, h)| json!({"hash": h.map_or_else(|| hash_of(cfg), str::to_string)}));
        json!({
            "mode": self.target.mode(),
            "source": self.target.source(),
            "config": {"json": st.config, "rules": rules_of(&st.config), "hash": st.hash,
                       "loaded_at": loaded_at},
            "previous": previous,
            "stable": self.stable(&st.config),
            "token_required": self.token.is_some(),
            "operator": self.operator,
        })
    }

    /// GET /api/audit.
    pub fn audit_json(&self) -> Value {
        json!(lock(&self.state).audit.entries())
    }

    /// A new SSE subscriber; it gets the latest stats at once.
    pub fn subscribe(&self) -> Receiver<Arc<str>> {
        let (tx, rx) = sync_channel(64);
        if let Some(last) = lock(&self.last_stats).clone() {
            let _ = tx.try_send(last);
        }
        lock(&self.subscribers).push(tx);
        rx
    }

    pub fn subscribers(&self) -> usize {
        lock(&self.subscribers).len()
    }

    fn broadcast(&self, event: &str, data: &Value) {
        let text: Arc<str> = format!("event: {event}\ndata: {data}\n\n").into();
        if event == "stats" {
            *lock(&self.last_stats) = Some(text.clone());
        }
        // A subscriber that went away is dropped; one that is too slow misses this event.
        lock(&self.subscribers).retain(|tx| {
            !matches!(
                tx.try_send(text.clone()),
                Err(TrySendError::Disconnected(_))
            )
        });
    }

    fn record(&self, entry: Entry) -> Result<Value, String> {
        let value = json!(entry);
        lock(&self.state).audit.append(entry)?;
        self.broadcast("audit", &value);
        Ok(value)
    }

    /// POST /api/push: the rules replace the current config's rules.
    pub fn push(&self, rules: &str, operator: Option<&str>) -> Answer {
        let _g = lock(&self.push_lock);
        if let Err(e) = self.refresh() {
            return (500, json!({"error": e}));
        }
        let current = lock(&self.state).config.clone();
        match with_rules(&current, rules) {
            Ok(new) => self.apply("push", operator, &current, &new),
            Err(answer) => answer,
        }
    }

    /// POST /api/rollback: back to the config the current one replaced.
    pub fn rollback(&self, operator: Option<&str>) -> Answer {
        let _g = lock(&self.push_lock);
        if let Err(e) = self.refresh() {
            return (500, json!({"error": e}));
        }
        let (current, previous) = {
            let st = lock(&self.state);
            (
                st.config.clone(),
                st.audit.previous(&st.hash).map(|(c, _)| c.to_string()),
            )
        };
        let Some(previous) = previous else {
            return (
                409,
                json!({"error": "nothing to roll back to: the audit log does not say what the current config replaced"}),
            );
        };
        self.apply("rollback", operator, &current, &previous)
    }

    /// POST /api/stop: everyone to the stable tag.
    pub fn stop(&self, operator: Option<&str>) -> Answer {
        let _g = lock(&self.push_lock);
        if let Err(e) = self.refresh() {
            return (500, json!({"error": e}));
        }
        let current = lock(&self.state).config.clone();
        match with_rules(&current, &stop_rules(&self.stable(&current))) {
            Ok(new) => self.apply("stop", operator, &current, &new),
            Err(answer) => answer,
        }
    }

    fn entry(&self, action: &str, operator: Option<&str>, old: &str, new: &str) -> Entry {
        Entry {
            time: now(),
            operator: operator
                .filter(|o| !o.trim().is_empty())
                .unwrap_or(&self.operator)
                .chars()
                .take(200)
                .collect(),
            action: action.into(),
            outcome: String::new(),
            reason: None,
            old_hash: Some(hash_of(old)),
            new_hash: config_hash::of_json(new.as_bytes()).map(|h| h.to_string()),
            diff: audit::rules_diff(&rules_of(old), &rules_of(new)),
            old_config: Some(old.to_string()),
            new_config: Some(new.to_string()),
        }
    }

    /// Compiles `new`; if the filter accepts it, delivers it (local) or renders it (mesh).
    fn apply(&self, action: &str, operator: Option<&str>, old: &str, new: &str) -> Answer {
        let mut entry = self.entry(action, operator, old, new);
        if let Err(e) = FilterConfig::from_json(new.as_bytes()) {
            entry.outcome = "rejected".into();
            entry.reason = Some(e.to_string());
            let diags = diagnostics(&e);
            return match self.record(entry) {
                Ok(entry) => (
                    422,
                    json!({"error": e.to_string(), "diagnostics": diags, "entry": entry}),
                ),
                Err(err) => (500, json!({"error": err, "diagnostics": diags})),
            };
        }
        match &self.target {
            Target::Mesh { wasmplugin, .. } => self.render(entry, wasmplugin, new),
            Target::Local { admin, ecds } => self.deliver(entry, admin, ecds, new),
        }
    }

    fn render(&self, mut entry: Entry, wasmplugin: &Path, new: &str) -> Answer {
        let manifest = std::fs::read_to_string(wasmplugin)
            .map_err(|e| format!("{}: {e}", wasmplugin.display()))
            .and_then(|text| {
                let config: Value = serde_json::from_str(new).map_err(|e| e.to_string())?;
                crate::istio::rerender_manifest(
                    &text,
                    config,
                    "traffic-color cockpit (mesh mode; apply it with your GitOps flow)",
                )
            });
        let manifest = match manifest {
            Ok(m) => m,
            Err(e) => return (500, json!({"error": e})),
        };
        entry.outcome = "rendered".into();
        entry.reason = Some("mesh mode: the manifest was rendered, nothing was applied".into());
        match self.record(entry) {
            Ok(entry) => (200, json!({"entry": entry, "manifest": manifest})),
            Err(e) => (500, json!({"error": e})),
        }
    }

    fn stats_samples(&self, admin: &str) -> Result<Vec<sources::Sample>, String> {
        self.get(&format!("{admin}{}", push::PUSH_STATS))
            .map(|t| push::parse(&t))
    }

    fn deliver(&self, mut entry: Entry, admin: &str, ecds: &Path, new: &str) -> Answer {
        let new_hash = entry.new_hash.clone().unwrap_or_default();
        let file = match push::read_ecds(ecds) {
            Ok(f) => f,
            Err(e) => return (500, json!({"error": e})),
        };
        let old_text = match std::fs::read_to_string(ecds) {
            Ok(t) => t,
            Err(e) => return (500, json!({"error": format!("{}: {e}", ecds.display())})),
        };
        let text = match push::with_config(&file, new) {
            Ok(t) => t,
            Err(e) => return (500, json!({"error": e})),
        };
        let rejected_before = self
            .stats_samples(admin)
            .map(|s| push::ecds_rejections(&s))
            .unwrap_or(0.0);
        if let Err(e) = push::replace_file(ecds, &text) {
            return (500, json!({"error": e}));
        }
        let started = Instant::now();
        let deadline = started + self.push_timeout;
        let mut last_error = None;
        let verdict = loop {
            match self.stats_samples(admin) {
                Ok(s) if push::hash_active(&s, &new_hash) => break Ok(()),
                Ok(s) if push::ecds_rejections(&s) > rejected_before => {
                    break Err((
                        502,
                        "Envoy rejected the update (extension_config_discovery update_rejected went up; its log says why)".to_string(),
                    ));
                }
                Ok(_) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                break Err((
                    504,
                    format!(
                        "timeout: Envoy did not report traffic_color_config_info{{hash=\"{new_hash}\"}} within {} s{}",
                        self.push_timeout.as_secs(),
                        last_error
                            .map(|e| format!(" (last admin error: {e})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        match verdict {
            Ok(()) => {
                entry.outcome = "accepted".into();
                entry.reason = Some(format!(
                    "Envoy runs it ({} ms after the resource file was replaced)",
                    started.elapsed().as_millis()
                ));
                {
                    let mut st = lock(&self.state);
                    st.config = new.to_string();
                    st.hash = new_hash.clone();
                    st.seen.insert(new_hash, entry.time.clone());
                }
                let entry = match self.record(entry) {
                    Ok(e) => e,
                    Err(e) => return (500, json!({"error": e})),
                };
                let state = self.state_json();
                self.broadcast("config", &state);
                (200, json!({"entry": entry, "state": state}))
            }
            Err((status, reason)) => {
                // The file goes back to what Envoy still runs, so file and proxy agree.
                let restored = push::replace_file(ecds, &old_text);
                entry.outcome = "rejected".into();
                entry.reason = Some(match restored {
                    Ok(()) => format!("{reason}; the previous resource file was put back"),
                    Err(e) => format!("{reason}; putting the previous file back failed: {e}"),
                });
                let reason = entry.reason.clone().unwrap_or_default();
                match self.record(entry) {
                    Ok(entry) => (status, json!({"error": reason, "entry": entry})),
                    Err(e) => (500, json!({"error": e})),
                }
            }
        }
    }

    /// One poll of the source: the stats event body and the active hash, or why it failed.
    fn poll(
        &self,
        window: &mut sources::Window,
    ) -> Result<(Map<String, Value>, Option<String>), String> {
        match &self.target {
            Target::Local { admin, .. } => {
                let text = self.get(&format!(
                    "{admin}/stats/prometheus?usedonly&filter=traffic_color"
                ))?;
                let samples = sources::parse_prometheus(&text);
                window.push(Instant::now(), sources::Snapshot::from_samples(&samples));
                Ok(window.stats())
            }
            Target::Mesh { prometheus, .. } => {
                let mut answers = Vec::new();
                for (key, query) in sources::PROM_QUERIES {
                    let url = format!("{prometheus}/api/v1/query");
                    let body = self
                        .agent
                        .get(&url)
                        .query("query", *query)
                        .call()
                        .map_err(|e| format!("{url}: {e}"))?
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| format!("{url}: {e}"))?;
                    answers.push((*key, sources::parse_query(&body)?));
                }
                Ok(sources::prometheus_stats(&answers))
            }
        }
    }

    /// Polls the source about once a second for as long as the process runs.
    fn poller(self: Arc<Self>) {
        let mut window = sources::Window::default();
        let mut last_good: Option<String> = None;
        // Before the first good read the numbers are zeros, not missing: the page draws one shape.
        let mut last_body = sources::Window::default().stats().0;
        let mut last_hash: Option<String> = None;
        // The rules of the config in force, compiled again only when that config changes.
        let mut rule_keys: (String, Option<Vec<RuleKey>>) = (String::new(), None);
        loop {
            let started = Instant::now();
            let at = now();
            let (stale, error) = match self.poll(&mut window) {
                Ok((body, hash)) => {
                    last_body = body;
                    last_hash = hash;
                    last_good = Some(at.clone());
                    (false, None)
                }
                Err(e) => (true, Some(e)),
            };
            let loaded_at = last_hash.as_ref().map(|h| {
                let mut st = lock(&self.state);
                let seen = st
                    .seen
                    .entry(h.clone())
                    .or_insert_with(|| at.clone())
                    .clone();
                st.audit.brought_in(h).map(str::to_string).unwrap_or(seen)
            });
            let mut event = last_body.clone();
            let config = lock(&self.state).config.clone();
            if rule_keys.0 != config {
                rule_keys = (config.clone(), program_rules(&config));
            }
            if let (Some(rows), Some(keys)) = (event.get_mut("rules"), &rule_keys.1) {
                *rows = every_rule(keys, rows);
            }
            event.insert("at".into(), json!(at));
            event.insert("stale".into(), json!(stale));
            event.insert("last_good".into(), json!(last_good));
            event.insert("error".into(), json!(error));
            event.insert(
                "config".into(),
                json!({"hash": last_hash, "loaded_at": loaded_at}),
            );
            self.broadcast("stats", &Value::Object(event));
            std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        }
    }
}

/// A per-rule row's identity: the rule's number (or `default`) and its name.
type RuleKey = (String, Option<String>);

/// Every rule of a config, in program order; `None` when it does not compile.
fn program_rules(config: &str) -> Option<Vec<RuleKey>> {
    let compiled = traffic_color::config::FilterConfig::from_json(config.as_bytes()).ok()?;
    let program = &compiled.program;
    let mut keys: Vec<RuleKey> = program
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| ((i + 1).to_string(), r.name.clone()))
        .collect();
    if program.default.is_some() {
        keys.push(("default".to_string(), None));
    }
    Some(keys)
}

/// The per-rule rows for every rule of the config in force, in program order (a rule nothing hit
/// yet has a zero row, which Envoy's `usedonly` stats leave out), then rows of rules the config
/// no longer has (a previous config's counters).
fn every_rule(keys: &[RuleKey], rows: &Value) -> Value {
    let rows: Vec<Value> = rows.as_array().cloned().unwrap_or_default();
    let key_of = |row: &Value| -> RuleKey {
        (
            row.get("rule")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            row.get("name").and_then(Value::as_str).map(str::to_string),
        )
    };
    let mut out: Vec<Value> = keys
        .iter()
        .map(|(rule, name)| {
            rows.iter()
                .find(|row| key_of(row) == (rule.clone(), name.clone()))
                .cloned()
                .unwrap_or_else(|| json!({"rule": rule, "name": name, "per_s": 0.0, "total": 0}))
        })
        .collect();
    out.extend(
        rows.iter()
            .filter(|row| !keys.contains(&key_of(row)))
            .cloned(),
    );
    Value::Array(out)
}

/// The config in force with other rules and every other setting kept: what a push and a stop
/// send.
fn with_rules(current: &str, rules: &str) -> Result<String, Answer> {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(current) else {
        return Err((
            500,
            json!({"error": "the config in force is not a JSON object"}),
        ));
    };
    obj.insert("rules".into(), rules.into());
    serde_json::to_string_pretty(&Value::Object(obj))
        .map_err(|e| (500, json!({"error": e.to_string()})))
}

fn stop_rules(tag: &str) -> String {
    format!("default -> \"{tag}\"\n")
}

/// `http://host:port` without a trailing slash; only plain http (no TLS client is built in).
fn base_url(url: &str) -> Result<String, String> {
    let u = url.trim_end_matches('/');
    if !u.starts_with("http://") || u.len() <= "http://".len() {
        return Err(format!(
            "`{url}`: expected http://HOST:PORT (plain http; no TLS client is built in)"
        ));
    }
    Ok(u.to_string())
}

/// `traffic-color cockpit`.
pub fn cockpit(args: &CockpitArgs) -> Result<ExitCode, String> {
    if !args.no_page && !assets::HAS_PAGE {
        eprintln!(
            "traffic-color cockpit: built without the browser bundle: run `make cockpit-web` then rebuild (missing: {}); --no-page serves the API alone",
            assets::MISSING.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()));
    let cockpit = Arc::new(Cockpit::new(args, token)?);
    let server = tiny_http::Server::http(args.listen)
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    eprintln!(
        "traffic-color cockpit: {} mode, serving http://{bound}/ (audit log {})",
        cockpit.target.mode(),
        cockpit.audit_path().display()
    );
    {
        let c = cockpit.clone();
        std::thread::Builder::new()
            .name("poller".into())
            .spawn(move || c.poller())
            .map_err(|e| e.to_string())?;
    }
    http::serve(&server, &cockpit);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn diagnostics_are_positioned() {
        let e = FilterConfig::from_json(
            br#"{"rules": "default -> \"stable\"\nmatch { nope } -> \"x\"\n"}"#,
        )
        .err()
        .unwrap();
        let d = diagnostics(&e);
        assert!(!d.is_empty());
        assert_eq!(d[0]["where"], "rules");
        assert_eq!(d[0]["line"], 2);
        assert!(d[0]["text"].as_str().unwrap().contains("--> line 2"));
        let e = FilterConfig::from_json(b"{\"rules\": 1").err().unwrap();
        assert_eq!(diagnostics(&e)[0]["where"], "config");
    }

    #[test]
    fn urls_are_plain_http() {
        assert_eq!(
            base_url("http://127.0.0.1:9901/").unwrap(),
            "http://127.0.0.1:9901"
        );
        assert!(base_url("https://x").is_err());
        assert!(base_url("http://").is_err());
    }

    #[test]
    fn every_rule_has_a_row_in_program_order() {
        let config = r#"{"rules": "match \"testers\" { header[\"x\"] == \"1\" } -> \"canary\"\nmatch { split(\"g\") < 5 } -> \"canary\"\ndefault -> \"stable\"\n"}"#;
        let seen = json!([
            {"rule": "default", "name": null, "per_s": 2.0, "total": 7},
            {"rule": "2", "name": null, "per_s": 1.0, "total": 3},
            {"rule": "4", "name": "gone", "per_s": 0.0, "total": 9},
        ]);
        let rows = every_rule(&program_rules(config).unwrap(), &seen);
        let keys: Vec<(String, Value, u64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["rule"].as_str().unwrap().to_string(),
                    r["name"].clone(),
                    r["total"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("1".to_string(), json!("testers"), 0),
                ("2".to_string(), Value::Null, 3),
                ("default".to_string(), Value::Null, 7),
                ("4".to_string(), json!("gone"), 9),
            ]
        );
        // A config that does not compile has no rule list (the rows then go out as they came).
        assert_eq!(program_rules("{"), None);
    }
}

//! Commands and their exit codes: 0 success, 1 rules or config rejected, 2 usage or I/O error.

use crate::input::RequestArgs;
use crate::load;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use traffic_color::config::{ClaimSource, ClaimTrust, FilterConfig};
use traffic_color::config_hash;
use traffic_color::request::{RequestFacts, SimpleRequest};
use traffic_color::verdict::{BaggageEdit, Decided, Verdict};

const SCHEMA: &str = include_str!("../../../schema/config.schema.json");

#[derive(Parser)]
#[command(
    name = "traffic-color",
    version,
    about = "Check, explain and simulate traffic-color rules with the filter's own parser and evaluator",
    after_help = "Examples:
  traffic-color check rules.tc envoy/config.json
  traffic-color explain -c config.json -H 'x-canary: true' --path /api/v2/items
  traffic-color explain -c config.json --curl \"curl -b 'canary=never' http://shop/\"
  traffic-color simulate -c config.json --users 100000 --user-header x-user-id
  traffic-color schema > config.schema.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check rules files or JSON configs; every error with line, column and caret (exit 1 on any)
    #[command(
        after_help = "A file starting with `{` is a JSON filter config; anything else is a rules program.
Use it as a CI gate or a pre-commit hook: `traffic-color check rules/*.tc`.

For a file that passes, `config hash` is the hash the filter logs and exposes as
traffic_color_config_info{hash} when it runs that config (for a rules program: the config
{\"rules\": <file>}). Key order and whitespace in the JSON do not change it; any other edit does."
    )]
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print nothing for files that pass
        #[arg(long, short)]
        quiet: bool,
    },
    /// Show the color a request gets, the rule that decided it, and why each condition held or not
    #[command(after_help = "Examples:
  traffic-color explain -c config.json -H 'x-user-id: 42' --cookie canary=always
  traffic-color explain -c rules.tc --claims '{\"sub\":\"user-a\",\"groups\":[\"beta\"]}'
  traffic-color explain -c config.json --raw request.txt --json")]
    Explain {
        /// A JSON config or a rules file
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        request: RequestArgs,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Run a config over many requests and print the share of each color and rule
    #[command(after_help = "Requests file: one JSON object per line, e.g.
  {\"method\": \"GET\", \"path\": \"/x?y=1\", \"headers\": [[\"x-user-id\", \"42\"]], \"claims\": {\"sub\": \"a\"}, \"source_ip\": \"10.0.0.1\"}
Synthetic users: --users N gives user ids user-1 … user-N in --user-header (or as the --user-claim claim).")]
    Simulate {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// JSON-lines requests, `-` for stdin
        #[arg(long, value_name = "FILE", required_unless_present = "users")]
        requests: Option<PathBuf>,
        /// Number of synthetic users
        #[arg(long, value_name = "N")]
        users: Option<u64>,
        /// Header carrying the synthetic user id
        #[arg(long, default_value = "x-user-id")]
        user_header: String,
        /// Put the synthetic user id in this verified claim instead of a header
        #[arg(long, value_name = "CLAIM")]
        user_claim: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the filter config (for editors and pluginConfig validation)
    Schema,
    /// Render an Istio WasmPlugin (YAML) from a rules file; the rules are compiled first
    Wasmplugin(crate::istio::WasmPluginArgs),
    /// Check that the rules and the routes agree: tags no route matches, routes no tag reaches
    #[command(
        after_help = "Routes are read from Istio VirtualServices, Argo Rollouts' setHeaderRoute steps (put above
the routes of the VirtualService they name) and Flagger Canaries' analysis.match (the
VirtualService Flagger generates). A tag with no route takes the default route, which is an
error unless it is the rules' default tag or named with --default-route; a match on the color
header that no tag reaches is a dead route. Exit 1 on either, for a CI gate.

Examples:
  traffic-color routes istio/rules.tc istio/virtualservice.yaml
  traffic-color routes istio/wasmplugin.yaml istio/argo-rollouts/rollout.yaml istio/argo-rollouts/virtualservice.yaml
  kubectl kustomize istio/ | traffic-color routes istio/rules.tc -"
    )]
    Routes(crate::routes::RoutesArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, quiet } => check(&files, quiet),
        Command::Explain {
            config,
            request,
            json,
        } => explain(&config, &request, json),
        Command::Simulate {
            config,
            requests,
            users,
            user_header,
            user_claim,
            json,
        } => simulate(&config, requests, users, &user_header, user_claim, json),
        Command::Schema => {
            print!("{SCHEMA}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Wasmplugin(args) => crate::istio::wasmplugin(&args),
        Command::Routes(args) => crate::routes::routes(&args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("traffic-color: {e}");
        ExitCode::from(2)
    })
}

fn check(files: &[PathBuf], quiet: bool) -> Result<ExitCode, String> {
    let mut failed = false;
    for f in files {
        let text = load::read(f)?;
        let json = load::filter_json(&text);
        match FilterConfig::from_json(json.as_bytes()) {
            Ok(c) => {
                if !quiet {
                    let default = c
                        .program
                        .default
                        .as_ref()
                        .map_or(String::new(), |d| format!(", default \"{}\"", d.as_str()));
                    let hash = config_hash::of_json(json.as_bytes())
                        .map_or_else(String::new, |h| format!(", config hash {h}"));
                    println!(
                        "{}: ok ({} rules{default}){hash}",
                        f.display(),
                        c.program.rules.len()
                    );
                }
            }
            Err(e) => {
                failed = true;
                println!("{}: {e}", f.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The config a request is judged under: with `--claims` (or a `claims` field), claims are
/// taken as verified whatever the config's trust says.
fn config_for<'c>(
    config: &'c FilterConfig,
    verified: &'c FilterConfig,
    req: &SimpleRequest,
) -> &'c FilterConfig {
    if req.verified_claims.is_some() {
        verified
    } else {
        config
    }
}

/// `config` reading claims from a verified payload.
fn with_verified_claims(loaded: &load::Loaded) -> Result<FilterConfig, String> {
    let mut verified = load::config_from_text(&loaded.text).map_err(|e| e.to_string())?;
    verified.claims = ClaimSource::of(ClaimTrust::Verified);
    Ok(verified)
}

/// What `explain --json` prints: the verdict, and the rules' trace when the rules decided.
#[derive(serde::Serialize)]
struct Explained {
    color: Option<String>,
    decided_by: String,
    rule: Option<usize>,
    /// The color header as it arrived.
    incoming: Option<String>,
    /// The incoming color header is removed.
    stripped: bool,
    /// With `baggage` configured: `unchanged`, `set` or `removed`, and the header sent on.
    #[serde(skip_serializing_if = "Option::is_none")]
    baggage: Option<BaggageReport>,
    rules: Vec<traffic_color::lang::explain::RuleTrace>,
}

#[derive(serde::Serialize)]
struct BaggageReport {
    edit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<String>,
    /// Our member did not fit: the header goes on without any member of that key.
    full: bool,
}

fn explain(config: &Path, args: &RequestArgs, json: bool) -> Result<ExitCode, String> {
    let loaded = load::load(config).map_err(|e| {
        println!("{e}");
        "config rejected".to_string()
    });
    let Ok(loaded) = loaded else {
        return Ok(ExitCode::from(1));
    };
    let req = args.build()?;
    let verified = with_verified_claims(&loaded)?;
    let config = config_for(&loaded.config, &verified, &req);
    let verdict = Verdict::for_request(config, &req, None);
    let program = &config.program;
    let rules = match verdict.decided {
        Decided::Rules(_) => {
            let facts = RequestFacts::new(&req, &program.needs, &config.claims);
            program.explain(&config.rules, &facts).rules
        }
        Decided::Kept(_) => Vec::new(),
    };
    let explained = Explained {
        color: verdict.color.map(|t| t.as_str().to_string()),
        decided_by: verdict.decided.to_string(),
        rule: match verdict.decided {
            Decided::Rules(traffic_color::lang::eval::DecidedBy::Rule(n)) => Some(n),
            _ => None,
        },
        incoming: verdict.incoming.clone(),
        stripped: verdict.stripped,
        baggage: config.baggage.as_ref().map(|_| BaggageReport {
            edit: match verdict.baggage_edit {
                BaggageEdit::Leave => "unchanged",
                BaggageEdit::Set(_) => "set",
                BaggageEdit::Remove => "removed",
            },
            header: match &verdict.baggage_edit {
                BaggageEdit::Set(h) => Some(h.clone()),
                _ => None,
            },
            full: verdict.baggage_full,
        }),
        rules,
    };
    if json {
        let text = serde_json::to_string_pretty(&explained).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        if args.token.is_some() && matches!(config.claims, ClaimSource::Verified { .. }) {
            println!(
                "note: this config reads claims only from a verified payload; --token is not decoded (pass the claims with --claims)"
            );
        }
        print!("{}", render(&explained, config));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form of `explain`: the trace, what happens to the incoming color and to baggage,
/// then the color.
fn render(e: &Explained, config: &FilterConfig) -> String {
    let header = config.header.as_str();
    let mut out = traffic_color::lang::explain::render_rules(&e.rules);
    if let Some(incoming) = &e.incoming {
        let fate = if e.stripped {
            "removed: a client must not choose its color"
        } else {
            "kept: `keep` is on and it is one of the program's tags"
        };
        out.push_str(&format!(
            "incoming {header} {}: {fate}\n",
            serde_json::Value::from(incoming.as_str())
        ));
    }
    if let Some(key) = &config.baggage
        && e.decided_by == Decided::Kept(traffic_color::verdict::KeptFrom::Baggage).to_string()
    {
        out.push_str(&format!(
            "incoming baggage member {}: kept: `keep` is on and it is one of the program's tags\n",
            key.as_str()
        ));
    }
    if let Some(b) = &e.baggage {
        let line = match (&b.header, b.edit) {
            (Some(h), _) => format!("baggage set to {}", serde_json::Value::from(h.as_str())),
            (None, "removed") => "baggage removed: no member left".to_string(),
            _ => "baggage unchanged".to_string(),
        };
        out.push_str(&line);
        if b.full {
            out.push_str(" (full: sent on without a color member)");
        }
        out.push('\n');
    }
    let color = e
        .color
        .as_ref()
        .map_or("unset (header removed)".to_string(), |c| format!("\"{c}\""));
    out.push_str(&format!("=> color {color}, decided by {}\n", e.decided_by));
    out
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    #[serde(default = "get")]
    method: String,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    claims: Option<serde_json::Value>,
    #[serde(default)]
    source_ip: Option<String>,
}

fn get() -> String {
    "GET".into()
}

fn root() -> String {
    "/".into()
}

#[derive(Default, serde::Serialize)]
struct Tally {
    requests: u64,
    colors: BTreeMap<String, u64>,
    rules: BTreeMap<String, u64>,
    /// Requests whose incoming color header was removed.
    stripped: u64,
}

impl Tally {
    fn add(&mut self, config: &FilterConfig, req: &SimpleRequest) {
        let v = Verdict::for_request(config, req, None);
        self.requests += 1;
        let color = v
            .color
            .map_or("(unset)".to_string(), |t| t.as_str().to_string());
        *self.colors.entry(color).or_default() += 1;
        *self.rules.entry(v.decided.to_string()).or_default() += 1;
        self.stripped += u64::from(v.stripped);
    }

    fn render(&self) -> String {
        let share = |n: u64| 100.0 * n as f64 / self.requests.max(1) as f64;
        let mut out = format!(
            "{} requests\n\ncolor             requests   share\n",
            self.requests
        );
        for (c, n) in &self.colors {
            out.push_str(&format!("{c:<17} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        out.push_str("\ndecided by        requests   share\n");
        let mut rules: Vec<_> = self.rules.iter().collect();
        rules.sort_by_key(|(r, _)| {
            r.strip_prefix("rule ")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        });
        for (r, n) in rules {
            out.push_str(&format!("{r:<17} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        if self.stripped > 0 {
            out.push_str(&format!(
                "\nincoming color removed: {} ({:.2}%)\n",
                self.stripped,
                share(self.stripped)
            ));
        }
        out
    }
}

/// Gives a request without one the unique `x-request-id` Envoy would generate at the edge, so
/// `split("group")` and minted visitor ids spread as they do in the proxy.
fn with_request_id(req: &mut SimpleRequest, n: u64) {
    use traffic_color::request::RequestSource;
    if req.header(traffic_color::lang::REQUEST_ID).is_none() {
        let h = traffic_color::bucket::murmur3_x86_32(&n.to_le_bytes());
        let id = format!(
            "{h:08x}-{:04x}-4{:03x}-a{:03x}-{n:012x}",
            n & 0xffff,
            h & 0xfff,
            (h >> 12) & 0xfff
        );
        req.headers
            .push((traffic_color::lang::REQUEST_ID.to_string(), id));
    }
}

fn simulate(
    config: &Path,
    requests: Option<PathBuf>,
    users: Option<u64>,
    user_header: &str,
    user_claim: Option<String>,
    json: bool,
) -> Result<ExitCode, String> {
    let loaded = match load::load(config) {
        Ok(l) => l,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let now = traffic_color::lang::time::unix_nanos(std::time::SystemTime::now());
    let verified = with_verified_claims(&loaded)?;
    let mut tally = Tally::default();
    if let Some(path) = requests {
        let text = load::read(&path)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: RequestLine = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            let mut req = SimpleRequest::new(&r.method, &r.path);
            for (k, v) in &r.headers {
                req = req.with_header(&k.to_ascii_lowercase(), v);
            }
            req.verified_claims = r.claims;
            req.source_address = r.source_ip;
            req.now = now;
            with_request_id(&mut req, i as u64);
            tally.add(config_for(&loaded.config, &verified, &req), &req);
        }
    }
    if let Some(n) = users {
        for i in 1..=n {
            let id = format!("user-{i}");
            let mut req = SimpleRequest::new("GET", "/");
            match &user_claim {
                Some(claim) => req.verified_claims = Some(serde_json::json!({ claim: id })),
                None => req = req.with_header(&user_header.to_ascii_lowercase(), &id),
            }
            req.now = now;
            with_request_id(&mut req, i);
            tally.add(config_for(&loaded.config, &verified, &req), &req);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tally).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", tally.render());
    }
    Ok(ExitCode::SUCCESS)
}

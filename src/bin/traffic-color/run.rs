//! Commands and their exit codes: 0 success, 1 rules or config rejected, 2 usage or I/O error.

use crate::input::RequestArgs;
use crate::load;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use traffic_color::config::ClaimSource;
use traffic_color::lang::eval::DecidedBy;
use traffic_color::request::{RequestFacts, SimpleRequest};

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
Use it as a CI gate or a pre-commit hook: `traffic-color check rules/*.tc`."
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
        match load::config_from_text(&text) {
            Ok(c) => {
                if !quiet {
                    let default = c
                        .program
                        .default
                        .as_ref()
                        .map_or(String::new(), |d| format!(", default \"{}\"", d.as_str()));
                    println!(
                        "{}: ok ({} rules{default})",
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

/// With `--claims`, claims are taken as verified whatever the config's trust says.
fn claim_source(loaded: &load::Loaded, req: &SimpleRequest) -> ClaimSource {
    if req.verified_claims.is_some() {
        ClaimSource::of(traffic_color::config::ClaimTrust::Verified)
    } else {
        loaded.claims().clone()
    }
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
    let claims = claim_source(&loaded, &req);
    let program = &loaded.config.program;
    let facts = RequestFacts::new(&req, &program.needs, &claims);
    let explanation = program.explain(&loaded.config.rules, &facts);
    if json {
        let text = serde_json::to_string_pretty(&explanation).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        if args.token.is_some() && matches!(claims, ClaimSource::Verified { .. }) {
            println!(
                "note: this config reads claims only from a verified payload; --token is not decoded (pass the claims with --claims)"
            );
        }
        print!("{}", explanation.render());
    }
    Ok(ExitCode::SUCCESS)
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
}

impl Tally {
    fn add(&mut self, loaded: &load::Loaded, req: &SimpleRequest) {
        let claims = claim_source(loaded, req);
        let program = &loaded.config.program;
        let facts = RequestFacts::new(req, &program.needs, &claims);
        let d = program.decide(&facts);
        self.requests += 1;
        let color = d
            .tag
            .map_or("(unset)".to_string(), |t| t.as_str().to_string());
        *self.colors.entry(color).or_default() += 1;
        let rule = match d.by {
            DecidedBy::Rule(n) => format!("rule {n}"),
            DecidedBy::Default => "default".into(),
            DecidedBy::Nothing => "none".into(),
        };
        *self.rules.entry(rule).or_default() += 1;
    }

    fn render(&self) -> String {
        let share = |n: u64| 100.0 * n as f64 / self.requests.max(1) as f64;
        let mut out = format!(
            "{} requests\n\ncolor        requests   share\n",
            self.requests
        );
        for (c, n) in &self.colors {
            out.push_str(&format!("{c:<12} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        out.push_str("\ndecided by   requests   share\n");
        let mut rules: Vec<_> = self.rules.iter().collect();
        rules.sort_by_key(|(r, _)| {
            r.strip_prefix("rule ")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        });
        for (r, n) in rules {
            out.push_str(&format!("{r:<12} {n:>8}  {:>6.2}%\n", share(*n)));
        }
        out
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
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
            tally.add(&loaded, &req);
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
            tally.add(&loaded, &req);
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

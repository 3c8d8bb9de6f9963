//! Commands and their exit codes: 0 success, 1 rules or config rejected, 2 usage or I/O error.

use crate::input::RequestArgs;
use crate::load;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use traffic_color::config::{ClaimSource, FilterConfig};
use traffic_color::config_hash;
use traffic_color::inspect::request::{RequestLine, with_request_id};
use traffic_color::inspect::simulate::Tally;
use traffic_color::inspect::{self, Judge};
use traffic_color::request::SimpleRequest;

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
Also \"query\" and \"cookies\" (pairs like \"headers\") and \"at\" (RFC 3339, the proxy's clock); every field is optional.
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
    /// Serve the release cockpit: live numbers per color, edit, push, roll back (a web page)
    Cockpit(crate::cockpit::CockpitArgs),
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
        Command::Cockpit(args) => crate::cockpit::cockpit(&args),
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
        let json = traffic_color::inspect::filter_json(&text);
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

fn explain(config: &Path, args: &RequestArgs, json: bool) -> Result<ExitCode, String> {
    let loaded = load::load(config).map_err(|e| {
        println!("{e}");
        "config rejected".to_string()
    });
    let Ok(loaded) = loaded else {
        return Ok(ExitCode::from(1));
    };
    let req = args.build()?;
    let judge = Judge::with_config(loaded.config, &loaded.text);
    let config = judge.config_for(&req);
    let explained = inspect::explain::explain(&judge, &req);
    if json {
        let text = serde_json::to_string_pretty(&explained).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        if args.token.is_some() && matches!(config.claims, ClaimSource::Verified { .. }) {
            println!(
                "note: this config reads claims only from a verified payload; --token is not decoded (pass the claims with --claims)"
            );
        }
        print!("{}", inspect::explain::render(&explained, config));
    }
    Ok(ExitCode::SUCCESS)
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
    let judge = Judge::with_config(loaded.config, &loaded.text);
    let mut tally = Tally::default();
    if let Some(path) = requests {
        let text = load::read(&path)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: RequestLine = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            let mut req = r
                .to_request(now)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            with_request_id(&mut req, i as u64);
            tally.add(judge.config_for(&req), &req);
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
            tally.add(judge.config_for(&req), &req);
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

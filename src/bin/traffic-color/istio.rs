//! `traffic-color wasmplugin`: an Istio `WasmPlugin` rendered from a rules file, so the rules
//! live in Git as a file and CI checks them. The `pluginConfig` it writes is compiled with the
//! filter's own `FilterConfig::from_json` first: a program the filter would refuse is never
//! rendered (same diagnostics as `check`, exit 1).
//!
//! The output is YAML from [`crate::yaml`], with comments that explain each choice; `--json`
//! prints the same document as JSON.

use crate::yaml::{block, scalar, with_comment};
use clap::ValueEnum;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use traffic_color::config::{ConfigError, DEFAULT_HEADER, FilterConfig};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("workloads").required(true).args(["selector", "target_ref"])))]
#[command(after_help = "Examples:
  # the ingress gateway (edge: strip and recompute the color)
  traffic-color wasmplugin --rules istio/rules.tc --url oci://ghcr.io/acme/traffic-color:0.1.0 \\
      --sha256 <manifest digest> --selector istio=ingressgateway > wasmplugin.yaml
  # a workload's outbound calls (keep a color set upstream, read it back from baggage)
  traffic-color wasmplugin --rules istio/rules.tc --name traffic-color-outbound --namespace shop \\
      --url oci://ghcr.io/acme/traffic-color:0.1.0 --selector app=frontend --mode CLIENT \\
      --keep --baggage traffic-color

Exit codes: 0 printed, 1 the rules or the filter config were rejected (every diagnostic is
printed, nothing is rendered), 2 usage or I/O error.")]
pub struct WasmPluginArgs {
    /// The rules program (a file, `-` for stdin); becomes pluginConfig.rules
    #[arg(long, value_name = "FILE")]
    rules: PathBuf,
    /// metadata.name; also the plugin name (Envoy root_id) unless --plugin-name
    #[arg(long, default_value = "traffic-color")]
    name: String,
    /// metadata.namespace: the namespace of the workloads it applies to (the root namespace,
    /// istio-system by default, means every namespace)
    #[arg(long, default_value = "istio-system")]
    namespace: String,
    /// spec.url: oci://REGISTRY/PATH:TAG (or http(s)://, file://)
    #[arg(long)]
    url: String,
    /// spec.sha256: for oci:// the digest of the image manifest (`make oci` prints it), for
    /// http(s):// the module's sha256; 64 lowercase hex digits, an optional `sha256:` prefix
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// spec.selector.matchLabels entry, e.g. istio=ingressgateway (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    selector: Vec<String>,
    /// spec.targetRefs entry: Gateway/NAME (Gateway API), Service/NAME or ServiceEntry/NAME
    /// (repeatable)
    #[arg(long, value_name = "KIND/NAME")]
    target_ref: Vec<String>,
    /// spec.match[].mode: CLIENT is a sidecar's outbound traffic (and a gateway's), SERVER its
    /// inbound traffic; default: all
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    #[arg(long, value_enum, default_value_t = Phase::Authz)]
    phase: Phase,
    /// Order among WasmPlugins of the same phase: higher runs first
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    priority: i32,
    #[arg(long, value_enum, default_value_t = FailStrategy::Open)]
    fail_strategy: FailStrategy,
    /// spec.pluginName (Envoy root_id); default: --name
    #[arg(long)]
    plugin_name: Option<String>,
    /// pluginConfig.header: the request header the color is written to
    #[arg(long, default_value = DEFAULT_HEADER)]
    header: String,
    /// pluginConfig.keep: keep an incoming color that is one of the rules' tags (set by a
    /// trusted earlier hop) instead of stripping and recomputing it; never at the edge
    #[arg(long)]
    keep: bool,
    /// pluginConfig.baggage: also write the color as this W3C baggage member (with --keep,
    /// read it back from there too)
    #[arg(long, value_name = "KEY")]
    baggage: Option<String>,
    /// pluginConfig.jwt.trust; default (key left out): verified
    #[arg(long, value_enum)]
    jwt_trust: Option<JwtTrust>,
    /// pluginConfig.outcome_metrics: count responses by class and durations per color, which
    /// the release analyses (Argo Rollouts, Flagger) and the cockpit's error ratio and p95 read;
    /// costs a status read per request
    #[arg(long)]
    outcome_metrics: bool,
    /// pluginConfig.debug_header (tells clients which rule decided: not for production)
    #[arg(long, value_name = "NAME")]
    debug_header: Option<String>,
    /// Print JSON instead of YAML (no comments)
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    #[value(name = "CLIENT")]
    Client,
    #[value(name = "SERVER")]
    Server,
    #[value(name = "CLIENT_AND_SERVER")]
    ClientAndServer,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Phase {
    #[value(name = "AUTHN")]
    Authn,
    #[value(name = "AUTHZ")]
    Authz,
    #[value(name = "STATS")]
    Stats,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailStrategy {
    #[value(name = "FAIL_OPEN")]
    Open,
    #[value(name = "FAIL_CLOSE")]
    Close,
    #[value(name = "FAIL_RELOAD")]
    Reload,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JwtTrust {
    #[value(name = "verified")]
    Verified,
    #[value(name = "unverified")]
    Unverified,
}

fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// `traffic-color wasmplugin`.
pub fn wasmplugin(args: &WasmPluginArgs) -> Result<ExitCode, String> {
    let rules = crate::load::read(&args.rules)?;
    let plugin_config = plugin_config(args, &rules);
    // The filter's own parser and compiler: what it rejects is never rendered.
    let text = plugin_config.to_string();
    // Usage errors (exit 2) first, then what the filter would say about its config (exit 1).
    let doc = document(args, plugin_config)?;
    match FilterConfig::from_json(text.as_bytes()) {
        Ok(_) => {}
        // The rules' diagnostics exactly as `check` prints them for this file.
        Err(e @ ConfigError::Rules { .. }) => {
            eprintln!("{}: {e}", args.rules.display());
            return Ok(ExitCode::from(1));
        }
        Err(e) => {
            eprintln!("pluginConfig: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let command =
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
        print!("{}", yaml(args, &doc, &format!("traffic-color {command}")));
    }
    Ok(ExitCode::SUCCESS)
}

/// The one WasmPlugin in a manifest (for the cockpit's mesh mode).
fn manifest_plugin(text: &str) -> Result<crate::yaml_read::Node, String> {
    use crate::yaml_read::{Node, documents};
    let docs = documents(text)
        .map_err(|e| format!("{}:{}: not YAML: {}", e.pos.line, e.pos.col, e.message))?;
    let mut plugins: Vec<Node> = docs
        .into_iter()
        .filter(|d| d.get("kind").and_then(Node::str) == Some("WasmPlugin"))
        .collect();
    match plugins.len() {
        1 => Ok(plugins.remove(0)),
        n => Err(format!("expected one WasmPlugin, found {n}")),
    }
}

/// The pluginConfig of the one WasmPlugin in a manifest, as the JSON Istio hands the filter.
pub fn manifest_plugin_config(text: &str) -> Result<Value, String> {
    let plugin = manifest_plugin(text)?;
    let config = plugin
        .path(&["spec", "pluginConfig"])
        .ok_or("the WasmPlugin has no spec.pluginConfig")?;
    Ok(crate::routes::to_json(config))
}

/// The manifest `traffic-color wasmplugin` renders for the same WasmPlugin with another
/// pluginConfig: the cockpit's mesh mode, which hands it to the user's GitOps flow. The options
/// are read back from the manifest; pluginConfig must already be compiled by the caller.
pub fn rerender_manifest(
    text: &str,
    plugin_config: Value,
    generated_by: &str,
) -> Result<String, String> {
    use crate::yaml_read::Node;
    let plugin = manifest_plugin(text)?;
    let s = |keys: &[&str]| plugin.path(keys).and_then(Node::str).map(str::to_string);
    let parse = |keys: &[&str], what: &str| -> Result<Option<String>, String> {
        Ok(s(keys)).and_then(|v| match v {
            Some(v) if v.is_empty() => Err(format!("{what}: empty")),
            v => Ok(v),
        })
    };
    fn enum_of<T: ValueEnum>(v: Option<String>, what: &str, default: T) -> Result<T, String> {
        match v {
            None => Ok(default),
            Some(v) => T::from_str(&v, false).map_err(|_| format!("{what}: unknown value `{v}`")),
        }
    }
    let selector = plugin
        .path(&["spec", "selector", "matchLabels"])
        .map(|m| {
            m.entries()
                .iter()
                .map(|(k, v)| format!("{}={}", k.str().unwrap_or(""), v.str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let target_ref = plugin
        .path(&["spec", "targetRefs"])
        .map(|refs| {
            refs.seq()
                .iter()
                .map(|r| {
                    let f = |k| r.get(k).and_then(Node::str).unwrap_or("");
                    format!("{}/{}", f("kind"), f("name"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mode = match plugin
        .path(&["spec", "match"])
        .and_then(|m| m.seq().first())
        .and_then(|m| m.get("mode"))
        .and_then(Node::str)
    {
        Some(m) => Some(
            Mode::from_str(m, false)
                .map_err(|_| format!("spec.match.mode: unknown value `{m}`"))?,
        ),
        None => None,
    };
    let args = WasmPluginArgs {
        rules: PathBuf::from("-"),
        name: parse(&["metadata", "name"], "metadata.name")?.ok_or("no metadata.name")?,
        namespace: s(&["metadata", "namespace"]).unwrap_or_else(|| "istio-system".into()),
        url: parse(&["spec", "url"], "spec.url")?.ok_or("no spec.url")?,
        sha256: s(&["spec", "sha256"]),
        selector,
        target_ref,
        mode,
        phase: enum_of(s(&["spec", "phase"]), "spec.phase", Phase::Authz)?,
        priority: match s(&["spec", "priority"]) {
            Some(p) => p
                .parse()
                .map_err(|_| format!("spec.priority: not an integer: `{p}`"))?,
            None => 1000,
        },
        fail_strategy: enum_of(
            s(&["spec", "failStrategy"]),
            "spec.failStrategy",
            FailStrategy::Open,
        )?,
        plugin_name: s(&["spec", "pluginName"]),
        header: DEFAULT_HEADER.into(),
        keep: false,
        baggage: None,
        jwt_trust: None,
        debug_header: None,
        outcome_metrics: false,
        json: false,
    };
    let doc = document(&args, plugin_config)?;
    Ok(yaml(&args, &doc, generated_by))
}

fn plugin_config(args: &WasmPluginArgs, rules: &str) -> Value {
    let mut c = Map::new();
    c.insert("rules".into(), rules.into());
    c.insert("header".into(), args.header.clone().into());
    c.insert("keep".into(), args.keep.into());
    if let Some(b) = &args.baggage {
        c.insert("baggage".into(), b.clone().into());
    }
    if let Some(t) = &args.jwt_trust {
        c.insert("jwt".into(), json!({ "trust": value_name(t) }));
    }
    if let Some(d) = &args.debug_header {
        c.insert("debug_header".into(), d.clone().into());
    }
    if args.outcome_metrics {
        c.insert("outcome_metrics".into(), true.into());
    }
    Value::Object(c)
}

// ------------------------------------------------------------------------- the resource

fn dns_name(s: &str, max: usize, dots: bool) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(ok_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The CRD's CEL rule: the scheme is http, https, oci, file or none (a bare reference means
/// oci). A registry with a port needs the scheme written out: `registry:5000/x` would parse
/// as scheme `registry`.
fn check_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("--url `{url}`: {why}"));
    if url.is_empty() || url.chars().any(char::is_whitespace) {
        return bad("must be a URL or image reference without spaces");
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !["oci", "http", "https", "file"].contains(&scheme) {
            return bad("the scheme must be oci://, http://, https:// or file://");
        }
        if rest.is_empty() {
            return bad("nothing after the scheme");
        }
        return Ok(());
    }
    let before_path = url.split('/').next().unwrap_or("");
    if before_path.contains(':') {
        return bad("write the scheme (oci://) before a registry with a port");
    }
    Ok(())
}

fn sha256_hex(s: &str) -> Result<String, String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex.to_string())
    } else {
        Err(format!(
            "--sha256 `{s}`: expected 64 lowercase hex digits (the manifest digest `make oci` prints)"
        ))
    }
}

fn selector(items: &[String]) -> Result<Option<Value>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut labels = Map::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("--selector `{item}`: expected KEY=VALUE"))?;
        if k.is_empty() || k.contains('*') || v.contains('*') || v.len() > 63 {
            return Err(format!(
                "--selector `{item}`: a label key and value, no wildcards, value at most 63 characters"
            ));
        }
        labels.insert(k.to_string(), v.into());
    }
    Ok(Some(json!({ "matchLabels": labels })))
}

fn target_refs(items: &[String]) -> Result<Option<Value>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut refs = Vec::new();
    for item in items {
        let (kind, name) = item
            .split_once('/')
            .ok_or_else(|| format!("--target-ref `{item}`: expected KIND/NAME"))?;
        let group = match kind {
            "Gateway" | "GatewayClass" => "gateway.networking.k8s.io",
            "Service" => "",
            "ServiceEntry" => "networking.istio.io",
            _ => {
                return Err(format!(
                    "--target-ref `{item}`: KIND is Gateway, GatewayClass, Service or ServiceEntry"
                ));
            }
        };
        if !dns_name(name, 253, true) {
            return Err(format!(
                "--target-ref `{item}`: NAME is not a Kubernetes name"
            ));
        }
        refs.push(json!({ "group": group, "kind": kind, "name": name }));
    }
    Ok(Some(Value::Array(refs)))
}

fn document(args: &WasmPluginArgs, plugin_config: Value) -> Result<Value, String> {
    if !dns_name(&args.name, 253, true) {
        return Err(format!("--name `{}`: not a Kubernetes name", args.name));
    }
    if !dns_name(&args.namespace, 63, false) {
        return Err(format!(
            "--namespace `{}`: not a namespace name",
            args.namespace
        ));
    }
    check_url(&args.url)?;
    // Optional for every scheme: neither the CRD, nor Istio's validation, nor its module cache
    // require it (Istio 1.30.3); without it the module is simply not pinned.
    let sha = args.sha256.as_deref().map(sha256_hex).transpose()?;
    let plugin_name = args
        .plugin_name
        .clone()
        .unwrap_or_else(|| args.name.clone());
    if plugin_name.is_empty() || plugin_name.len() > 256 {
        return Err("--plugin-name: 1 to 256 characters".into());
    }

    let mut spec = Map::new();
    if let Some(s) = selector(&args.selector)? {
        spec.insert("selector".into(), s);
    }
    if let Some(t) = target_refs(&args.target_ref)? {
        spec.insert("targetRefs".into(), t);
    }
    if let Some(m) = &args.mode {
        spec.insert("match".into(), json!([{ "mode": value_name(m) }]));
    }
    spec.insert("url".into(), args.url.clone().into());
    if let Some(s) = sha {
        spec.insert("sha256".into(), s.into());
    }
    spec.insert("phase".into(), value_name(&args.phase).into());
    spec.insert("priority".into(), args.priority.into());
    spec.insert(
        "failStrategy".into(),
        value_name(&args.fail_strategy).into(),
    );
    spec.insert("pluginName".into(), plugin_name.into());
    spec.insert("pluginConfig".into(), plugin_config);
    Ok(json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": { "name": args.name, "namespace": args.namespace },
        "spec": spec,
    }))
}

fn phase_comment(p: Phase, mode: Option<&Mode>) -> &'static str {
    match (p, mode) {
        (Phase::Authn, _) => "before Istio's authentication: verified claims are NOT visible yet",
        (Phase::Authz, Some(Mode::Client)) => {
            "before authorization; outbound listeners run no jwt_authn, so token[...] never matches here"
        }
        (Phase::Authz, _) => {
            "after authentication (RequestAuthentication's verified claims are visible), before authorization"
        }
        (Phase::Stats, _) => "after authorization, before stats: denied requests never get here",
    }
}

fn fail_comment(f: FailStrategy) -> &'static str {
    match f {
        FailStrategy::Open => {
            "module not fetched, or crashed: skip the filter (uncolored, a client-sent color kept); module or config Envoy refuses: no fallback (the old config keeps serving, or 500)"
        }
        FailStrategy::Close => {
            "module unavailable: deny every request (403); crashed: 5xx. Routing precision over availability"
        }
        FailStrategy::Reload => {
            "crashed: recreate the VM; module unavailable: deny every request like FAIL_CLOSE"
        }
    }
}

fn yaml(args: &WasmPluginArgs, doc: &Value, generated_by: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Generated by: {generated_by}");
    out.push_str(
        "# Edit the rules file (or the options) and run the command again; do not edit by hand.\n",
    );
    out.push_str(
        "# `traffic-color wasmplugin` compiled these rules with the filter's own compiler.\n",
    );
    let _ = writeln!(out, "apiVersion: {}", scalar(&doc["apiVersion"]));
    let _ = writeln!(out, "kind: {}", scalar(&doc["kind"]));
    block(&mut out, 0, "metadata", &doc["metadata"]);
    out.push_str("spec:\n");
    let Value::Object(spec) = &doc["spec"] else {
        return out;
    };
    let order = [
        "selector",
        "targetRefs",
        "match",
        "url",
        "sha256",
        "phase",
        "priority",
        "failStrategy",
        "pluginName",
        "pluginConfig",
    ];
    for key in order {
        let Some(v) = spec.get(key) else { continue };
        match key {
            "selector" if args.namespace == "istio-system" => out.push_str(
                "  # Workloads with these labels in metadata.namespace; istio-system is the root\n  # namespace by default, where a selector matches workloads in every namespace.\n",
            ),
            "selector" => out.push_str("  # Workloads with these labels in metadata.namespace.\n"),
            "match" => out.push_str(
                "  # CLIENT: a sidecar's outbound requests (and a gateway's); SERVER: inbound.\n",
            ),
            "pluginConfig" => out.push_str(
                "  # The filter's JSON configuration (README: Configuration); Istio passes it as a JSON string.\n",
            ),
            _ => {}
        }
        let line = out.len();
        if key == "sha256" {
            let _ = writeln!(out, "  sha256: {}", Value::from(v.as_str().unwrap_or("")));
        } else if key == "pluginConfig" {
            plugin_config_yaml(&mut out, v);
        } else {
            block(&mut out, 2, key, v);
        }
        match key {
            "url" if args.sha256.is_none() => with_comment(
                &mut out,
                line,
                "not pinned: pass --sha256, or patch url and sha256 in (istio/image.yaml)",
            ),
            "sha256" if args.url.starts_with("oci://") || !args.url.contains("://") => {
                with_comment(
                    &mut out,
                    line,
                    "the image MANIFEST digest (Istio compares it for oci:// urls)",
                )
            }
            "sha256" => with_comment(&mut out, line, "the module's sha256"),
            "phase" => with_comment(
                &mut out,
                line,
                phase_comment(args.phase, args.mode.as_ref()),
            ),
            "priority" => with_comment(
                &mut out,
                line,
                "among this phase's WasmPlugins, higher runs first (an unset priority sorts last)",
            ),
            "failStrategy" => with_comment(&mut out, line, fail_comment(args.fail_strategy)),
            "pluginName" => with_comment(&mut out, line, "Envoy's root_id"),
            _ => {}
        }
    }
    out
}

fn plugin_config_yaml(out: &mut String, v: &Value) {
    out.push_str("  pluginConfig:\n");
    let Value::Object(m) = v else { return };
    for (k, v) in m {
        let line = out.len();
        block(out, 4, k, v);
        match (k.as_str(), v) {
            ("keep", Value::Bool(false)) => with_comment(
                out,
                line,
                "the edge: strip any color the client sent, compute it from the rules",
            ),
            ("keep", Value::Bool(true)) => with_comment(
                out,
                line,
                "keep a color an earlier, trusted hop set (one of the rules' tags); else compute it",
            ),
            ("baggage", _) => with_comment(out, line, "also carried as this W3C baggage member"),
            ("header", _) => with_comment(out, line, "the VirtualService routes on this header"),
            ("outcome_metrics", _) => with_comment(
                out,
                line,
                "responses and durations per color, for the release analyses and the cockpit",
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../../../istio/wasmplugin.yaml");

    #[test]
    fn a_manifest_rerenders_with_new_rules_and_the_same_options() {
        let mut config = manifest_plugin_config(MANIFEST).unwrap();
        assert_eq!(config["header"], "x-version-route");
        assert_eq!(config["keep"], false);
        config["rules"] = "default -> \"canary\"\n".into();
        let out = rerender_manifest(MANIFEST, config.clone(), "test").unwrap();
        assert!(out.starts_with("# Generated by: test\n"), "{out}");
        assert_eq!(manifest_plugin_config(&out).unwrap(), config);
        // Everything but the rules and the first comment line is as `wasmplugin` rendered it.
        let body = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .filter(|l| !l.starts_with("      "))
                .map(str::to_string)
                .collect()
        };
        let (a, b) = (body(MANIFEST), body(&out));
        let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
        assert!(differ.len() <= 1, "{differ:?}"); // `rules: |` may become a quoted scalar
    }

    /// The release analyses judge a canary by the filter's outcome series, which the filter
    /// only defines with `outcome_metrics` on: the gateway's plugin must turn them on.
    #[test]
    fn the_gateway_plugin_counts_what_the_release_analyses_read() {
        let config = manifest_plugin_config(MANIFEST).unwrap();
        assert_eq!(config["outcome_metrics"], true);
        for analysis in [
            include_str!("../../../istio/argo-rollouts/analysistemplate.yaml"),
            include_str!("../../../istio/flagger/metrictemplates.yaml"),
        ] {
            assert!(analysis.contains("traffic_color_responses_total"));
        }
    }

    #[test]
    fn a_manifest_without_one_wasmplugin_is_refused() {
        assert!(manifest_plugin_config("kind: Service\n").is_err());
        let two = format!("{MANIFEST}\n---\n{MANIFEST}");
        assert!(manifest_plugin_config(&two).is_err());
        let bad = MANIFEST.replace("phase: AUTHZ", "phase: LATER");
        let config = manifest_plugin_config(&bad).unwrap();
        assert!(rerender_manifest(&bad, config, "t").is_err());
    }
}

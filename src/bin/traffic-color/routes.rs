//! `traffic-color routes`: do the rules and the routes agree? A tag the rules can produce that
//! no route matches silently takes the default route; a route on the color header that no tag
//! the rules produce can reach is dead. Both are reported with their positions, in the rules
//! and in the manifests, and make the command exit 1, for a CI gate.
//!
//! The routes are those of Istio VirtualServices, plus the ones the release engines write:
//! an Argo Rollout's `setHeaderRoute` routes go above the routes of the VirtualService it names
//! (its `managedRoutes` order), and a Flagger Canary's `analysis.match` becomes the first route
//! of the VirtualService Flagger generates for it, the default route to the primary after it.
//! Header matching follows Istio's StringMatch as Envoy runs it: `exact`, `prefix`, `suffix`,
//! `regex` (RE2, the whole value), `{}` for "present"; `withoutHeaders` negates.

use crate::load;
use crate::yaml_read::{self, Node, Pos};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use traffic_color::config::FilterConfig;
use traffic_color::lang::span::line_col;

#[derive(clap::Args)]
pub struct RoutesArgs {
    /// The rules: a rules program, a JSON config, or a YAML file with a WasmPlugin
    #[arg(value_name = "RULES")]
    rules: PathBuf,
    /// YAML files with VirtualServices, Rollouts and Canaries (other kinds are skipped; `-` reads
    /// standard input, e.g. `kubectl kustomize istio/ | traffic-color routes istio/rules.tc -`)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The header the routes match on [default: the config's `header`, else x-version-route]
    #[arg(long, value_name = "NAME")]
    header: Option<String>,
    /// A tag that is meant to take the default route (the rules' `default` tag always may)
    #[arg(long = "default-route", value_name = "TAG")]
    default_route: Vec<String>,
}

/// A place in a file, printed `file:line:column`.
#[derive(Debug, Clone)]
struct Loc {
    file: String,
    line: usize,
    col: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

fn loc(file: &str, pos: Pos) -> Loc {
    Loc {
        file: file.to_string(),
        line: pos.line,
        col: pos.col,
    }
}

/// A tag and where the rules produce it.
struct TagSite {
    tag: String,
    at: Vec<(String, Loc)>,
}

struct Rules {
    file: String,
    header: String,
    tags: Vec<TagSite>,
    default: Option<String>,
}

#[derive(Clone)]
enum Test {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(regex_lite::Regex, String),
    Present,
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Exact(s) => v == s,
            Test::Prefix(s) => v.starts_with(s.as_str()),
            Test::Suffix(s) => v.ends_with(s.as_str()),
            Test::Regex(re, _) => re.is_match(v),
            Test::Present => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            Test::Exact(s) => format!("exact {}", quote(s)),
            Test::Prefix(s) => format!("prefix {}", quote(s)),
            Test::Suffix(s) => format!("suffix {}", quote(s)),
            Test::Regex(_, s) => format!("regex {}", quote(s)),
            Test::Present => "present".to_string(),
        }
    }
}

#[derive(Clone)]
struct ColorTest {
    test: Test,
    negate: bool,
    at: Loc,
}

/// One `match` entry: its tests on the color header, and whether it also tests anything else.
#[derive(Clone)]
struct Clause {
    color: Vec<ColorTest>,
    other: bool,
}

impl Clause {
    /// Whether a request colored `tag` (None: no color header) passes the color tests.
    fn admits(&self, tag: Option<&str>) -> bool {
        self.color.iter().all(|t| {
            let hit = tag.is_some_and(|v| t.test.matches(v));
            hit != t.negate
        })
    }

    fn catch_all(&self) -> bool {
        self.color.is_empty() && !self.other
    }

    fn describe(&self, header: &str) -> String {
        self.color
            .iter()
            .map(|t| {
                let not = if t.negate { "not " } else { "" };
                format!("{header} {not}{} ({})", t.test.describe(), t.at)
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

#[derive(Clone)]
struct Route {
    label: String,
    at: Loc,
    clauses: Vec<Clause>,
}

struct Table {
    title: String,
    at: Loc,
    routes: Vec<Route>,
    /// Routes of the base VirtualService are unknown (a Rollout's VirtualService not given).
    partial: bool,
    /// Written by a release engine (its routes are checked even without a color route).
    engine: bool,
}

fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

pub fn routes(args: &RoutesArgs) -> Result<ExitCode, String> {
    let Some(rules) = load_rules(&args.rules, args.header.as_deref())? else {
        return Ok(ExitCode::from(1));
    };
    let mut docs = Vec::new();
    for f in &args.files {
        let text = load::read(f)?;
        let name = f.display().to_string();
        let parsed = yaml_read::documents(&text).map_err(|e| {
            format!(
                "{name}:{}:{}: not YAML: {}",
                e.pos.line, e.pos.col, e.message
            )
        })?;
        docs.extend(parsed.into_iter().map(|d| (name.clone(), d)));
    }
    let mut errors = Vec::new();
    let tables = tables(&docs, &rules.header, &mut errors)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary(&rules));
    let mut any_color_route = false;
    for table in &tables {
        let routes_on_color = table
            .routes
            .iter()
            .any(|r| r.clauses.iter().any(|c| !c.color.is_empty()));
        if !routes_on_color && !table.engine {
            let _ = writeln!(
                out,
                "{} ({}): no route on {}, not checked",
                table.title, table.at, rules.header
            );
            continue;
        }
        any_color_route |= routes_on_color;
        check_table(table, &rules, &args.default_route, &mut out, &mut errors);
    }
    if !any_color_route {
        errors.push(format!(
            "no route in {} matches on {}: every tag takes the default route",
            args.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            rules.header
        ));
    }
    for e in &errors {
        let _ = writeln!(out, "error: {e}");
    }
    match errors.len() {
        0 => {
            out.push_str("ok: every tag has its route, and every route on the color is reachable\n")
        }
        1 => out.push_str("1 error\n"),
        n => {
            let _ = writeln!(out, "{n} errors");
        }
    }
    print!("{out}");
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(rules: &Rules) -> String {
    let tags = rules
        .tags
        .iter()
        .map(|t| quote(&t.tag))
        .collect::<Vec<_>>()
        .join(", ");
    let default = rules
        .default
        .as_ref()
        .map_or("no default".to_string(), |d| {
            format!("default {}", quote(d))
        });
    format!(
        "{}: tags {tags} ({default}), routed on {}",
        rules.file, rules.header
    )
}

/// Where each tag's requests go in one table, and which color tests no tag reaches.
fn check_table(
    table: &Table,
    rules: &Rules,
    default_route: &[String],
    out: &mut String,
    errors: &mut Vec<String>,
) {
    let _ = writeln!(out, "{} ({})", table.title, table.at);
    let width = rules.tags.iter().map(|t| t.tag.len()).max().unwrap_or(0) + 2;
    let mut reached: Vec<Vec<bool>> = table
        .routes
        .iter()
        .map(|r| vec![false; r.clauses.len()])
        .collect();
    // Each tag, then "no color" when the rules can leave it unset (liveness only).
    let mut colors: Vec<Option<&TagSite>> = rules.tags.iter().map(Some).collect();
    if rules.default.is_none() {
        colors.push(None);
    }
    for site in colors {
        let tag = site.map(|s| s.tag.as_str());
        let mut landed: Option<(usize, usize)> = None;
        'routes: for (ri, route) in table.routes.iter().enumerate() {
            for (ci, clause) in route.clauses.iter().enumerate() {
                if clause.color.is_empty() {
                    if clause.catch_all() {
                        landed = Some((ri, ci));
                        break 'routes;
                    }
                    continue;
                }
                if clause.admits(tag) {
                    reached[ri][ci] = true;
                    if !clause.other {
                        landed = Some((ri, ci));
                        break 'routes;
                    }
                }
            }
        }
        let Some(site) = site else { continue };
        let shown = quote(&site.tag);
        let sites = site
            .at
            .iter()
            .map(|(what, l)| format!("{what}, {l}"))
            .collect::<Vec<_>>()
            .join(", ");
        match landed {
            Some((ri, ci)) if !table.routes[ri].clauses[ci].color.is_empty() => {
                let route = &table.routes[ri];
                let _ = writeln!(
                    out,
                    "  {shown:<width$} {} ({})",
                    route.label, route.clauses[ci].color[0].at
                );
            }
            _ if table.partial => {
                let _ = writeln!(
                    out,
                    "  {shown:<width$} the VirtualService's own routes (not given)"
                );
            }
            found => {
                let fallback = match found {
                    Some((ri, _)) => format!(
                        "the default route, {} ({})",
                        table.routes[ri].label, table.routes[ri].at
                    ),
                    None => "no route at all (Envoy answers 404)".to_string(),
                };
                if found.is_none() {
                    let _ = writeln!(out, "  {shown:<width$} {fallback}: NO ROUTE");
                    errors.push(format!(
                        "{shown} ({sites}) has no route in {} ({}): Envoy answers 404",
                        table.title, table.at
                    ));
                } else if rules.default.as_deref() == Some(site.tag.as_str()) {
                    let _ = writeln!(out, "  {shown:<width$} {fallback}: the rules' default tag");
                } else if default_route.contains(&site.tag) {
                    let _ = writeln!(out, "  {shown:<width$} {fallback}: --default-route");
                } else {
                    let _ = writeln!(out, "  {shown:<width$} {fallback}: NO ROUTE");
                    errors.push(format!(
                        "{shown} ({sites}) has no route in {} ({}): it takes {fallback}",
                        table.title, table.at
                    ));
                }
            }
        }
    }
    for (ri, route) in table.routes.iter().enumerate() {
        for (ci, clause) in route.clauses.iter().enumerate() {
            if clause.color.is_empty() || reached[ri][ci] {
                continue;
            }
            let matching: Vec<&str> = rules
                .tags
                .iter()
                .map(|t| t.tag.as_str())
                .filter(|t| clause.admits(Some(t)))
                .collect();
            let why = if matching.is_empty() {
                "which no tag of the rules satisfies".to_string()
            } else {
                format!(
                    "but every tag it matches ({}) takes an earlier route",
                    matching
                        .iter()
                        .map(|t| quote(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(
                out,
                "  {} {}: DEAD",
                route.label,
                clause.describe(&rules.header)
            );
            errors.push(format!(
                "{} in {} matches {}, {why}: the route is dead",
                route.label,
                table.title,
                clause.describe(&rules.header)
            ));
        }
    }
}

// ------------------------------------------------------------------------------ the rules

/// The rules and the header from a rules program, a JSON config or a WasmPlugin; None when
/// the rules are rejected (the diagnostics are printed).
fn load_rules(path: &Path, header: Option<&str>) -> Result<Option<Rules>, String> {
    let file = path.display().to_string();
    let text = load::read(path)?;
    let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    // (config text, how to place a rules offset in the file)
    let (config_text, place): (String, Box<dyn Fn(usize, usize) -> Loc>) = if is_yaml {
        let docs = yaml_read::documents(&text).map_err(|e| {
            format!(
                "{file}:{}:{}: not YAML: {}",
                e.pos.line, e.pos.col, e.message
            )
        })?;
        let plugins: Vec<&Node> = docs
            .iter()
            .filter(|d| d.get("kind").and_then(Node::str) == Some("WasmPlugin"))
            .collect();
        let [plugin] = plugins.as_slice() else {
            return Err(format!(
                "{file}: expected one WasmPlugin, found {}",
                plugins.len()
            ));
        };
        let config = plugin
            .path(&["spec", "pluginConfig"])
            .ok_or_else(|| format!("{file}: the WasmPlugin has no spec.pluginConfig"))?;
        let rules_node = config
            .get("rules")
            .ok_or_else(|| format!("{file}: spec.pluginConfig has no rules"))?;
        let place = placer(&file, &text, rules_node);
        (to_json(config).to_string(), place)
    } else if text.trim_start().starts_with('{') {
        let f = file.clone();
        (
            text.clone(),
            Box::new(move |line, col| Loc {
                file: format!("{f} (rules line"),
                line,
                col,
            }),
        )
    } else {
        let f = file.clone();
        (
            text.clone(),
            Box::new(move |line, col| Loc {
                file: f.clone(),
                line,
                col,
            }),
        )
    };
    let config: FilterConfig = match traffic_color::inspect::config_from_text(&config_text) {
        Ok(c) => c,
        Err(e) => {
            println!("{file}: {e}");
            return Ok(None);
        }
    };
    let source = config.rules.as_str();
    let mut tags: Vec<TagSite> = Vec::new();
    let mut add = |tag: &str, what: String, offset: usize| {
        let (line, col, _) = line_col(source, offset);
        let at = (what, place(line, col));
        match tags.iter_mut().find(|t| t.tag == tag) {
            Some(t) => t.at.push(at),
            None => tags.push(TagSite {
                tag: tag.to_string(),
                at: vec![at],
            }),
        }
    };
    for (i, rule) in config.program.rules.iter().enumerate() {
        let tag = rule.tag.as_str();
        // The rule's span ends with its tag literal, `"tag"` (tags need no escapes).
        let offset = rule.span.end.saturating_sub(tag.len() + 2);
        add(tag, format!("rule {}", i + 1), offset);
    }
    let default = config
        .program
        .default
        .as_ref()
        .map(|t| t.as_str().to_string());
    if let (Some(tag), Some(line)) = (&default, config.program.default_line) {
        let line_start: usize = source
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let in_line = source
            .get(line_start..)
            .and_then(|rest| rest.find(&format!("\"{tag}\"")))
            .unwrap_or(0);
        add(tag, "default".to_string(), line_start + in_line);
    }
    Ok(Some(Rules {
        file,
        header: header.map_or_else(
            || config.header.as_str().to_string(),
            str::to_ascii_lowercase,
        ),
        tags,
        default,
    }))
}

/// Maps (line, column) in the rules to the file: a literal block (`rules: |`) is the rules'
/// text line for line from its first content line (where the parser places the scalar), at
/// its indentation; any other scalar is reported as "rules line L" at its node.
fn placer(file: &str, text: &str, node: &Node) -> Box<dyn Fn(usize, usize) -> Loc> {
    let file = file.to_string();
    if node.is_literal_block() {
        let first = node.pos.line;
        let indent = text
            .lines()
            .skip(first - 1)
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start().len());
        Box::new(move |line, col| Loc {
            file: file.clone(),
            line: first + line - 1,
            col: col + indent,
        })
    } else {
        let at = node.pos;
        Box::new(move |line, col| Loc {
            file: format!("{file}:{}:{} (rules line", at.line, at.col),
            line,
            col,
        })
    }
}

/// pluginConfig as the JSON Istio hands the filter: plain scalars typed as YAML reads them.
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use yaml_read::Value;
    match &node.value {
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.str().unwrap_or("").to_string(), to_json(v)))
                .collect(),
        ),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Scalar { text, .. } => match text.as_str() {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            "null" | "~" => serde_json::Value::Null,
            t => t
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::from(t)),
        },
    }
}

// ------------------------------------------------------------------------------ the routes

fn name_of(doc: &Node) -> (String, String) {
    let meta = |k| {
        doc.path(&["metadata", k])
            .and_then(Node::str)
            .unwrap_or("")
            .to_string()
    };
    (meta("namespace"), meta("name"))
}

fn color_test(
    header: &str,
    name: &str,
    m: &Node,
    negate: bool,
    file: &str,
) -> Result<Option<ColorTest>, String> {
    if !name.eq_ignore_ascii_case(header) {
        return Ok(None);
    }
    let mut found = Vec::new();
    for (k, v) in m.entries() {
        let value = v.str().unwrap_or("").to_string();
        let test = match k.str() {
            Some("exact") => Test::Exact(value),
            Some("prefix") => Test::Prefix(value),
            Some("suffix") => Test::Suffix(value),
            Some("regex") => {
                let re = regex_lite::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    format!(
                        "{}: regex {} not understood: {e}",
                        loc(file, v.pos),
                        quote(&value)
                    )
                })?;
                Test::Regex(re, value)
            }
            _ => continue,
        };
        found.push((test, loc(file, v.pos)));
    }
    let (test, at) = match found.len() {
        0 => (Test::Present, loc(file, m.pos)),
        1 => found.remove(0),
        _ => {
            return Err(format!(
                "{}: a header match takes one of exact, prefix, suffix, regex",
                loc(file, m.pos)
            ));
        }
    };
    Ok(Some(ColorTest { test, negate, at }))
}

/// A VirtualService-style `match` entry (HTTPMatchRequest).
fn clause(header: &str, m: &Node, file: &str) -> Result<Clause, String> {
    let mut color = Vec::new();
    let mut other = false;
    for (k, v) in m.entries() {
        match k.str() {
            Some(key @ ("headers" | "withoutHeaders")) => {
                for (name, sm) in v.entries() {
                    let n = name.str().unwrap_or("");
                    match color_test(header, n, sm, key == "withoutHeaders", file)? {
                        Some(t) => color.push(t),
                        None => other = true,
                    }
                }
            }
            Some("name") => {}
            _ => other = true,
        }
    }
    Ok(Clause { color, other })
}

fn http_routes(header: &str, vs: &Node, file: &str) -> Result<Vec<Route>, String> {
    let mut out = Vec::new();
    for (i, r) in vs
        .path(&["spec", "http"])
        .map_or(&[][..], Node::seq)
        .iter()
        .enumerate()
    {
        let label = match r.get("name").and_then(Node::str) {
            Some(n) => format!("route {}", quote(n)),
            None => format!("route #{}", i + 1),
        };
        let matches = r.get("match").map_or(&[][..], Node::seq);
        let clauses = if matches.is_empty() {
            vec![Clause {
                color: Vec::new(),
                other: false,
            }]
        } else {
            matches
                .iter()
                .map(|m| clause(header, m, file))
                .collect::<Result<_, _>>()?
        };
        out.push(Route {
            label,
            at: loc(file, r.pos),
            clauses,
        });
    }
    Ok(out)
}

/// The route tables: one per VirtualService given, the Rollouts' header routes put above
/// the routes of the VirtualService they name, one generated per Canary.
fn tables(
    docs: &[(String, Node)],
    header: &str,
    errors: &mut Vec<String>,
) -> Result<Vec<Table>, String> {
    let kind = |d: &Node| d.get("kind").and_then(Node::str).unwrap_or("").to_string();
    let mut tables: Vec<(String, String, Table)> = Vec::new();
    for (file, d) in docs.iter().filter(|(_, d)| kind(d) == "VirtualService") {
        let (ns, name) = name_of(d);
        tables.push((
            ns.clone(),
            name.clone(),
            Table {
                title: format!("VirtualService {ns}/{name}"),
                at: loc(file, d.pos),
                routes: http_routes(header, d, file)?,
                partial: false,
                engine: false,
            },
        ));
    }
    for (file, ro) in docs.iter().filter(|(_, d)| kind(d) == "Rollout") {
        let (ns, name) = name_of(ro);
        let Some(canary) = ro.path(&["spec", "strategy", "canary"]) else {
            continue;
        };
        let tr = canary.get("trafficRouting");
        let order: Vec<&str> = tr
            .and_then(|t| t.get("managedRoutes"))
            .map_or(&[][..], Node::seq)
            .iter()
            .filter_map(|m| m.get("name").and_then(Node::str))
            .collect();
        let mut header_routes: Vec<(usize, Route)> = Vec::new();
        for step in canary.get("steps").map_or(&[][..], Node::seq) {
            let Some(hr) = step.get("setHeaderRoute") else {
                continue;
            };
            let Some(matches) = hr.get("match") else {
                continue;
            };
            let route_name = hr.get("name").and_then(Node::str).unwrap_or("");
            let mut clauses = Vec::new();
            for m in matches.seq() {
                let hname = m.get("headerName").and_then(Node::str).unwrap_or("");
                let test = match m.get("headerValue") {
                    Some(v) => color_test(header, hname, v, false, file)?,
                    None => None,
                };
                clauses.push(Clause {
                    other: test.is_none(),
                    color: test.into_iter().collect(),
                });
            }
            let rank = order
                .iter()
                .position(|n| *n == route_name)
                .unwrap_or(order.len());
            header_routes.retain(|(_, r)| {
                r.label != format!("Rollout {ns}/{name} header route {}", quote(route_name))
            });
            header_routes.push((
                rank,
                Route {
                    label: format!("Rollout {ns}/{name} header route {}", quote(route_name)),
                    at: loc(file, hr.pos),
                    clauses,
                },
            ));
        }
        header_routes.sort_by_key(|(rank, _)| *rank);
        let vs_refs: Vec<&Node> = match tr.and_then(|t| t.get("istio")) {
            Some(istio) => match (istio.get("virtualService"), istio.get("virtualServices")) {
                (Some(one), _) => vec![one],
                (None, Some(many)) => many.seq().iter().collect(),
                (None, None) => Vec::new(),
            },
            None => Vec::new(),
        };
        for vs in vs_refs {
            let full = vs.get("name").and_then(Node::str).unwrap_or("");
            let (vs_name, vs_ns) = match full.split_once('.') {
                Some((n, s)) => (n.to_string(), s.to_string()),
                None => (full.to_string(), ns.clone()),
            };
            let mut routes: Vec<Route> = header_routes.iter().map(|(_, r)| r.clone()).collect();
            match tables
                .iter_mut()
                .find(|(n, m, _)| *n == vs_ns && *m == vs_name)
            {
                Some((_, _, t)) => {
                    let base = std::mem::take(&mut t.routes);
                    routes.extend(base);
                    t.routes = routes;
                    t.title = format!("{} with Rollout {ns}/{name}", t.title);
                    t.engine = true;
                }
                None => tables.push((
                    vs_ns.clone(),
                    vs_name.clone(),
                    Table {
                        title: format!("VirtualService {vs_ns}/{vs_name} of Rollout {ns}/{name}"),
                        at: loc(file, ro.pos),
                        routes,
                        partial: true,
                        engine: true,
                    },
                )),
            }
        }
    }
    for (file, c) in docs.iter().filter(|(_, d)| kind(d) == "Canary") {
        let (ns, name) = name_of(c);
        let Some(spec) = c.get("spec") else { continue };
        let apex = spec
            .path(&["service", "name"])
            .or_else(|| spec.path(&["targetRef", "name"]))
            .and_then(Node::str)
            .unwrap_or(&name)
            .to_string();
        if let Some((_, _, t)) = tables
            .iter()
            .find(|(n, m, t)| *n == ns && *m == apex && !t.partial)
        {
            errors.push(format!(
                "{} ({}) is written by hand, but Flagger generates it from Canary {ns}/{name} ({}) and overwrites it",
                t.title,
                t.at,
                loc(file, c.pos)
            ));
        }
        let service_match = spec.path(&["service", "match"]).map_or(&[][..], Node::seq);
        let ab = spec.path(&["analysis", "match"]).map_or(&[][..], Node::seq);
        let mut routes = Vec::new();
        if !ab.is_empty() {
            let clauses = ab
                .iter()
                .map(|m| {
                    let mut c = clause(header, m, file)?;
                    c.other |= !service_match.is_empty();
                    Ok(c)
                })
                .collect::<Result<Vec<_>, String>>()?;
            routes.push(Route {
                label: format!("Canary {ns}/{name} analysis.match"),
                at: loc(file, c.pos),
                clauses,
            });
        }
        let primary = if service_match.is_empty() {
            vec![Clause {
                color: Vec::new(),
                other: false,
            }]
        } else {
            service_match
                .iter()
                .map(|m| clause(header, m, file))
                .collect::<Result<_, _>>()?
        };
        routes.push(Route {
            label: format!("Canary {ns}/{name} route to {apex}-primary"),
            at: loc(file, c.pos),
            clauses: primary,
        });
        tables.push((
            ns.clone(),
            apex.clone(),
            Table {
                title: format!(
                    "VirtualService {ns}/{apex} generated by Flagger for Canary {ns}/{name}"
                ),
                at: loc(file, c.pos),
                routes,
                partial: false,
                engine: true,
            },
        ));
    }
    Ok(tables.into_iter().map(|(_, _, t)| t).collect())
}

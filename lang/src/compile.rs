//! Checks a parsed program and lowers it to the [`Program`] a request is evaluated against:
//! types checked, regexes compiled, lists turned into sets, every value given a slot.

use super::ast::{self, Expr, LiteralKind, Op, Spanned, ValueKind};
use super::error::{Diagnostic, ErrorKind};
use super::limits;
use super::pattern::{Pattern, PatternError};
use super::program::*;
use super::span::{LineIndex, Span};
use super::time::parse_rfc3339;
use ipnet::IpNet;
use std::net::IpAddr;

/// What a value can be compared as, decided by its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// `path`, `method`, `host`: text only.
    Str,
    /// Headers, query parameters, cookies: text that may also read as a number or version.
    Text,
    /// JWT claims: any JSON value.
    Claim,
    /// `bucket(..)`: a number 1..100; `split(..)`: a number in [0, 100).
    Num,
    /// `source.ip`.
    Ip,
}

impl Ty {
    fn describe(self) -> &'static str {
        match self {
            Ty::Str => "text (path, method, host)",
            Ty::Text => "a header, query or cookie value",
            Ty::Claim => "a token claim",
            Ty::Num => "a number (bucket or split)",
            Ty::Ip => "source.ip",
        }
    }
}

/// The header `split("group")` reads.
pub const REQUEST_ID: &str = "x-request-id";

pub(crate) struct Compiler<'s> {
    source: &'s str,
    lines: LineIndex,
    pub(crate) errors: Vec<Diagnostic>,
    needs: Needs,
    /// Automaton bytes of the regexes compiled so far, against `MAX_PROGRAM_DFA_BYTES`.
    regex_bytes: usize,
    /// Distinct (value, pattern) regex tests that scan, by memo slot (`MAX_REGEX_SCANS`).
    scans: Vec<(Val, String)>,
}

impl<'s> Compiler<'s> {
    pub(crate) fn new(source: &'s str, errors: Vec<Diagnostic>) -> Self {
        Compiler {
            source,
            lines: LineIndex::new(source),
            errors,
            needs: Needs::default(),
            regex_bytes: 0,
            scans: Vec::new(),
        }
    }

    fn error(&mut self, kind: ErrorKind, span: Span) {
        super::error::report(&mut self.errors, Diagnostic::new(kind, span));
    }

    #[inline(never)] // V8 compiles each function alone: see lang::compile
    pub(crate) fn program(mut self, ast: &ast::Program) -> Result<Program, Vec<Diagnostic>> {
        let mut rules = Vec::new();
        let mut default: Option<(Tag, Span)> = None;
        if ast.rules.len() > limits::MAX_RULES {
            let span = ast.rules[limits::MAX_RULES].keyword;
            self.error(
                ErrorKind::TooManyRules {
                    limit: limits::MAX_RULES,
                },
                span,
            );
        }
        let mut names: Vec<(String, Span)> = Vec::new();
        for rule in &ast.rules {
            let tag = self.tag(&rule.tag);
            let name = rule.name.as_ref().and_then(|n| {
                if !is_label(&n.node) {
                    self.error(ErrorKind::InvalidRuleName(n.node.clone()), n.span);
                    return None;
                }
                if let Some((_, first)) = names.iter().find(|(seen, _)| *seen == n.node) {
                    let first_line = self.lines.line(first.start);
                    self.error(ErrorKind::DuplicateRuleName { first_line }, n.span);
                    return None;
                }
                names.push((n.node.clone(), n.span));
                Some(n.node.clone())
            });
            if let Some((_, first)) = &default {
                let kind = match rule.condition {
                    None => ErrorKind::DuplicateDefault {
                        first_line: self.lines.line(first.start),
                    },
                    Some(_) => ErrorKind::DefaultNotLast,
                };
                self.error(kind, rule.keyword);
            }
            let window = self.window(rule);
            match &rule.condition {
                None => {
                    if default.is_none() {
                        default = tag.map(|t| (t, rule.keyword));
                    }
                }
                Some(expr) => {
                    let cond = self.cond(expr);
                    if let (Some(cond), Some(tag)) = (cond, tag) {
                        rules.push(Rule {
                            name,
                            cond,
                            window,
                            tag,
                            line: self.lines.line(rule.keyword.start),
                            span: rule.keyword.to(rule.tag.span),
                        });
                    }
                }
            }
        }
        if ast.rules.is_empty() && self.errors.is_empty() {
            self.error(ErrorKind::NoRules, Span::new(0, 0));
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        self.needs.clock = rules.iter().any(|r| !r.window.is_always());
        let default_line = default
            .as_ref()
            .map(|(_, span)| self.lines.line(span.start));
        Ok(Program {
            rules,
            default: default.map(|(t, _)| t),
            default_line,
            needs: self.needs,
        })
    }

    fn tag(&mut self, tag: &Spanned<String>) -> Option<Tag> {
        if is_label(&tag.node) {
            Some(Tag(tag.node.clone()))
        } else {
            self.error(ErrorKind::InvalidTag(tag.node.clone()), tag.span);
            None
        }
    }

    fn window(&mut self, rule: &ast::Rule) -> Window {
        let mut instant = |t: &Option<Spanned<String>>| {
            let t = t.as_ref()?;
            match parse_rfc3339(&t.node) {
                Ok(n) => Some(n),
                Err(reason) => {
                    self.error(
                        ErrorKind::InvalidTime {
                            text: t.node.clone(),
                            reason,
                        },
                        t.span,
                    );
                    None
                }
            }
        };
        let window = Window {
            from: instant(&rule.from),
            until: instant(&rule.until),
        };
        if let (Some(f), Some(u), Some(span)) = (window.from, window.until, &rule.until)
            && f >= u
        {
            self.error(ErrorKind::EmptyWindow, span.span);
        }
        window
    }

    fn cond(&mut self, expr: &Expr) -> Option<Cond> {
        match expr {
            Expr::Or(terms) => self.all_of(terms).map(Cond::Any),
            Expr::And(terms) => self.all_of(terms).map(Cond::All),
            Expr::Not(inner) => self.cond(inner).map(|c| Cond::Not(Box::new(c))),
            Expr::Exists(value) => self.value(value).map(|(val, _)| Cond::Exists {
                val,
                span: value.span,
            }),
            Expr::Bare(value) => {
                self.error(ErrorKind::ValueIsNotCondition, value.span);
                None
            }
            Expr::Invalid => None,
            Expr::Compare { value, op, literal } => {
                let lowered = self.value(value);
                let test = self.test(lowered.as_ref().map(|(_, ty)| *ty), op, literal);
                let (val, _) = lowered?;
                let test = test?;
                let scan = match (&test.check, &literal.node) {
                    (Check::Regex(p), LiteralKind::Str(source)) if p.scans() => {
                        Some(self.scan_slot(&val, source, literal.span)?)
                    }
                    _ => None,
                };
                Some(Cond::Test {
                    val,
                    test,
                    span: value.span.to(literal.span),
                    value: value.span,
                    scan,
                })
            }
        }
    }

    /// The memo slot shared by every test of `source` on `val`; a new pair past
    /// `MAX_REGEX_SCANS` is an error at `span`.
    fn scan_slot(&mut self, val: &Val, source: &str, span: Span) -> Option<u8> {
        if let Some(i) = self.scans.iter().position(|(v, s)| v == val && s == source) {
            return u8::try_from(i).ok();
        }
        if self.scans.len() >= limits::MAX_REGEX_SCANS {
            self.error(
                ErrorKind::TooManyRegexScans {
                    limit: limits::MAX_REGEX_SCANS,
                },
                span,
            );
            return None;
        }
        self.scans.push((val.clone(), source.to_string()));
        u8::try_from(self.scans.len() - 1).ok()
    }

    /// Lowers every term (so each reports its errors) and fails if any failed.
    fn all_of(&mut self, terms: &[Expr]) -> Option<Vec<Cond>> {
        let lowered: Vec<Option<Cond>> = terms.iter().map(|t| self.cond(t)).collect();
        lowered.into_iter().collect()
    }

    fn name(&mut self, name: &str, span: Span) -> Option<()> {
        if name.is_empty() {
            self.error(ErrorKind::EmptyName, span);
            None
        } else {
            Some(())
        }
    }

    fn value(&mut self, value: &ast::Value) -> Option<(Val, Ty)> {
        let span = value.span;
        Some(match &value.node {
            ValueKind::Header(name) => {
                self.name(name, span)?;
                let name = name.to_ascii_lowercase();
                (
                    Val::Header(Needs::slot(&mut self.needs.headers, &name)),
                    Ty::Text,
                )
            }
            ValueKind::Query(name) => {
                self.name(name, span)?;
                (
                    Val::Query(Needs::slot(&mut self.needs.queries, name)),
                    Ty::Text,
                )
            }
            ValueKind::Cookie(name) => {
                self.name(name, span)?;
                (
                    Val::Cookie(Needs::slot(&mut self.needs.cookies, name)),
                    Ty::Text,
                )
            }
            ValueKind::Token(path) => {
                if path.iter().any(String::is_empty) {
                    self.name("", span)?;
                }
                (
                    Val::Claim(Needs::slot(&mut self.needs.claims, path)),
                    Ty::Claim,
                )
            }
            ValueKind::Path => {
                self.needs.path = true;
                (Val::Path, Ty::Str)
            }
            ValueKind::Method => {
                self.needs.method = true;
                (Val::Method, Ty::Str)
            }
            ValueKind::Host => {
                self.needs.host = true;
                (Val::Host, Ty::Str)
            }
            ValueKind::SourceIp => {
                self.needs.source_ip = true;
                (Val::SourceIp, Ty::Ip)
            }
            ValueKind::Bucket { key, group } => {
                let key = self.value(key);
                let group = self.group(group.as_ref(), span, ErrorKind::MissingBucketGroup);
                let (key, _) = key?;
                (
                    Val::Bucket {
                        key: Box::new(key),
                        prefix: group?,
                    },
                    Ty::Num,
                )
            }
            ValueKind::Split { key, group } => {
                let key = match key {
                    Some(key) => self.value(key).map(|(v, _)| v),
                    // Envoy sets x-request-id at the edge, before any filter, and it travels
                    // with the request: the same request splits the same way on every hop.
                    None => Some(Val::Header(Needs::slot(
                        &mut self.needs.headers,
                        &REQUEST_ID.to_string(),
                    ))),
                };
                let group = self.group(group.as_ref(), span, ErrorKind::MissingSplitGroup);
                (
                    Val::Split {
                        key: Box::new(key?),
                        prefix: group?,
                    },
                    Ty::Num,
                )
            }
            ValueKind::Visitor => {
                self.needs.visitor.get_or_insert(span);
                (Val::Visitor, Ty::Str)
            }
            ValueKind::Baggage(name) => {
                self.name(name, span)?;
                (
                    Val::Baggage(Needs::slot(&mut self.needs.baggage, name)),
                    Ty::Text,
                )
            }
            ValueKind::Invalid => return None,
        })
    }

    /// The `group:` prefix a bucket or split hashes before its key.
    fn group(
        &mut self,
        group: Option<&Spanned<String>>,
        span: Span,
        missing: ErrorKind,
    ) -> Option<String> {
        match group {
            None => {
                self.error(missing, span);
                None
            }
            Some(g) if g.node.is_empty() => {
                self.error(ErrorKind::EmptyBucketGroup, g.span);
                None
            }
            Some(g) => Some(format!("{}:", g.node)),
        }
    }

    fn mismatch(&mut self, ty: Ty, op: &Spanned<Op>, wants: &'static str) -> Option<Test> {
        self.error(
            ErrorKind::TypeMismatch {
                value: ty.describe(),
                op: op.node.spelling().to_string(),
                wants,
            },
            op.span,
        );
        None
    }

    /// Checks the operator against the value's type (when known) and compiles the literal.
    #[inline(never)] // V8 compiles each function alone: see lang::compile
    fn test(&mut self, ty: Option<Ty>, op: &Spanned<Op>, lit: &ast::Literal) -> Option<Test> {
        let negate = matches!(op.node, Op::Ne | Op::NotIn | Op::NotMatch);
        let check = match op.node {
            Op::Eq | Op::Ne => {
                if ty == Some(Ty::Ip) {
                    let s = self.string_lit(ty, op, lit, "an IP address string")?;
                    let ip: IpAddr = match s.parse() {
                        Ok(ip) => ip,
                        Err(_) => {
                            self.error(ErrorKind::InvalidIp(s), lit.span);
                            return None;
                        }
                    };
                    Check::InNets(vec![IpNet::from(ip)])
                } else {
                    Check::Eq(self.scalar(ty, op, lit)?)
                }
            }
            Op::In | Op::NotIn => {
                let LiteralKind::List(items) = &lit.node else {
                    let span = lit.span;
                    self.error(
                        ErrorKind::Expected {
                            expected: "a [list] after `in`",
                            found: "a single value".into(),
                        },
                        span,
                    );
                    return None;
                };
                if items.is_empty() {
                    self.error(ErrorKind::EmptyList, lit.span);
                    return None;
                }
                if ty == Some(Ty::Ip) {
                    let nets: Option<Vec<IpNet>> =
                        items.iter().map(|item| self.net(ty, op, item)).collect();
                    Check::InNets(nets?)
                } else {
                    let (mut strings, mut others) = (Vec::new(), Vec::new());
                    let mut ok = true;
                    for item in items {
                        match self.scalar(ty, op, item) {
                            Some(Scalar::Str(s)) => strings.push(s),
                            Some(other) => others.push(other),
                            None => ok = false,
                        }
                    }
                    if !ok {
                        return None;
                    }
                    Check::OneOf(OneOf {
                        strings: StrSet::new(strings),
                        others,
                    })
                }
            }
            Op::Match | Op::NotMatch => {
                if matches!(ty, Some(Ty::Num | Ty::Ip)) {
                    return self.mismatch(ty?, op, "a value that is text");
                }
                let pattern = self.string_lit(ty, op, lit, "a regex string")?;
                Check::Regex(self.regex(pattern, lit.span)?)
            }
            Op::StartsWith | Op::EndsWith | Op::Contains => {
                if matches!(ty, Some(Ty::Num | Ty::Ip)) {
                    return self.mismatch(ty?, op, "a value that is text");
                }
                let s = self.string_lit(ty, op, lit, "a string")?;
                match op.node {
                    Op::StartsWith => Check::StartsWith(s),
                    Op::EndsWith => Check::EndsWith(s),
                    _ => Check::Contains(s),
                }
            }
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                if matches!(ty, Some(Ty::Str | Ty::Ip)) {
                    return self.mismatch(ty?, op, "a value that can be a number or version");
                }
                let order = match op.node {
                    Op::Lt => Order::Lt,
                    Op::Le => Order::Le,
                    Op::Gt => Order::Gt,
                    _ => Order::Ge,
                };
                let bound = match &lit.node {
                    LiteralKind::Num(n) => Bound::Num(*n),
                    LiteralKind::Version(v) if ty != Some(Ty::Num) => Bound::Version(v.clone()),
                    LiteralKind::Invalid => return None,
                    _ if ty == Some(Ty::Num) => {
                        return self.lit_mismatch(op, lit, Ty::Num, "a number");
                    }
                    _ => {
                        return self.lit_mismatch(
                            op,
                            lit,
                            ty.unwrap_or(Ty::Text),
                            "a number or version",
                        );
                    }
                };
                Check::Order(order, bound)
            }
            Op::Invalid => return None,
        };
        Some(Test { check, negate })
    }

    fn lit_mismatch(
        &mut self,
        op: &Spanned<Op>,
        lit: &ast::Literal,
        ty: Ty,
        wants: &'static str,
    ) -> Option<Test> {
        self.error(
            ErrorKind::TypeMismatch {
                value: ty.describe(),
                op: op.node.spelling().to_string(),
                wants,
            },
            lit.span,
        );
        None
    }

    fn string_lit(
        &mut self,
        ty: Option<Ty>,
        op: &Spanned<Op>,
        lit: &ast::Literal,
        wants: &'static str,
    ) -> Option<String> {
        match &lit.node {
            LiteralKind::Str(s) => Some(s.clone()),
            LiteralKind::Invalid => None,
            _ => {
                self.lit_mismatch(op, lit, ty.unwrap_or(Ty::Text), wants);
                None
            }
        }
    }

    /// A literal for `==`/`in`, checked against what the value can be.
    fn scalar(&mut self, ty: Option<Ty>, op: &Spanned<Op>, lit: &ast::Literal) -> Option<Scalar> {
        let scalar = match &lit.node {
            LiteralKind::Str(s) => Scalar::Str(s.clone()),
            LiteralKind::Num(n) => Scalar::Num(*n),
            LiteralKind::Version(v) => Scalar::Version(v.clone()),
            LiteralKind::Bool(b) => Scalar::Bool(*b),
            LiteralKind::List(_) => {
                self.error(
                    ErrorKind::Expected {
                        expected: "a single value (use `in` for a list)",
                        found: "a list".into(),
                    },
                    lit.span,
                );
                return None;
            }
            LiteralKind::Invalid => return None,
        };
        let fits = match (ty, &scalar) {
            (Some(Ty::Str), Scalar::Str(_)) => true,
            (Some(Ty::Str), _) => false,
            (Some(Ty::Num), Scalar::Num(_)) => true,
            (Some(Ty::Num), _) => false,
            _ => true,
        };
        if fits {
            Some(scalar)
        } else {
            let ty = ty.unwrap_or(Ty::Text);
            let wants = if ty == Ty::Num {
                "a number"
            } else {
                "a string"
            };
            self.lit_mismatch(op, lit, ty, wants);
            None
        }
    }

    fn net(&mut self, ty: Option<Ty>, op: &Spanned<Op>, lit: &ast::Literal) -> Option<IpNet> {
        let s = self.string_lit(ty, op, lit, "IP address or CIDR strings")?;
        let net = s
            .parse::<IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from));
        if net.is_none() {
            self.error(ErrorKind::InvalidIp(s), lit.span);
        }
        net.map(|n| n.trunc())
    }

    /// `span` is the string literal's, quotes included; the caret of an error inside the
    /// pattern ends where the offending part does.
    #[inline(never)] // V8 compiles each function alone: see lang::compile
    fn regex(&mut self, pattern: String, span: Span) -> Option<Pattern> {
        if pattern.chars().count() > limits::MAX_REGEX_CHARS {
            self.error(
                ErrorKind::RegexTooLong {
                    limit: limits::MAX_REGEX_CHARS,
                },
                span,
            );
            return None;
        }
        match Pattern::new(&pattern) {
            Ok(p) => {
                self.regex_bytes = self.regex_bytes.saturating_add(p.memory_usage());
                if self.regex_bytes > limits::MAX_PROGRAM_DFA_BYTES {
                    self.error(
                        ErrorKind::RegexesTooLarge {
                            limit: limits::MAX_PROGRAM_DFA_BYTES,
                        },
                        span,
                    );
                    return None;
                }
                Some(p)
            }
            Err(PatternError::Syntax(e)) => {
                // The position stays the string's (tools and tests key on it); the caret runs
                // from its opening quote to the end of the offending part of the pattern.
                let literal = span.text(self.source);
                let end = span.start + source_offset(literal, e.span.end).max(1);
                let at = Span::new(span.start, end.min(span.end));
                self.error(
                    ErrorKind::InvalidRegex {
                        pattern,
                        reason: e.message,
                    },
                    at,
                );
                None
            }
            Err(PatternError::TooLarge { limit }) => {
                self.error(ErrorKind::RegexTooComplex { pattern, limit }, span);
                None
            }
        }
    }
}

/// Where byte `offset` of a decoded string lies in its literal's source text (`"..."` with
/// the language's escapes), so a caret can point inside a regex. Walks the escapes the lexer
/// decodes; an offset past the end maps to the closing quote.
fn source_offset(literal: &str, offset: usize) -> usize {
    let mut decoded = 0;
    let mut chars = literal.char_indices().skip(1).peekable();
    while let Some((at, c)) = chars.next() {
        if decoded >= offset || (c == '"' && chars.peek().is_none()) {
            return at;
        }
        decoded += match c {
            '\\' => match chars.next() {
                Some((_, 'u')) => {
                    let mut code = String::new();
                    while let Some((_, d)) = chars.next_if(|&(_, d)| d != '}') {
                        code.push(d);
                    }
                    chars.next();
                    u32::from_str_radix(code.trim_start_matches('{'), 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map_or(1, char::len_utf8)
                }
                _ => 1,
            },
            c => c.len_utf8(),
        };
    }
    literal.len()
}

/// Tags and rule names end up in header values and metric names: keep them to a safe alphabet.
fn is_label(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b))
}

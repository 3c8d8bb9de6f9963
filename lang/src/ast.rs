//! The parsed program, before any checking: what the user wrote, with spans.

use super::span::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `match "name" { .. }`: an optional name for metrics and explanations.
    pub name: Option<Spanned<String>>,
    /// `None` for `default`.
    pub condition: Option<Expr>,
    pub from: Option<Spanned<String>>,
    pub until: Option<Spanned<String>>,
    pub tag: Spanned<String>,
    /// The `match` or `default` keyword.
    pub keyword: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Value),
    Compare {
        value: Value,
        op: Spanned<Op>,
        literal: Literal,
    },
    /// A value used where a condition is expected.
    Bare(Value),
    /// Something that failed to parse; already reported.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    StartsWith,
    EndsWith,
    Contains,
    /// An operator the parser did not know; already reported.
    Invalid,
}

impl Op {
    pub fn spelling(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Match => "=~",
            Op::NotMatch => "!~",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Contains => "contains",
            Op::Invalid => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Header(String),
    Query(String),
    Cookie(String),
    /// A claim path: `token["a"]["b"]` is `["a", "b"]`.
    Token(Vec<String>),
    Path,
    Method,
    Host,
    SourceIp,
    Bucket {
        key: Box<Value>,
        group: Option<Spanned<String>>,
    },
    /// `split(key, "group")`, or `split("group")` keyed by the request id.
    Split {
        key: Option<Box<Value>>,
        group: Option<Spanned<String>>,
    },
    /// The sticky visitor id (config `visitor`).
    Visitor,
    /// A W3C baggage member.
    Baggage(String),
    /// An unknown source; already reported.
    Invalid,
}

pub type Value = Spanned<ValueKind>;

#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    Str(String),
    Num(f64),
    Version(semver::Version),
    Bool(bool),
    List(Vec<Literal>),
    Invalid,
}

pub type Literal = Spanned<LiteralKind>;

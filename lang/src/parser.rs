//! Recursive-descent parser. On a syntax error it reports, skips to the next `match` or
//! `default`, and goes on, so one run reports the errors of every rule.
//!
//! ```text
//! program    := rule*
//! rule       := "match" STRING? "{" expr "}" window "->" STRING | "default" "->" STRING
//! window     := ("from" STRING)? ("until" STRING)?
//! expr       := and ("||" and)*
//! and        := unary ("&&" unary)*
//! unary      := "!" unary | "(" expr ")" | "exists" "(" value ")" | value (op literal)?
//! value      := header[S] | query[S] | cookie[S] | token[S]+ | path | method | host
//!             | source.ip | bucket "(" value ("," STRING)? ")"
//!             | split "(" (value ",")? STRING ")" | visitor | baggage "[" STRING "]"
//! literal    := STRING | NUMBER | VERSION | true | false | "[" literal ("," literal)* ","? "]"
//! ```

use super::ast::*;
use super::error::{Diagnostic, ErrorKind};
use super::lexer::{Tok, Token};
use super::limits;
use super::span::Span;

#[inline(never)] // V8 compiles each function alone: see lang::compile
pub fn parse(tokens: &[Token], errors: &mut Vec<Diagnostic>) -> Program {
    let mut p = Parser {
        tokens,
        pos: 0,
        errors,
        depth: 0,
    };
    let mut rules = Vec::new();
    while p.peek() != &Tok::Eof {
        match p.rule() {
            Some(rule) => rules.push(rule),
            None => p.recover(),
        }
    }
    Program { rules }
}

struct Parser<'t, 'e> {
    tokens: &'t [Token],
    pos: usize,
    errors: &'e mut Vec<Diagnostic>,
    depth: usize,
}

/// A syntax error was reported; the current rule is abandoned.
type Parsed<T> = Option<T>;

impl Parser<'_, '_> {
    fn token(&self) -> &Token {
        // The lexer always ends with Eof and the parser never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.token().tok
    }

    fn span(&self) -> Span {
        self.token().span
    }

    fn bump(&mut self) -> Token {
        let t = self.token().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == word)
    }

    fn fail<T>(&mut self, expected: &'static str) -> Parsed<T> {
        let found = self.peek().describe();
        super::error::report(
            self.errors,
            Diagnostic::new(ErrorKind::Expected { expected, found }, self.span()),
        );
        None
    }

    fn require(&mut self, tok: Tok, expected: &'static str) -> Parsed<Span> {
        if *self.peek() == tok {
            Some(self.bump().span)
        } else {
            self.fail(expected)
        }
    }

    fn string(&mut self, expected: &'static str) -> Parsed<Spanned<String>> {
        match self.peek().clone() {
            Tok::Str(s) => Some(Spanned {
                node: s,
                span: self.bump().span,
            }),
            _ => self.fail(expected),
        }
    }

    /// Skips to the start of the next rule, always moving at least one token.
    fn recover(&mut self) {
        self.bump();
        while !matches!(self.peek(), Tok::Eof) && !self.is_word("match") && !self.is_word("default")
        {
            self.bump();
        }
    }

    fn rule(&mut self) -> Parsed<Rule> {
        let keyword = self.span();
        if self.is_word("default") {
            self.bump();
            self.require(Tok::Arrow, "`->` after `default`")?;
            let tag = self.string("a tag string after `->`")?;
            return Some(Rule {
                name: None,
                condition: None,
                from: None,
                until: None,
                tag,
                keyword,
            });
        }
        if !self.is_word("match") {
            return self.fail("`match` or `default`");
        }
        self.bump();
        let name = match self.peek() {
            Tok::Str(_) => Some(self.string("a rule name")?),
            _ => None,
        };
        self.require(Tok::LBrace, "`{` (or a quoted rule name) after `match`")?;
        self.depth = 0;
        let condition = self.expr()?;
        self.require(Tok::RBrace, "`}` or an operator (`&&`, `||`)")?;
        let mut from = None;
        let mut until = None;
        if self.is_word("from") {
            self.bump();
            from = Some(self.string("an RFC 3339 time string after `from`")?);
        }
        if self.is_word("until") {
            self.bump();
            until = Some(self.string("an RFC 3339 time string after `until`")?);
        }
        self.require(Tok::Arrow, "`->`, `from` or `until` after `}`")?;
        let tag = self.string("a tag string after `->`")?;
        Some(Rule {
            name,
            condition: Some(condition),
            from,
            until,
            tag,
            keyword,
        })
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        self.depth += 1;
        if self.depth > limits::MAX_DEPTH {
            super::error::report(
                self.errors,
                Diagnostic::new(
                    ErrorKind::TooDeep {
                        limit: limits::MAX_DEPTH,
                    },
                    self.span(),
                ),
            );
            return None;
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn expr(&mut self) -> Parsed<Expr> {
        let mut terms = vec![self.and()?];
        while *self.peek() == Tok::OrOr {
            self.bump();
            terms.push(self.and()?);
        }
        Some(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Parsed<Expr> {
        let mut terms = vec![self.unary()?];
        while *self.peek() == Tok::AndAnd {
            self.bump();
            terms.push(self.unary()?);
        }
        Some(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self) -> Parsed<Expr> {
        match self.peek() {
            Tok::Bang => {
                self.bump();
                let inner = self.nested(|p| p.unary())?;
                Some(Expr::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.bump();
                let inner = self.nested(|p| p.expr())?;
                self.require(Tok::RParen, "`)`")?;
                Some(inner)
            }
            Tok::Ident(w) if w == "exists" => {
                self.bump();
                self.require(Tok::LParen, "`(` after `exists`")?;
                let value = self.value()?;
                self.require(Tok::RParen, "`)`")?;
                Some(Expr::Exists(value))
            }
            _ => {
                let value = self.value()?;
                match self.operator()? {
                    Some(op) if op.node == Op::Invalid => Some(Expr::Invalid),
                    Some(op) => {
                        let literal = self.literal()?;
                        Some(Expr::Compare { value, op, literal })
                    }
                    None => Some(Expr::Bare(value)),
                }
            }
        }
    }

    /// `Some(None)` when no operator follows (the value stands alone).
    fn operator(&mut self) -> Parsed<Option<Spanned<Op>>> {
        let start = self.span();
        let op = match self.peek().clone() {
            Tok::Symbol(s) => {
                self.bump();
                match s.as_str() {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "=~" => Op::Match,
                    "!~" => Op::NotMatch,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return self.unknown_operator(s, start),
                }
            }
            Tok::Ident(w) => {
                self.bump();
                match w.as_str() {
                    "in" => Op::In,
                    "starts_with" => Op::StartsWith,
                    "ends_with" => Op::EndsWith,
                    "contains" => Op::Contains,
                    "not" if self.is_word("in") => {
                        self.bump();
                        Op::NotIn
                    }
                    _ => return self.unknown_operator(w, start),
                }
            }
            _ => return Some(None),
        };
        Some(Some(Spanned {
            node: op,
            span: start.to(self.tokens[self.pos - 1].span),
        }))
    }

    /// Reports an unknown operator; the caller skips its operand so the rule's other errors show.
    fn unknown_operator(&mut self, spelled: String, span: Span) -> Parsed<Option<Spanned<Op>>> {
        super::error::report(
            self.errors,
            Diagnostic::new(ErrorKind::UnknownOperator(spelled), span),
        );
        self.literal_quiet();
        Some(Some(Spanned {
            node: Op::Invalid,
            span,
        }))
    }

    /// Consumes a literal if one follows, without reporting.
    fn literal_quiet(&mut self) {
        match self.peek() {
            Tok::Str(_) | Tok::Num(_) | Tok::Version(_) => {
                self.bump();
            }
            Tok::Ident(w) if w == "true" || w == "false" => {
                self.bump();
            }
            Tok::LBracket => {
                while !matches!(self.peek(), Tok::RBracket | Tok::Eof | Tok::RBrace) {
                    self.bump();
                }
                if *self.peek() == Tok::RBracket {
                    self.bump();
                }
            }
            _ => {}
        }
    }

    fn name_index(&mut self) -> Parsed<Spanned<String>> {
        self.require(Tok::LBracket, "`[` and a quoted name")?;
        let name = self.string("a quoted name")?;
        self.require(Tok::RBracket, "`]`")?;
        Some(name)
    }

    fn value(&mut self) -> Parsed<Value> {
        let start = self.span();
        let Tok::Ident(word) = self.peek().clone() else {
            return self.fail("a value such as header[\"x\"], cookie[\"x\"], path or bucket(..)");
        };
        self.bump();
        let kind = match word.as_str() {
            "header" => ValueKind::Header(self.name_index()?.node),
            "query" => ValueKind::Query(self.name_index()?.node),
            "cookie" => ValueKind::Cookie(self.name_index()?.node),
            "token" => {
                let mut path = vec![self.name_index()?.node];
                while *self.peek() == Tok::LBracket {
                    path.push(self.name_index()?.node);
                }
                ValueKind::Token(path)
            }
            "baggage" => ValueKind::Baggage(self.name_index()?.node),
            "visitor" => ValueKind::Visitor,
            "split" => {
                self.require(Tok::LParen, "`(` after `split`")?;
                // `split("group")`, or `split(key, "group")`.
                if let Tok::Str(_) = self.peek() {
                    let group = Some(self.string("a quoted group name")?);
                    self.require(Tok::RParen, "`)`")?;
                    ValueKind::Split { key: None, group }
                } else {
                    let (key, group) = self.key_and_group()?;
                    ValueKind::Split {
                        key: Some(Box::new(key)),
                        group,
                    }
                }
            }
            "path" => ValueKind::Path,
            "method" => ValueKind::Method,
            "host" => ValueKind::Host,
            "source" if *self.peek() == Tok::Dot => {
                self.bump();
                if self.is_word("ip") {
                    self.bump();
                    ValueKind::SourceIp
                } else {
                    let end = self.bump();
                    let spelled = match end.tok {
                        Tok::Ident(w) => format!("source.{w}"),
                        _ => "source.".to_string(),
                    };
                    super::error::report(
                        self.errors,
                        Diagnostic::new(ErrorKind::UnknownSource(spelled), start.to(end.span)),
                    );
                    ValueKind::Invalid
                }
            }
            "bucket" => {
                self.require(Tok::LParen, "`(` after `bucket`")?;
                let (key, group) = self.key_and_group()?;
                ValueKind::Bucket {
                    key: Box::new(key),
                    group,
                }
            }
            _ => {
                // Swallow an index or call so the rest of the rule still parses.
                if *self.peek() == Tok::LBracket {
                    let _ = self.name_index()?;
                }
                super::error::report(
                    self.errors,
                    Diagnostic::new(ErrorKind::UnknownSource(word), start),
                );
                ValueKind::Invalid
            }
        };
        let end = self.tokens[self.pos - 1].span;
        Some(Spanned {
            node: kind,
            span: start.to(end),
        })
    }

    /// `key, "group")` of a `bucket(` or `split(`: the group may be missing (the compiler says
    /// why it is needed).
    fn key_and_group(&mut self) -> Parsed<(Value, Option<Spanned<String>>)> {
        let key = self.nested(|p| p.value())?;
        let group = if *self.peek() == Tok::Comma {
            self.bump();
            Some(self.string("a quoted group name")?)
        } else {
            None
        };
        self.require(Tok::RParen, "`)` or `, \"group\"`")?;
        Some((key, group))
    }

    fn literal(&mut self) -> Parsed<Literal> {
        let span = self.span();
        let node = match self.peek().clone() {
            Tok::Str(s) => LiteralKind::Str(s),
            Tok::Num(n) => LiteralKind::Num(n),
            Tok::Version(v) => LiteralKind::Version(v),
            Tok::Ident(w) if w == "true" => LiteralKind::Bool(true),
            Tok::Ident(w) if w == "false" => LiteralKind::Bool(false),
            Tok::LBracket => return self.list(),
            _ => return self.fail("a literal: string, number, version, true, false or [list]"),
        };
        self.bump();
        Some(Spanned { node, span })
    }

    fn list(&mut self) -> Parsed<Literal> {
        let start = self.bump().span;
        let mut items = Vec::new();
        while *self.peek() != Tok::RBracket {
            if items.len() == limits::MAX_LIST_ITEMS {
                super::error::report(
                    self.errors,
                    Diagnostic::new(
                        ErrorKind::ListTooLong {
                            limit: limits::MAX_LIST_ITEMS,
                        },
                        self.span(),
                    ),
                );
                return None;
            }
            if *self.peek() == Tok::LBracket {
                return self.fail("a string, number, version or boolean (lists do not nest)");
            }
            items.push(self.literal()?);
            if *self.peek() == Tok::Comma {
                self.bump();
            } else if *self.peek() != Tok::RBracket {
                return self.fail("`,` or `]`");
            }
        }
        let end = self.bump().span;
        Some(Spanned {
            node: LiteralKind::List(items),
            span: start.to(end),
        })
    }
}

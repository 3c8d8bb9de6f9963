//! Splits a program into tokens. Strings are decoded here (escapes checked), numbers and
//! versions parsed here, so the parser only sees well-formed literals plus lexical errors.

use super::error::{Diagnostic, ErrorKind};
use super::span::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Version(semver::Version),
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Dot,
    Arrow,
    Bang,
    AndAnd,
    OrOr,
    /// A comparison operator spelled with symbols: `==`, `!=`, `=~`, `!~`, `<`, `<=`, `>`, `>=`,
    /// or any other run of operator characters, which the parser reports as unknown.
    Symbol(String),
    Eof,
}

impl Tok {
    /// How the token reads in "expected X, found Y".
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string \"{}\"", super::error::escape(s)),
            // The caret under the source line shows which; printing the value would link float
            // formatting into the module for this message alone.
            Tok::Num(_) => "a number".into(),
            Tok::Version(v) => format!("version {v}"),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Dot => "`.`".into(),
            Tok::Arrow => "`->`".into(),
            Tok::Bang => "`!`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::Symbol(s) => format!("`{s}`"),
            Tok::Eof => "end of program".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

const OPERATOR_CHARS: &[char] = &['=', '!', '<', '>', '~', '&', '|'];

/// Tokenizes the whole source; lexical errors are pushed to `errors` and lexing goes on.
#[inline(never)] // V8 compiles each function alone: see lang::compile
pub fn lex(source: &str, errors: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lexer = Lexer {
        src: source,
        pos: 0,
        errors,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token();
        let eof = token.tok == Tok::Eof;
        tokens.push(token);
        if eof {
            return tokens;
        }
    }
}

struct Lexer<'s, 'e> {
    src: &'s str,
    pos: usize,
    errors: &'e mut Vec<Diagnostic>,
}

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().nth(n))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(&mut self, kind: ErrorKind, start: usize) {
        super::error::report(
            self.errors,
            Diagnostic::new(kind, Span::new(start, self.pos.max(start + 1))),
        );
    }

    fn skip_trivia(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn next_token(&mut self) -> Token {
        loop {
            if let Some(token) = self.try_token() {
                return token;
            }
        }
    }

    /// The next token, or `None` after reporting a character that starts none (the caller
    /// loops: a run of a million bad characters must not recurse a million deep).
    fn try_token(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Some(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let tok = match c {
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '"' => self.string(start),
            '-' if self.peek() == Some('>') => {
                self.bump();
                Tok::Arrow
            }
            '-' if self.peek().is_some_and(|c| c.is_ascii_digit()) => self.number(start),
            c if c.is_ascii_digit() => self.number(start),
            // ASCII only: words are keywords and sources, and Unicode tables would bloat the .wasm.
            c if c.is_ascii_alphabetic() || c == '_' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                Tok::Ident(self.src[start..self.pos].to_string())
            }
            '!' if self.peek() != Some('=') && self.peek() != Some('~') => Tok::Bang,
            c if OPERATOR_CHARS.contains(&c) => {
                while self.peek().is_some_and(|c| OPERATOR_CHARS.contains(&c)) {
                    self.bump();
                }
                match &self.src[start..self.pos] {
                    "&&" => Tok::AndAnd,
                    "||" => Tok::OrOr,
                    s => Tok::Symbol(s.to_string()),
                }
            }
            other => {
                // A run of bad characters is one error, not one per character.
                let extends = self.errors.last().is_some_and(|e| {
                    matches!(e.kind, ErrorKind::UnexpectedChar(_)) && e.span.end == start
                });
                match self.errors.last_mut() {
                    Some(last) if extends => last.span.end = self.pos,
                    _ => self.error(ErrorKind::UnexpectedChar(other), start),
                }
                return None;
            }
        };
        Some(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    #[inline(never)] // V8 compiles each function alone: see lang::compile
    fn string(&mut self, start: usize) -> Tok {
        let mut out = String::new();
        loop {
            let esc_start = self.pos;
            match self.bump() {
                None | Some('\n') => {
                    if self.src[..self.pos].ends_with('\n') {
                        self.pos -= 1;
                    }
                    self.error(ErrorKind::UnterminatedString, start);
                    return Tok::Str(out);
                }
                Some('"') => return Tok::Str(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('u') if self.peek() == Some('{') => {
                        self.bump();
                        let digits_start = self.pos;
                        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                            self.bump();
                        }
                        let digits = &self.src[digits_start..self.pos];
                        let closed = self.peek() == Some('}');
                        if closed {
                            self.bump();
                        }
                        match u32::from_str_radix(digits, 16)
                            .ok()
                            .and_then(char::from_u32)
                        {
                            Some(ch) if closed => out.push(ch),
                            _ => {
                                let text = self.src[esc_start..self.pos].to_string();
                                self.error(ErrorKind::InvalidEscape(text), esc_start);
                            }
                        }
                    }
                    // A backslash cannot escape the end of a line: the string is unterminated.
                    // (Stepping back to the backslash once looped forever; fuzzing found it.)
                    Some('\n') | None => {
                        self.pos = esc_start + 1;
                        self.error(ErrorKind::UnterminatedString, start);
                        return Tok::Str(out);
                    }
                    Some('\r') if self.peek() == Some('\n') => {
                        self.pos = esc_start + 1;
                        self.error(ErrorKind::UnterminatedString, start);
                        return Tok::Str(out);
                    }
                    Some(_) => {
                        let text = self.src[esc_start..self.pos].to_string();
                        self.error(ErrorKind::InvalidEscape(text), esc_start);
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// `5`, `-3`, `2.5` are numbers; `5.2.0`, `1.0.0-rc.1`, `2.0.0+build` are versions.
    #[inline(never)] // V8 compiles each function alone: see lang::compile
    fn number(&mut self, start: usize) -> Tok {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+')
            || (self.peek() == Some('-') && self.peek_at(1) != Some('>'))
        {
            self.bump();
        }
        let text = &self.src[start..self.pos];
        let dots = text.matches('.').count();
        let parsed = if dots >= 2 || text.contains(['-', '+']) && !text.starts_with('-') {
            semver::Version::parse(text).ok().map(Tok::Version)
        } else {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .filter(|_| {
                    text.bytes()
                        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                })
                .map(Tok::Num)
        };
        parsed.unwrap_or_else(|| {
            self.error(ErrorKind::InvalidNumber(text.to_string()), start);
            Tok::Num(0.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn toks(src: &str) -> (Vec<Tok>, Vec<Diagnostic>) {
        let mut errors = Vec::new();
        let t = lex(src, &mut errors).into_iter().map(|t| t.tok).collect();
        (t, errors)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn operators_and_words() {
        let (t, e) = toks(r#"a == "x" && !b != 1 || c =~ "y" -> "t" # comment"#);
        assert!(e.is_empty());
        assert_eq!(
            t,
            vec![
                Tok::Ident("a".into()),
                Tok::Symbol("==".into()),
                Tok::Str("x".into()),
                Tok::AndAnd,
                Tok::Bang,
                Tok::Ident("b".into()),
                Tok::Symbol("!=".into()),
                Tok::Num(1.0),
                Tok::OrOr,
                Tok::Ident("c".into()),
                Tok::Symbol("=~".into()),
                Tok::Str("y".into()),
                Tok::Arrow,
                Tok::Str("t".into()),
                Tok::Eof
            ]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numbers_versions_and_escapes() {
        let (t, e) = toks(r#"5 -3 2.5 5.2.0 1.0.0-rc.1 "a\"b\\c\u{e9}""#);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(t[0], Tok::Num(5.0));
        assert_eq!(t[1], Tok::Num(-3.0));
        assert_eq!(t[2], Tok::Num(2.5));
        assert_eq!(t[3], Tok::Version(semver::Version::new(5, 2, 0)));
        assert!(matches!(&t[4], Tok::Version(v) if v.pre.as_str() == "rc.1"));
        assert_eq!(t[5], Tok::Str("a\"b\\cé".into()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn errors_are_collected_and_lexing_goes_on() {
        let (t, e) = toks("\"abc\n$ \"\\q\" 1.2.x");
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(e[0].kind, ErrorKind::UnterminatedString);
        assert_eq!(e[1].kind, ErrorKind::UnexpectedChar('$'));
        assert_eq!(e[2].kind, ErrorKind::InvalidEscape("\\q".into()));
        assert_eq!(e[3].kind, ErrorKind::InvalidNumber("1.2.x".into()));
        assert_eq!(t.last(), Some(&Tok::Eof));
    }
}

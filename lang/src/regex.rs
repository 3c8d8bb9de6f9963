//! The language's regex syntax, parsed into a small tree and compiled to a Thompson NFA that
//! `pattern` determinizes.
//!
//! The syntax and its meaning are regex-lite's, the engine the language used before (its
//! parser is ported here; regex-lite is MIT/Apache-2.0): RE2 syntax without Unicode classes.
//! - `.`, literals and negated classes work on Unicode scalar values;
//! - `\d`, `\s`, `\w`, `\b`, `\B`, `\<`, `\>`, `\b{start}`, `\b{end}`, `\b{start-half}`,
//!   `\b{end-half}` and `[[:alpha:]]`-style classes are ASCII;
//! - `(?i)` folds ASCII letters only, with regex-lite's fold of a class range (a range that
//!   overlaps both `a-z` and `A-Z`, like `[B-c]`, gains the other case of its `a-z` part only);
//! - the `u` flag is accepted and does nothing;
//! - `\p{..}`, nested classes, class set operations, look-around and backreferences are
//!   rejected.
//!
//! Written here rather than taken from regex-syntax: its parser and HIR, with regex-automata's
//! HIR compiler, cost about 60 KB of .wasm, and its Unicode-mode translation needs tables (or,
//! with Unicode off, makes `.` match a single byte). What is ours is checked against regex-lite
//! itself by the property tests and the `regex` fuzz target. Captures and greediness are
//! dropped: the language only asks whether a pattern matches.

pub use super::automaton::Look;
use super::automaton::{Builder, Nfa, StateId, TooLarge, Transition};
use regex_syntax::utf8::Utf8Sequences;
use std::ops::Range;

/// A pattern the language rejects, with the byte range of the pattern to point at.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Range<usize>,
}

/// A parsed pattern. Classes hold sorted, non-overlapping, non-adjacent ranges.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Empty,
    Class(Vec<(char, char)>),
    Look(Look),
    Repeat(Box<Node>, u32, Option<u32>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
}

/// Bounds the parser enforces, each with a positioned error.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Depth of groups and of repetitions of repetitions.
    pub nesting: u32,
    /// The largest count in `{n}`, `{n,}` or `{n,m}`.
    pub repetition: u32,
}

pub fn parse(pattern: &str, limits: Limits) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        pattern,
        pos: 0,
        depth: 0,
        flags: Flags::default(),
        names: Vec::new(),
        limits,
    };
    let node = p.inner()?;
    if too_deep(&node, limits.nesting) {
        return Err(SyntaxError {
            message: format!("pattern nests too deeply (limit {})", limits.nesting),
            span: 0..pattern.len(),
        });
    }
    Ok(node)
}

fn too_deep(node: &Node, budget: u32) -> bool {
    let Some(budget) = budget.checked_sub(1) else {
        return true;
    };
    match node {
        Node::Empty | Node::Class(_) | Node::Look(_) => false,
        Node::Repeat(sub, ..) => too_deep(sub, budget),
        Node::Concat(v) | Node::Alt(v) => v.iter().any(|n| too_deep(n, budget)),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    case_insensitive: bool,
    multi_line: bool,
    dot_matches_new_line: bool,
    crlf: bool,
    ignore_whitespace: bool,
}

/// What an escape or a class item is, as regex-lite tells them apart: only a `Char` can end a
/// range, and a `Look` cannot be in a class.
enum Prim {
    Char(char),
    Class(Vec<(char, char)>),
    Look(Look),
}

struct Parser<'p> {
    pattern: &'p str,
    pos: usize,
    depth: u32,
    flags: Flags,
    names: Vec<&'p str>,
    limits: Limits,
}

/// The helpers are `#[inline(never)]`: this runs once per pattern at compile time, and at the
/// crate's `opt-level = 3` inlining their character reads everywhere cost 18 KB of .wasm.
impl<'p> Parser<'p> {
    #[inline(never)]
    fn fail<T>(&self, message: &str, start: usize) -> Result<T, SyntaxError> {
        let end = self.pos.max(start + 1).min(self.pattern.len()).max(start);
        Err(SyntaxError {
            message: message.to_string(),
            span: start..end,
        })
    }

    #[inline(never)]
    fn char(&self) -> Option<char> {
        self.pattern.get(self.pos..).and_then(|s| s.chars().next())
    }

    #[inline(never)]
    fn is(&self, c: char) -> bool {
        self.char() == Some(c)
    }

    fn done(&self) -> bool {
        self.pos >= self.pattern.len()
    }

    /// Moves past the current character; false if the pattern then ends.
    #[inline(never)]
    fn bump(&mut self) -> bool {
        if let Some(c) = self.char() {
            self.pos += c.len_utf8();
        }
        !self.done()
    }

    #[inline(never)]
    fn bump_if(&mut self, prefix: &str) -> bool {
        let hit = self
            .pattern
            .get(self.pos..)
            .is_some_and(|s| s.starts_with(prefix));
        if hit {
            self.pos += prefix.len();
        }
        hit
    }

    #[inline(never)]
    fn bump_and_bump_space(&mut self) -> bool {
        if !self.bump() {
            return false;
        }
        self.bump_space();
        !self.done()
    }

    /// In `x` mode, skips whitespace and `#` comments.
    #[inline(never)]
    fn bump_space(&mut self) {
        if !self.flags.ignore_whitespace {
            return;
        }
        while let Some(c) = self.char() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while let Some(c) = self.char() {
                    self.bump();
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    #[inline(never)]
    fn peek(&self) -> Option<char> {
        let c = self.char()?;
        self.pattern.get(self.pos + c.len_utf8()..)?.chars().next()
    }

    /// The next character after the current one, skipping whitespace in `x` mode.
    #[inline(never)]
    fn peek_space(&self) -> Option<char> {
        if !self.flags.ignore_whitespace {
            return self.peek();
        }
        let c = self.char()?;
        let mut in_comment = false;
        for ch in self.pattern.get(self.pos + c.len_utf8()..)?.chars() {
            if ch.is_whitespace() {
                continue;
            } else if !in_comment && ch == '#' {
                in_comment = true;
            } else if in_comment && ch == '\n' {
                in_comment = false;
            } else if !in_comment {
                return Some(ch);
            }
        }
        None
    }

    /// An alternation up to the end of the pattern or the `)` closing the current group.
    fn inner(&mut self) -> Result<Node, SyntaxError> {
        let depth = self.depth;
        if depth > self.limits.nesting {
            return self.fail(
                &format!("pattern nests too deeply (limit {})", self.limits.nesting),
                self.pos,
            );
        }
        self.depth += 1;
        let mut alternates = Vec::new();
        let mut concat = Vec::new();
        loop {
            self.bump_space();
            let Some(c) = self.char() else { break };
            let start = self.pos;
            match c {
                '(' => {
                    let saved = self.flags;
                    if let Some(sub) = self.group()? {
                        concat.push(sub);
                        self.flags = saved;
                    }
                    if !self.is(')') {
                        return Err(SyntaxError {
                            message: "found open group without closing ')'".into(),
                            span: start..start + 1,
                        });
                    }
                    self.bump();
                }
                ')' => {
                    if depth == 0 {
                        return self.fail("found closing ')' without matching '('", start);
                    }
                    break;
                }
                '|' => {
                    alternates.push(concat_of(std::mem::take(&mut concat)));
                    self.bump();
                }
                '[' => concat.push(self.class()?),
                '?' | '*' | '+' => self.uncounted(&mut concat)?,
                '{' => self.counted(&mut concat)?,
                _ => concat.push(self.primitive()?),
            }
        }
        self.depth -= 1;
        alternates.push(concat_of(concat));
        Ok(if alternates.len() == 1 {
            alternates.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alternates)
        })
    }

    #[inline(never)]
    fn primitive(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        let c = self.char().unwrap_or('\0');
        self.bump();
        Ok(match c {
            '\\' => match self.escape(start)? {
                Prim::Char(c) => self.literal(c),
                Prim::Class(ranges) => Node::Class(ranges),
                Prim::Look(look) => Node::Look(look),
            },
            '.' => Node::Class(self.dot()),
            '^' => Node::Look(self.start_anchor()),
            '$' => Node::Look(self.end_anchor()),
            c => self.literal(c),
        })
    }

    /// After a `\` (at `start`): a character, a Perl class or an assertion.
    #[inline(never)]
    fn escape(&mut self, start: usize) -> Result<Prim, SyntaxError> {
        let Some(c) = self.char() else {
            return self.fail(
                "saw start of escape sequence, but saw end of pattern before it finished",
                start,
            );
        };
        match c {
            '0'..='9' => {
                self.bump();
                return self.fail("backreferences are not supported", start);
            }
            'p' | 'P' => {
                self.bump();
                return self.fail(
                    "Unicode classes (\\p{..}, \\P{..}) are not supported; write the characters or ranges out",
                    start,
                );
            }
            'x' | 'u' | 'U' => return self.hex(start).map(Prim::Char),
            'd' | 's' | 'w' | 'D' | 'S' | 'W' => {
                self.bump();
                let mut ranges = match c.to_ascii_lowercase() {
                    'd' => DIGIT.to_vec(),
                    's' => SPACE.to_vec(),
                    _ => WORD.to_vec(),
                };
                if c.is_ascii_uppercase() {
                    ranges = negate(&ranges);
                }
                return Ok(Prim::Class(ranges));
            }
            _ => {}
        }
        self.bump();
        if is_escapable(c) {
            return Ok(Prim::Char(c));
        }
        Ok(match c {
            'a' => Prim::Char('\x07'),
            'f' => Prim::Char('\x0C'),
            't' => Prim::Char('\t'),
            'n' => Prim::Char('\n'),
            'r' => Prim::Char('\r'),
            'v' => Prim::Char('\x0B'),
            'A' => Prim::Look(Look::Start),
            'z' => Prim::Look(Look::End),
            'b' => {
                if self.is('{')
                    && let Some(look) = self.special_word_boundary()?
                {
                    return Ok(Prim::Look(look));
                }
                Prim::Look(Look::WordAscii)
            }
            'B' => Prim::Look(Look::WordAsciiNegate),
            '<' => Prim::Look(Look::WordStartAscii),
            '>' => Prim::Look(Look::WordEndAscii),
            _ => return self.fail("unrecognized escape sequence", start),
        })
    }

    /// `\b{start}` and friends; `None` (position unchanged) when the `{` opens a repetition.
    #[inline(never)]
    fn special_word_boundary(&mut self) -> Result<Option<Look>, SyntaxError> {
        let valid = |c: char| c.is_ascii_alphabetic() || c == '-';
        let start = self.pos;
        if !self.bump_and_bump_space() {
            return self.fail(
                "found start of special word boundary or repetition without an end",
                start,
            );
        }
        if !self.char().is_some_and(valid) {
            self.pos = start;
            return Ok(None);
        }
        let mut name = String::new();
        while let Some(c) = self.char().filter(|&c| valid(c)) {
            name.push(c);
            self.bump_and_bump_space();
        }
        if !self.is('}') {
            return self.fail(
                "special word boundary assertion is unclosed or has an invalid character",
                start,
            );
        }
        self.bump();
        Ok(Some(match name.as_str() {
            "start" => Look::WordStartAscii,
            "end" => Look::WordEndAscii,
            "start-half" => Look::WordStartHalfAscii,
            "end-half" => Look::WordEndHalfAscii,
            _ => {
                return self.fail("special word boundary assertion is unrecognized", start);
            }
        }))
    }

    /// `\xNN`, `\uNNNN`, `\UNNNNNNNN` or `\x{N..}` (positioned at the `x`, `u` or `U`).
    #[inline(never)]
    fn hex(&mut self, start: usize) -> Result<char, SyntaxError> {
        let len = match self.char() {
            Some('x') => 2,
            Some('u') => 4,
            _ => 8,
        };
        if !self.bump_and_bump_space() {
            return self.fail(
                "expected hexadecimal number, but saw end of pattern first",
                start,
            );
        }
        let mut digits = String::new();
        if self.is('{') {
            while self.bump_and_bump_space() && !self.is('}') {
                match self.char() {
                    Some(c) if c.is_ascii_hexdigit() => digits.push(c),
                    _ => {
                        return self.fail(
                            "expected hexadecimal number in braces, but got non-hex digit",
                            start,
                        );
                    }
                }
            }
            if self.done() {
                return self.fail(
                    "expected hexadecimal number, but saw end of pattern before closing brace",
                    start,
                );
            }
            self.bump_and_bump_space();
            if digits.is_empty() {
                return self.fail(
                    "expected hexadecimal number in braces, but got no digits",
                    start,
                );
            }
        } else {
            for i in 0..len {
                if i > 0 && !self.bump_and_bump_space() {
                    return self.fail(
                        "expected fixed length hexadecimal number, but saw end of pattern first",
                        start,
                    );
                }
                match self.char() {
                    Some(c) if c.is_ascii_hexdigit() => digits.push(c),
                    _ => {
                        return self.fail(
                            "expected fixed length hexadecimal number, but got non-hex digit",
                            start,
                        );
                    }
                }
            }
            self.bump_and_bump_space();
        }
        match u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
        {
            Some(c) => Ok(c),
            None => self.fail("invalid hexadecimal character code", start),
        }
    }

    /// A decimal in a counted repetition, with surrounding whitespace.
    #[inline(never)]
    fn decimal(&mut self) -> Result<u32, SyntaxError> {
        while self.char().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let start = self.pos;
        let mut digits = String::new();
        while let Some(c) = self.char().filter(char::is_ascii_digit) {
            digits.push(c);
            self.bump_and_bump_space();
        }
        while self.char().is_some_and(char::is_whitespace) {
            self.bump_and_bump_space();
        }
        if digits.is_empty() {
            return self.fail("expected decimal number, but found no digits", start);
        }
        match digits.parse() {
            Ok(n) => Ok(n),
            Err(_) => self.fail("got invalid decimal number", start),
        }
    }

    #[inline(never)]
    fn uncounted(&mut self, concat: &mut Vec<Node>) -> Result<(), SyntaxError> {
        let start = self.pos;
        let (min, max) = match self.char() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            _ => (1, None),
        };
        let Some(sub) = concat.pop() else {
            self.bump();
            return self.fail(
                "repetition operator must be applied to a sub-expression",
                start,
            );
        };
        if self.bump() && self.is('?') {
            self.bump();
        }
        concat.push(repeat(sub, min, max));
        Ok(())
    }

    #[inline(never)]
    fn counted(&mut self, concat: &mut Vec<Node>) -> Result<(), SyntaxError> {
        let start = self.pos;
        let Some(sub) = concat.pop() else {
            self.bump();
            return self.fail(
                "counted repetition operator must be applied to a sub-expression",
                start,
            );
        };
        if !self.bump_and_bump_space() {
            return self.fail("found unclosed counted repetition operator", start);
        }
        let min = self.decimal()?;
        let mut max = Some(min);
        if self.done() {
            return self.fail(
                "found incomplete and unclosed counted repetition operator",
                start,
            );
        }
        if self.is(',') {
            if !self.bump_and_bump_space() {
                return self.fail(
                    "found counted repetition operator with a comma that is unclosed",
                    start,
                );
            }
            max = if self.is('}') {
                None
            } else {
                Some(self.decimal()?)
            };
            if self.done() {
                return self.fail(
                    "found counted repetition with min and max that is unclosed",
                    start,
                );
            }
        }
        if !self.is('}') {
            return self.fail(
                "expected closing brace for counted repetition, but got something else",
                start,
            );
        }
        self.bump();
        let end = self.pos;
        if self.bump_space_then('?') {
            self.bump();
        }
        if max.is_some_and(|max| min > max) {
            return self.fail(
                "found counted repetition with a min bigger than its max",
                start,
            );
        }
        if max.unwrap_or(min) > self.limits.repetition {
            let shown = self.pattern.get(start..end).unwrap_or("{..}");
            return Err(SyntaxError {
                message: format!(
                    "counted repetition `{shown}` is above the limit of {}",
                    self.limits.repetition
                ),
                span: start..end,
            });
        }
        concat.push(repeat(sub, min, max));
        Ok(())
    }

    /// regex-lite skips `x`-mode space before a lazy `?` only through `bump_and_bump_space`.
    fn bump_space_then(&mut self, c: char) -> bool {
        self.bump_space();
        self.is(c)
    }

    /// At a `(`: a group (`Some`), or a flag directive such as `(?i)` (`None`), which changes
    /// `self.flags` for the rest of the enclosing group.
    #[inline(never)]
    fn group(&mut self) -> Result<Option<Node>, SyntaxError> {
        let start = self.pos;
        self.bump_and_bump_space();
        if self.bump_if("?=") || self.bump_if("?!") || self.bump_if("?<=") || self.bump_if("?<!") {
            return self.fail("look-around is not supported", start);
        }
        if self.bump_if("?P<") || self.bump_if("?<") {
            self.capture_name(start)?;
            return self.inner().map(Some);
        }
        if self.bump_if("?") {
            if self.done() {
                return self.fail("expected closing ')', but got end of pattern", start);
            }
            let flags_start = self.pos;
            self.flags = self.parse_flags(start)?;
            if self.is(')') {
                if self.pos == flags_start {
                    return self.fail("empty flag directive '(?)' is not allowed", start);
                }
                return Ok(None);
            }
            self.bump();
            return self.inner().map(Some);
        }
        self.inner().map(Some)
    }

    #[inline(never)]
    fn capture_name(&mut self, start: usize) -> Result<(), SyntaxError> {
        let name_start = self.pos;
        if self.done() {
            return self.fail("expected capture group name, but got end of pattern", start);
        }
        while let Some(c) = self.char() {
            if c == '>' {
                break;
            }
            let ok = if self.pos == name_start {
                c == '_' || c.is_alphabetic()
            } else {
                c == '_' || c == '.' || c == '[' || c == ']' || c.is_alphanumeric()
            };
            if !ok {
                return self.fail("invalid group name", start);
            }
            self.bump();
        }
        if self.done() {
            return self.fail(
                "expected end of capture group name, but got end of pattern",
                start,
            );
        }
        let name = self.pattern.get(name_start..self.pos).unwrap_or("");
        self.bump();
        if name.is_empty() {
            return self.fail("empty capture group names are not allowed", start);
        }
        if self.names.contains(&name) {
            return self.fail("duplicate capture group name", start);
        }
        self.names.push(name);
        Ok(())
    }

    /// Flags up to the `:` or `)` that ends them (not consumed).
    #[inline(never)]
    fn parse_flags(&mut self, start: usize) -> Result<Flags, SyntaxError> {
        let mut flags = self.flags;
        let mut negate = false;
        let mut last_was_negation = false;
        let mut seen = [false; 128];
        while !self.is(':') && !self.is(')') {
            let c = self.char().unwrap_or(':');
            if c == '-' {
                last_was_negation = true;
                if negate {
                    return self.fail("inline flag negation cannot be repeated", start);
                }
                negate = true;
            } else {
                last_was_negation = false;
                let on = !negate;
                match c {
                    'i' => flags.case_insensitive = on,
                    'm' => flags.multi_line = on,
                    's' => flags.dot_matches_new_line = on,
                    'R' => flags.crlf = on,
                    'x' => flags.ignore_whitespace = on,
                    // Swapping greed changes no answer to "does it match"; `u` is a no-op.
                    'U' | 'u' => {}
                    _ => return self.fail("unrecognized inline flag", self.pos),
                }
                let slot = &mut seen[c as usize & 127];
                if *slot {
                    return self.fail("duplicate inline flag is not allowed", self.pos);
                }
                *slot = true;
            }
            if !self.bump() {
                return self.fail(
                    "expected ':' or ')' to end inline flags, but got end of pattern",
                    start,
                );
            }
        }
        if last_was_negation {
            return self.fail("inline flags cannot end with negation directive", start);
        }
        Ok(flags)
    }

    /// A bracketed class, positioned at its `[`.
    #[inline(never)]
    fn class(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        let mut union = Vec::new();
        if !self.bump_and_bump_space() {
            return self.fail("found unclosed character class", start);
        }
        let negated = self.is('^');
        if negated && !self.bump_and_bump_space() {
            return self.fail("negated character class has no closing bracket", start);
        }
        while self.is('-') {
            union.push(('-', '-'));
            if !self.bump_and_bump_space() {
                return self.fail(
                    "non-empty character class has no closing bracket after dash",
                    start,
                );
            }
        }
        if union.is_empty() && self.is(']') {
            union.push((']', ']'));
            if !self.bump_and_bump_space() {
                return self.fail(
                    "character class begins with literal ']' but has no closing bracket",
                    start,
                );
            }
        }
        loop {
            self.bump_space();
            let item = self.pos;
            match self.char() {
                None => return self.fail("found unclosed character class", start),
                Some('[') => {
                    if let Some(ranges) = self.posix_class() {
                        union.extend(ranges);
                        continue;
                    }
                    return self.fail("nested character classes are not supported", item);
                }
                Some(']') => {
                    self.bump();
                    let mut ranges = canonical(union);
                    // Fold before negating: `(?i)[^x]` excludes both cases.
                    if self.flags.case_insensitive {
                        ranges = fold(&ranges);
                    }
                    if negated {
                        ranges = negate(&ranges);
                    }
                    return Ok(Node::Class(ranges));
                }
                Some('&') if self.peek() == Some('&') => {
                    return self.fail("character class intersection is not supported", item);
                }
                Some('-') if self.peek() == Some('-') => {
                    return self.fail("character class difference is not supported", item);
                }
                Some('~') if self.peek() == Some('~') => {
                    return self.fail(
                        "character class symmetric difference is not supported",
                        item,
                    );
                }
                Some(_) => self.class_range(&mut union, start)?,
            }
        }
    }

    #[inline(never)]
    fn class_range(
        &mut self,
        union: &mut Vec<(char, char)>,
        class_start: usize,
    ) -> Result<(), SyntaxError> {
        let first_at = self.pos;
        let first = self.class_item()?;
        self.bump_space();
        if self.done() {
            return self.fail(
                "non-empty character class has no closing bracket",
                class_start,
            );
        }
        if !self.is('-') || self.peek_space() == Some(']') || self.peek_space() == Some('-') {
            match first {
                Prim::Char(c) => union.push((c, c)),
                Prim::Class(ranges) => union.extend(ranges),
                Prim::Look(_) => {
                    return self.fail("invalid escape sequence in character class", first_at);
                }
            }
            return Ok(());
        }
        if !self.bump_and_bump_space() {
            return self.fail(
                "non-empty character class has no closing bracket after dash",
                class_start,
            );
        }
        let second = self.class_item()?;
        let (Prim::Char(a), Prim::Char(b)) = (first, second) else {
            return self.fail(
                "character class ranges must start and end with a single character",
                first_at,
            );
        };
        if a > b {
            return self.fail("invalid range in character class", first_at);
        }
        union.push((a, b));
        Ok(())
    }

    #[inline(never)]
    fn class_item(&mut self) -> Result<Prim, SyntaxError> {
        let start = self.pos;
        let c = self.char().unwrap_or('\0');
        self.bump();
        if c == '\\' {
            // As in regex-lite, an escaped letter (`\x41`) under `(?i)` is already both cases,
            // so it can be a class item but not the end of a range.
            Ok(match self.escape(start)? {
                Prim::Char(c) if self.flags.case_insensitive && c.is_ascii_alphabetic() => {
                    Prim::Class(canonical(vec![
                        (c.to_ascii_uppercase(), c.to_ascii_uppercase()),
                        (c.to_ascii_lowercase(), c.to_ascii_lowercase()),
                    ]))
                }
                prim => prim,
            })
        } else {
            Ok(Prim::Char(c))
        }
    }

    /// `[:alpha:]` and friends inside a class; `None` (position unchanged) if this `[` does
    /// not open one.
    #[inline(never)]
    fn posix_class(&mut self) -> Option<Vec<(char, char)>> {
        let start = self.pos;
        let parsed = (|| {
            if !self.bump() || !self.is(':') || !self.bump() {
                return None;
            }
            let negated = self.is('^');
            if negated && !self.bump() {
                return None;
            }
            let name_start = self.pos;
            while !self.is(':') && self.bump() {}
            if self.done() {
                return None;
            }
            let name = self.pattern.get(name_start..self.pos)?;
            if !self.bump_if(":]") {
                return None;
            }
            let ranges = posix(name)?.to_vec();
            Some(if negated { negate(&ranges) } else { ranges })
        })();
        if parsed.is_none() {
            self.pos = start;
        }
        parsed
    }

    #[inline(never)]
    fn literal(&self, c: char) -> Node {
        if self.flags.case_insensitive && c.is_ascii_alphabetic() {
            return Node::Class(canonical(vec![
                (c.to_ascii_uppercase(), c.to_ascii_uppercase()),
                (c.to_ascii_lowercase(), c.to_ascii_lowercase()),
            ]));
        }
        Node::Class(vec![(c, c)])
    }

    #[inline(never)]
    fn dot(&self) -> Vec<(char, char)> {
        if self.flags.dot_matches_new_line {
            vec![('\0', char::MAX)]
        } else if self.flags.crlf {
            vec![('\0', '\x09'), ('\x0B', '\x0C'), ('\x0E', char::MAX)]
        } else {
            vec![('\0', '\x09'), ('\x0B', char::MAX)]
        }
    }

    fn start_anchor(&self) -> Look {
        match (self.flags.multi_line, self.flags.crlf) {
            (false, _) => Look::Start,
            (true, false) => Look::StartLF,
            (true, true) => Look::StartCRLF,
        }
    }

    fn end_anchor(&self) -> Look {
        match (self.flags.multi_line, self.flags.crlf) {
            (false, _) => Look::End,
            (true, false) => Look::EndLF,
            (true, true) => Look::EndCRLF,
        }
    }
}

fn concat_of(mut items: Vec<Node>) -> Node {
    match items.len() {
        0 => Node::Empty,
        1 => items.pop().unwrap_or(Node::Empty),
        _ => Node::Concat(items),
    }
}

fn repeat(sub: Node, min: u32, max: Option<u32>) -> Node {
    match (min, max) {
        (0, Some(0)) => Node::Empty,
        (1, Some(1)) => sub,
        _ => Node::Repeat(Box::new(sub), min, max),
    }
}

/// Characters regex-lite lets a `\` stand before to mean themselves.
fn is_escapable(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    ) || (c.is_ascii() && !c.is_ascii_alphanumeric() && c != '<' && c != '>')
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];

fn posix(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\x7F')],
        "blank" => &[('\t', '\t'), (' ', ' ')],
        "cntrl" => &[('\0', '\x1F'), ('\x7F', '\x7F')],
        "digit" => DIGIT,
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => SPACE,
        "upper" => &[('A', 'Z')],
        "word" => WORD,
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    })
}

/// The next and previous scalar values, stepping over the surrogate gap.
fn succ(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        c => char::from_u32(c as u32 + 1),
    }
}

fn pred(c: char) -> Option<char> {
    match c {
        '\u{E000}' => Some('\u{D7FF}'),
        c => (c as u32).checked_sub(1).and_then(char::from_u32),
    }
}

/// Sorted, with overlapping and adjacent ranges merged.
fn canonical(ranges: Vec<(char, char)>) -> Vec<(char, char)> {
    let ranges = super::sorted(ranges);
    let mut out: Vec<(char, char)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if succ(last.1).is_none_or(|n| a <= n) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn negate(ranges: &[(char, char)]) -> Vec<(char, char)> {
    let mut out = Vec::new();
    let mut next = Some('\0');
    for &(a, b) in ranges {
        if let Some(n) = next
            && n < a
            && let Some(p) = pred(a)
        {
            out.push((n, p));
        }
        next = succ(b);
    }
    if let Some(n) = next {
        out.push((n, char::MAX));
    }
    out
}

/// regex-lite's ASCII case fold of a canonical class: each range gains the other case of its
/// overlap with `a-z`, or if it has none, of its overlap with `A-Z`.
fn fold(ranges: &[(char, char)]) -> Vec<(char, char)> {
    let shift = |c: char, by: i32| char::from_u32((c as i32 + by) as u32).unwrap_or(c);
    let mut out = ranges.to_vec();
    for &(a, b) in ranges {
        if a <= 'z' && b >= 'a' {
            out.push((shift(a.max('a'), -32), shift(b.min('z'), -32)));
        } else if a <= 'Z' && b >= 'A' {
            out.push((shift(a.max('A'), 32), shift(b.min('Z'), 32)));
        }
    }
    canonical(out)
}

/// Whether every match must begin at the start of the haystack (`^...` without `(?m)`), so
/// the search needs no unanchored prefix and stops at the first byte that cannot match.
fn start_anchored(node: &Node) -> bool {
    match node {
        Node::Look(Look::Start) => true,
        Node::Empty | Node::Class(_) | Node::Look(_) => false,
        Node::Repeat(sub, min, _) => *min > 0 && start_anchored(sub),
        Node::Concat(items) => items.first().is_some_and(start_anchored),
        Node::Alt(branches) => branches.iter().all(start_anchored),
    }
}

/// The NFA of `node` for an unanchored search, within `size_limit` bytes of heap.
pub fn nfa(node: &Node, size_limit: usize) -> Result<Nfa, TooLarge> {
    let mut c = Thompson {
        b: Builder::new(size_limit),
    };
    let (start, end) = c.node(node)?;
    let matched = c.b.add_match()?;
    c.b.patch(end, matched)?;
    let anchored = start_anchored(node);
    let unanchored = if anchored {
        start
    } else {
        // `(?s-u:.)*?` before the pattern: any byte, any number of times.
        let prefix = c.b.add_union(vec![start])?;
        let any = c.b.add_range(Transition {
            start: 0,
            end: 255,
            next: prefix,
        })?;
        c.b.patch(prefix, any)?;
        prefix
    };
    Ok(c.b.build(unanchored, !anchored))
}

struct Thompson {
    b: Builder,
}

type Frag = (StateId, StateId);

impl Thompson {
    /// A fragment: its entry and an empty exit state to patch to what follows.
    fn node(&mut self, node: &Node) -> Result<Frag, TooLarge> {
        match node {
            Node::Empty => {
                let s = self.b.add_empty()?;
                Ok((s, s))
            }
            Node::Look(look) => {
                let end = self.b.add_empty()?;
                Ok((self.b.add_look(end, *look)?, end))
            }
            Node::Class(ranges) => self.class(ranges),
            Node::Concat(items) => {
                let mut items = items.iter();
                let Some(first) = items.next() else {
                    return self.node(&Node::Empty);
                };
                let (start, mut end) = self.node(first)?;
                for item in items {
                    let (s, e) = self.node(item)?;
                    self.b.patch(end, s)?;
                    end = e;
                }
                Ok((start, end))
            }
            Node::Alt(branches) => {
                let split = self.b.add_union(Vec::new())?;
                let end = self.b.add_empty()?;
                for branch in branches {
                    let (s, e) = self.node(branch)?;
                    self.b.patch(split, s)?;
                    self.b.patch(e, end)?;
                }
                Ok((split, end))
            }
            Node::Repeat(sub, min, max) => {
                let start = self.b.add_empty()?;
                let mut end = start;
                for _ in 0..*min {
                    let (s, e) = self.node(sub)?;
                    self.b.patch(end, s)?;
                    end = e;
                }
                match max {
                    None => {
                        // A loop: `split -> sub -> split`, `split -> exit`.
                        let split = self.b.add_union(Vec::new())?;
                        let (s, e) = self.node(sub)?;
                        self.b.patch(end, split)?;
                        self.b.patch(split, s)?;
                        self.b.patch(e, split)?;
                        let exit = self.b.add_empty()?;
                        self.b.patch(split, exit)?;
                        Ok((start, exit))
                    }
                    Some(max) => {
                        let exit = self.b.add_empty()?;
                        for _ in *min..*max {
                            let split = self.b.add_union(Vec::new())?;
                            let (s, e) = self.node(sub)?;
                            self.b.patch(end, split)?;
                            self.b.patch(split, s)?;
                            self.b.patch(split, exit)?;
                            end = e;
                        }
                        self.b.patch(end, exit)?;
                        Ok((start, exit))
                    }
                }
            }
        }
    }

    /// A class as UTF-8 byte sequences: one sparse state on the first byte, then chains whose
    /// common tails are shared (every multi-byte sequence ends in `[80-BF]`), so `.` costs
    /// about 8 states rather than 22. All paths end in one exit.
    fn class(&mut self, ranges: &[(char, char)]) -> Result<Frag, TooLarge> {
        let end = self.b.add_empty()?;
        let mut tails: Vec<(u8, u8, StateId, StateId)> = Vec::new();
        let mut heads: Vec<Transition> = Vec::new();
        let mut others = Vec::new();
        for &(a, b) in ranges {
            for seq in Utf8Sequences::new(a, b) {
                let Some((first, rest)) = seq.as_slice().split_first() else {
                    continue;
                };
                let mut next = end;
                for r in rest.iter().rev() {
                    next = match tails
                        .iter()
                        .find(|t| (t.0, t.1, t.2) == (r.start, r.end, next))
                    {
                        Some(t) => t.3,
                        None => {
                            let s = self.b.add_range(Transition {
                                start: r.start,
                                end: r.end,
                                next,
                            })?;
                            tails.push((r.start, r.end, next, s));
                            s
                        }
                    };
                }
                let t = Transition {
                    start: first.start,
                    end: first.end,
                    next,
                };
                // A sparse state's ranges must not overlap; two sequences of different ranges
                // can share a first byte (`\u{800}` and `\u{900}` both start with E0).
                if heads.last().is_some_and(|h| h.end >= t.start) {
                    others.push(self.b.add_range(t)?);
                } else {
                    heads.push(t);
                }
            }
        }
        let mut starts = Vec::with_capacity(others.len() + 1);
        match heads.len() {
            0 => {}
            1 => starts.push(self.b.add_range(heads[0])?),
            _ => starts.push(self.b.add_sparse(heads)?),
        }
        starts.extend(others);
        let start = match starts.len() {
            0 => self.b.add_fail()?,
            1 => starts[0],
            _ => self.b.add_union(starts)?,
        };
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const LIMITS: Limits = Limits {
        nesting: 128,
        repetition: 1000,
    };

    fn err(p: &str) -> SyntaxError {
        match parse(p, LIMITS) {
            Err(e) => e,
            Ok(n) => panic!("{p} parsed as {n:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejections_point_at_the_construct() {
        assert_eq!(err("ab\\pLc").span, 2..4);
        assert_eq!(err("a[b[c]]").span, 3..4);
        assert_eq!(err("[a&&b]").span, 2..3);
        let e = err("x\\w{1001}y");
        assert_eq!(e.span, 3..9);
        assert!(e.message.contains("`{1001}`"), "{}", e.message);
        assert_eq!(err("(a").span, 0..1);
        assert!(parse("\\w{1000}", LIMITS).is_ok());
        assert!(
            parse("a{,5}", LIMITS).is_err(),
            "regex-lite rejects an empty minimum"
        );
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(err(&deep).message.contains("nests too deeply"));
        let stars = format!("a{}", "*".repeat(200));
        assert!(err(&stars).message.contains("nests too deeply"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn classes_fold_negate_and_merge_as_regex_lite_does() {
        // B-c plus A-C (the fold of its a-c part); D-Z's lower case stays out.
        assert_eq!(fold(&[('B', 'c')]), vec![('A', 'c')]);
        assert_eq!(
            fold(&[('0', '9'), ('x', 'z')]),
            vec![('0', '9'), ('X', 'Z'), ('x', 'z')]
        );
        assert_eq!(
            negate(&[('\0', 'a'), ('\u{D7FF}', '\u{D7FF}')]),
            vec![('b', '\u{D7FE}'), ('\u{E000}', char::MAX)]
        );
        assert_eq!(negate(&[('\0', char::MAX)]), vec![]);
        assert_eq!(
            canonical(vec![('c', 'd'), ('a', 'b'), ('x', 'x')]),
            vec![('a', 'd'), ('x', 'x')]
        );
        assert_eq!(
            canonical(vec![('\u{D7FF}', '\u{D7FF}'), ('\u{E000}', '\u{E000}')]),
            vec![('\u{D7FF}', '\u{E000}')]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn start_anchoring_is_recognized() {
        for (p, anchored) in [
            ("^abc", true),
            ("^a|^b", true),
            ("^a|b", false),
            ("(?m)^a", false),
            ("\\Aa", true),
            ("a^", false),
            ("(^a)+", true),
            ("(^a)*", false),
        ] {
            let node = parse(p, LIMITS).unwrap_or(Node::Empty);
            assert_eq!(start_anchored(&node), anchored, "{p}");
        }
    }
}

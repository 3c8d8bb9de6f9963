//! Regexes as deterministic automata built once, at compile time, with a literal shortcut.
//!
//! Every accepted pattern is determinized fully when the program is compiled (a full DFA,
//! `automaton.rs`, with no Unicode tables): a request then costs one table step per byte of
//! the value, whatever the pattern, and nothing is built, cached or allocated while it is
//! served. That is what gives a stated worst case: the cost of a regex is bounded by the length
//! of the value alone, and the memory by `limits::MAX_REGEX_DFA_BYTES` per regex and
//! `limits::MAX_PROGRAM_DFA_BYTES` per program (one copy per VM); the number of passes a request
//! makes is bounded by `limits::MAX_REGEX_SCANS` (`compile.rs`, and the memo in `eval.rs`). A
//! pattern whose automaton would be larger is rejected with a diagnostic instead of being slow
//! at request time.
//!
//! A lazy DFA (`regex-automata`'s `hybrid`) was the other candidate: it builds states while
//! matching, within a bounded cache, and when that cache thrashes it either keeps rebuilding
//! (each byte then costs work proportional to the pattern) or gives up to a PikeVM (the same,
//! with a larger constant). Either way the worst case grows with the pattern, which the
//! hostile-input bound could not accept; the full DFA moves that cost to compile time, where
//! it is bounded and reported.
//!
//! The literal shortcuts stay: most rule regexes begin with plain text (`^/api/v2/orders/`,
//! `ShopApp/`, `^de`), and reading that text out of the pattern once lets many requests be
//! answered by `starts_with`/`contains`/`==` without running the automaton at all.

use super::automaton::Dfa;
use super::limits;
use super::regex::{self, SyntaxError};

/// A compiled regex and the cheapest sound way to evaluate it.
pub struct Pattern {
    /// Boxed: the byte classes are 256 bytes, and `Check` holds a `Pattern` inline.
    dfa: Box<Dfa>,
    plan: Plan,
}

/// Why a pattern was rejected; `span` is a byte range of the pattern (not of the program).
#[derive(Debug, Clone, PartialEq)]
pub enum PatternError {
    /// Not valid in the language's regex syntax (or a counted repetition above the limit).
    Syntax(SyntaxError),
    /// Its automaton would exceed a size limit; `limit` is in bytes.
    TooLarge { limit: usize },
}

/// What the leading literal of a pattern says about every haystack the regex matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Nothing useful: run the regex.
    RegexOnly,
    /// Every match starts the haystack with this text (`^lit...`); the regex decides the rest.
    Prefix(String),
    /// Every match contains this text (`lit...`); the regex decides the rest.
    Contains(String),
    /// The whole pattern is `^lit`: a match is exactly "starts with".
    IsPrefix(String),
    /// The whole pattern is `^lit$`: a match is exactly equality.
    IsExact(String),
    /// The whole pattern is `lit`: a match is exactly "contains".
    IsContained(String),
}

/// Shows the plan only: the DFA's own `Debug` prints its whole table, and linking it costs
/// kilobytes of .wasm for no reader.
impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Pattern {
    /// Parses, checks and determinizes `source`. Work and memory are bounded by the limits:
    /// the NFA by `MAX_REGEX_NFA_BYTES`, the DFA by `MAX_REGEX_DFA_BYTES`, the scratch space
    /// of determinization by `MAX_REGEX_DETERMINIZE_BYTES`.
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        let node = regex::parse(
            source,
            regex::Limits {
                nesting: limits::MAX_REGEX_NESTING,
                repetition: limits::MAX_REGEX_REPETITION,
            },
        )
        .map_err(PatternError::Syntax)?;
        let nfa =
            regex::nfa(&node, limits::MAX_REGEX_NFA_BYTES).map_err(|_| PatternError::TooLarge {
                limit: limits::MAX_REGEX_NFA_BYTES,
            })?;
        let dfa = Dfa::new(
            &nfa,
            limits::MAX_REGEX_DFA_BYTES,
            limits::MAX_REGEX_DETERMINIZE_BYTES,
        )
        .map_err(|_| PatternError::TooLarge {
            limit: limits::MAX_REGEX_DFA_BYTES,
        })?;
        Ok(Pattern {
            plan: plan(source),
            dfa: Box::new(dfa),
        })
    }

    /// Whether a test may read the whole value (a literal plan like `^lit` does not).
    #[inline]
    pub fn scans(&self) -> bool {
        !matches!(self.plan, Plan::IsPrefix(_) | Plan::IsExact(_))
    }

    /// Bytes of automaton this regex keeps for the life of the program.
    pub fn memory_usage(&self) -> usize {
        self.dfa.memory_usage()
    }

    #[inline]
    pub fn is_match(&self, haystack: &str) -> bool {
        match &self.plan {
            Plan::RegexOnly => self.run(haystack),
            Plan::Prefix(lit) => haystack.starts_with(lit.as_str()) && self.run(haystack),
            Plan::Contains(lit) => haystack.contains(lit.as_str()) && self.run(haystack),
            Plan::IsPrefix(lit) => haystack.starts_with(lit.as_str()),
            Plan::IsExact(lit) => haystack == lit,
            Plan::IsContained(lit) => haystack.contains(lit.as_str()),
        }
    }

    /// A short printable-ASCII string the regex matches, if one is found within a few thousand
    /// automaton states: a breadth-first walk of the DFA, so the shortest such string, letters
    /// and digits preferred. For tools that build example requests (the cockpit's samples).
    #[cfg(not(target_os = "wasi"))]
    pub fn example(&self) -> Option<String> {
        use std::collections::{HashSet, VecDeque};
        const MAX_STATES: usize = 4096;
        let bytes: Vec<u8> = (b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain((b' '..=b'~').filter(|b| !b.is_ascii_alphanumeric()))
            .collect();
        let dfa = &*self.dfa;
        let start = dfa.start();
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([(start, Vec::new())]);
        while let Some((state, text)) = queue.pop_front() {
            if dfa.ends_in_match(state) {
                let text = String::from_utf8(text).ok()?;
                // The walk mirrors the search; the search has the last word.
                return self.is_match(&text).then_some(text);
            }
            for &b in &bytes {
                let next = dfa.next(state, b);
                if dfa.is_dead(next) || seen.contains(&next) {
                    continue;
                }
                if seen.len() >= MAX_STATES {
                    return None;
                }
                seen.insert(next);
                let mut longer = text.clone();
                longer.push(b);
                queue.push_back((next, longer));
            }
        }
        None
    }

    /// One forward pass, stopping at the first byte where a match is certain or impossible.
    #[inline]
    fn run(&self, haystack: &str) -> bool {
        self.dfa.is_match(haystack.as_bytes())
    }
}

/// Escapes that stand for the character itself (`\<` and `\>` are word boundaries).
const LITERAL_ESCAPES: &str = "\\.+*?()|[]{}^$#&-~/";

/// Reads the pattern's leading literal. Conservative by construction: any alternation or
/// inline flag (`(?i)` changes case, `(?x)` whitespace, `(?m)` anchors) gives up, and the run
/// stops at the first character that is not plain text or an escaped punctuation mark.
fn plan(source: &str) -> Plan {
    if source.contains('|') || source.contains("(?") {
        return Plan::RegexOnly;
    }
    let (anchored, rest) = match source.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, source),
    };
    let mut literal = String::new();
    let mut chars = rest.chars().peekable();
    let mut stopped_at = None;
    while let Some(&c) = chars.peek() {
        match c {
            '\\' => {
                let mut ahead = chars.clone();
                ahead.next();
                match ahead.next() {
                    Some(e) if LITERAL_ESCAPES.contains(e) => {
                        literal.push(e);
                        chars = ahead;
                    }
                    _ => {
                        stopped_at = Some(c);
                        break;
                    }
                }
            }
            '.' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                stopped_at = Some(c);
                break;
            }
            _ => {
                literal.push(c);
                chars.next();
            }
        }
    }
    // `ab?`, `ab*`, `ab{0,2}`: the last character may be missing from a match; so may it in
    // `ab+*`, `ab+?` and `ab+{0,2}`, where a second quantifier follows the `+`.
    let requantified = stopped_at == Some('+') && {
        let mut ahead = chars.clone();
        ahead.next();
        matches!(ahead.next(), Some('?' | '*' | '{'))
    };
    if requantified || matches!(stopped_at, Some('?' | '*' | '{')) {
        literal.pop();
        stopped_at = Some('?');
    }
    if literal.is_empty() {
        return Plan::RegexOnly;
    }
    let tail: String = chars.collect();
    match (anchored, stopped_at, tail.as_str()) {
        (true, None, _) => Plan::IsPrefix(literal),
        (true, Some('$'), "$") => Plan::IsExact(literal),
        (false, None, _) => Plan::IsContained(literal),
        (true, _, _) => Plan::Prefix(literal),
        (false, _, _) => Plan::Contains(literal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn lit(s: &str) -> String {
        s.to_string()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn plans() {
        let cases = [
            ("^de", Plan::IsPrefix(lit("de"))),
            ("^v2\\.", Plan::IsPrefix(lit("v2."))),
            (
                "^/api/v2/orders/[0-9]+/items$",
                Plan::Prefix(lit("/api/v2/orders/")),
            ),
            (
                "ShopApp/[0-9]+\\.[0-9]+ \\(iOS",
                Plan::Contains(lit("ShopApp/")),
            ),
            ("^beta$", Plan::IsExact(lit("beta"))),
            ("beta", Plan::IsContained(lit("beta"))),
            ("^ab?c", Plan::Prefix(lit("a"))),
            ("ab*", Plan::Contains(lit("a"))),
            ("ab{0,3}", Plan::Contains(lit("a"))),
            ("ab+", Plan::Contains(lit("ab"))),
            ("ab+*", Plan::Contains(lit("a"))),
            ("ab+?c", Plan::Contains(lit("a"))),
            ("^ab+{0,2}", Plan::Prefix(lit("a"))),
            ("a+*", Plan::RegexOnly),
            ("a+?", Plan::RegexOnly),
            ("^ab+{0,1}c", Plan::Prefix(lit("a"))),
            ("a?", Plan::RegexOnly),
            ("^a|b", Plan::RegexOnly),
            ("(?i)beta", Plan::RegexOnly),
            ("\\d+", Plan::RegexOnly),
            ("^\\w", Plan::RegexOnly),
            ("[ab]c", Plan::RegexOnly),
            ("^", Plan::RegexOnly),
            ("", Plan::RegexOnly),
            ("^a$b", Plan::Prefix(lit("a"))),
            ("é+x", Plan::Contains(lit("é"))),
        ];
        for (source, want) in cases {
            assert_eq!(plan(source), want, "{source}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn examples_match_their_pattern() {
        let cases = [
            ("^v2\\..*", Some("v2.")),
            (
                "^/api/v2/orders/[0-9]+/items$",
                Some("/api/v2/orders/0/items"),
            ),
            ("ShopApp/[0-9]+\\.[0-9]+ \\(iOS", Some("ShopApp/0.0 (iOS")),
            ("^(beta|canary)$", Some("beta")),
            ("(?i)^BETA", Some("beta")),
            ("", Some("")),
            ("^é", None),
        ];
        for (source, want) in cases {
            let p = Pattern::new(source).unwrap_or_else(|e| panic!("{source}: {e:?}"));
            assert_eq!(p.example().as_deref(), want, "{source}");
        }
        let long = Pattern::new("^a{1000}$").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(long.example(), Some("a".repeat(1000)));
    }
}

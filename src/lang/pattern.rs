//! Regexes with a literal shortcut. Most rule regexes begin with plain text (`^/api/v2/orders/`,
//! `ShopApp/`, `^de`); regex-lite has no literal prefilter, so its PikeVM walks every byte of
//! every long header. Reading the leading literal out of the pattern once, at compile time,
//! lets most requests be answered by `starts_with`/`contains`, and some patterns need no regex
//! run at all.

use regex_lite::Regex;

/// A compiled regex and the cheapest sound way to evaluate it.
#[derive(Debug)]
pub struct Pattern {
    regex: Regex,
    plan: Plan,
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

impl Pattern {
    /// `regex` must have been built from `source` with default flags.
    pub fn new(source: &str, regex: Regex) -> Self {
        Pattern {
            plan: plan(source),
            regex,
        }
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        match &self.plan {
            Plan::RegexOnly => self.regex.is_match(haystack),
            Plan::Prefix(lit) => {
                haystack.starts_with(lit.as_str()) && self.regex.is_match(haystack)
            }
            Plan::Contains(lit) => haystack.contains(lit.as_str()) && self.regex.is_match(haystack),
            Plan::IsPrefix(lit) => haystack.starts_with(lit.as_str()),
            Plan::IsExact(lit) => haystack == lit,
            Plan::IsContained(lit) => haystack.contains(lit.as_str()),
        }
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
}

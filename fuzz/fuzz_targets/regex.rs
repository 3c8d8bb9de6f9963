//! The regex engine against regex-lite, the engine it replaced: on patterns assembled from
//! regex syntax fragments and arbitrary characters, both accept or both reject, and where both
//! accept they answer alike on every haystack. Our own limits (counted repetitions, nesting,
//! automaton sizes) may reject more; nothing else may differ.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use traffic_color::lang::limits;
use traffic_color::lang::pattern::{Pattern, PatternError};

const FRAGMENTS: &[&str] = &[
    "a", "b", "A", "é", "😀", "1", " ", "-", "_", ".", "\\.", "\\d", "\\w", "\\s", "\\W", "\\D",
    "\\S", "\\b", "\\B", "\\<", "\\>", "\\b{start}", "\\b{end}", "\\b{start-half}", "\\b{end-half}",
    "\\A", "\\z", "\\x41", "\\x{e9}", "\\u00e9", "\\n", "\\r", "\\t", "[", "]", "[^", "-", "a-z",
    "B-c", "[:alpha:]", "[:^digit:]", "&&", "--", "~~", "(", ")", "(?:", "(?i)", "(?i:", "(?-i)",
    "(?m)", "(?s)", "(?x)", "(?R)", "(?U)", "(?u)", "(?P<n>", "(?<m>", "(?=", "(?!", "^", "$", "?",
    "*", "+", "*?", "{", "}", ",", "{0,2}", "{2}", "{1,}", "{,3}", "{3,2}", "{ 2 }", "{1000}",
    "|", "\\p{L}", "\\pN", "\\1", "\\q", "#", "\\ ", "\n", "\r",
];

#[derive(Arbitrary, Debug)]
enum Piece {
    Fragment(u8),
    Char(char),
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    haystacks: Vec<String>,
}

fuzz_target!(|input: Input| {
    let mut pattern = String::new();
    for piece in input.pieces.iter().take(64) {
        match piece {
            Piece::Fragment(i) => pattern.push_str(FRAGMENTS[usize::from(*i) % FRAGMENTS.len()]),
            Piece::Char(c) => pattern.push(*c),
        }
    }
    let old = regex_lite::RegexBuilder::new(&pattern)
        .nest_limit(limits::MAX_REGEX_NESTING)
        .size_limit(1 << 30)
        .build();
    let new = Pattern::new(&pattern);
    let ours_only = |e: &PatternError| match e {
        PatternError::TooLarge { .. } => true,
        PatternError::Syntax(s) => {
            s.message.contains("above the limit") || s.message.contains("nests too deeply")
        }
    };
    match (&old, &new) {
        (Ok(_), Err(e)) if ours_only(e) => return,
        (Err(e), Ok(_)) if e.to_string().contains("nesting") => return,
        (Ok(_), Ok(_)) | (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("/{pattern:?}/: regex-lite accepts, we reject: {e:?}"),
        (Err(e), Ok(_)) => panic!("/{pattern:?}/: regex-lite rejects ({e}), we accept"),
    }
    if let (Ok(old), Ok(new)) = (old, new) {
        for h in input.haystacks.iter().take(8) {
            let h: String = h.chars().take(128).collect();
            assert_eq!(
                new.is_match(&h),
                old.is_match(&h),
                "/{pattern:?}/ on {h:?}"
            );
        }
    }
});

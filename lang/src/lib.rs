//! The rules language (lexer → parser → compiler → evaluator), and what else the filter runs
//! when a config or a token arrives: the config's parser and hash, the sticky buckets `bucket`
//! and `split` read, claims decoding (`jwt`, `metadata`). Nothing here calls the host. A crate
//! of its own so that it is compiled for size (the root Cargo.toml's profile says why); the
//! filter's crate re-exports it as `traffic_color::lang`, `::config`, `::config_hash`, `::bucket`
//! and `::request::{jwt, metadata}`.

pub mod ast;
mod automaton;
pub mod bucket;
mod compile;
pub mod config;
pub mod config_hash;
pub mod error;
pub mod eval;
pub mod explain;
pub mod jwt;
#[cfg(not(target_os = "wasi"))]
pub mod knobs;
mod lexer;
pub mod limits;
pub mod metadata;
mod parser;
pub mod pattern;
pub mod program;
mod regex;
pub mod span;
pub mod time;

pub use compile::REQUEST_ID;
pub use error::{Diagnostic, ErrorKind, render_all};
pub use program::Program;

/// The syntax tree of a program as far as it parses (rules that fail to parse are left out;
/// [`compile`] reports why), for tools that look at what was written rather than run it.
/// Not in the filter's build (see `inspect` in src/lib.rs).
#[cfg(not(target_os = "wasi"))]
pub fn parse(source: &str) -> ast::Program {
    let mut errors = Vec::new();
    let tokens = lexer::lex(source, &mut errors);
    parser::parse(&tokens, &mut errors)
}

// The steps of compiling (the lexer, the parser, the lowering; and `FilterConfig::from_json`'s
// JSON parsing, around this) are `#[inline(never)]` for Envoy's memory, not for speed: V8
// compiles every function of the module with its optimizing compiler when Envoy loads it, the
// memory that takes grows faster than the function (Node's V8, `--trace-wasm-compilation-times`:
// about 9 MiB for the 22 KB this function was with all of them inlined, under 2 MiB for 5 KB),
// and Envoy's allocator keeps what was freed. Split, Envoy's RSS with the module fell by about
// 6 MiB (bench/memory_probe.py; BENCHMARKS.md, Memory). They run once per configuration, never
// per request.
/// Compiles a program, or returns every diagnostic in source order, each tagged with its rule.
pub fn compile(source: &str) -> Result<Program, Vec<Diagnostic>> {
    if source.len() > limits::MAX_PROGRAM_BYTES {
        return Err(vec![Diagnostic::new(
            ErrorKind::ProgramTooLarge {
                bytes: source.len(),
                limit: limits::MAX_PROGRAM_BYTES,
            },
            span::Span::new(0, 0),
        )]);
    }
    let mut errors = Vec::new();
    let tokens = lexer::lex(source, &mut errors);
    let ast = parser::parse(&tokens, &mut errors);
    let result = compile::Compiler::new(source, errors).program(&ast);
    result.map_err(|mut errors| {
        // A rule starts at each `match`/`default` keyword, whether or not it parsed.
        let starts: Vec<usize> = tokens
            .iter()
            .filter(|t| matches!(&t.tok, lexer::Tok::Ident(w) if w == "match" || w == "default"))
            .map(|t| t.span.start)
            .collect();
        error::tidy(&mut errors, source, &starts);
        errors
    })
}

/// `v` in ascending order, by the standard heap (a heap sort: O(n log n), not stable). The
/// slice sorts instantiate their whole pattern-defeating machinery for each element type, about
/// 5–8 KB of Wasm each, which V8 compiles when Envoy loads the module; these sorts run only when
/// a program is compiled, on lists a rule spells out (BENCHMARKS.md, Memory).
pub(crate) fn sorted<T: Ord>(v: Vec<T>) -> Vec<T> {
    std::collections::BinaryHeap::from(v).into_sorted_vec()
}

//! The rules language: lexer → parser → compiler → evaluator. Nothing here calls the host.

pub mod ast;
mod compile;
pub mod error;
pub mod eval;
pub mod explain;
mod lexer;
pub mod limits;
mod parser;
pub mod pattern;
pub mod program;
pub mod span;
pub mod time;

pub use error::{Diagnostic, ErrorKind, render_all};
pub use program::Program;

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
        for e in &mut errors {
            let n = starts.partition_point(|&s| s <= e.span.start);
            e.rule = (n > 0).then_some(n);
        }
        // An unterminated string swallows the rest of its line, so syntax errors the parser
        // then finds on that line are echoes of it, not news.
        let unterminated: Vec<usize> = errors
            .iter()
            .filter(|e| e.kind == ErrorKind::UnterminatedString)
            .map(|e| e.position(source).0)
            .collect();
        errors.retain(|e| {
            !matches!(e.kind, ErrorKind::Expected { .. })
                || !unterminated.contains(&e.position(source).0)
        });
        errors.sort_by_key(|e| (e.span.start, e.span.end));
        errors.dedup();
        if errors.len() >= limits::MAX_DIAGNOSTICS {
            let at = errors.last().map_or(span::Span::new(0, 0), |e| e.span);
            errors.push(Diagnostic::new(
                ErrorKind::TooManyErrors {
                    limit: limits::MAX_DIAGNOSTICS,
                },
                at,
            ));
        }
        errors
    })
}

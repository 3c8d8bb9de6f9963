//! The parser and compiler on arbitrary UTF-8: never a panic; a rejected program's diagnostics
//! all point inside the source and render; an accepted one explains an empty request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_color::config::{ClaimSource, ClaimTrust};
use traffic_color::lang;
use traffic_color::request::{RequestFacts, SimpleRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match lang::compile(source) {
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "rejected without a diagnostic");
            for d in &diagnostics {
                assert!(
                    d.span.start <= d.span.end && d.span.end <= source.len(),
                    "span {:?} outside a {}-byte source",
                    d.span,
                    source.len()
                );
                let (line, column) = d.position(source);
                assert!(line >= 1 && column >= 1);
                let _ = d.render(source);
            }
            let _ = lang::render_all(&diagnostics, source);
        }
        Ok(program) => {
            let _ = traffic_color::metrics::Names::for_program(&program, true);
            let req = SimpleRequest::new("GET", "/");
            let claims = ClaimSource::of(ClaimTrust::Unverified);
            let facts = RequestFacts::new(&req, &program.needs, &claims);
            let decision = program.decide(&facts);
            let explanation = program.explain(source, &facts);
            assert_eq!(
                explanation.color.as_deref(),
                decision.tag.map(|t| t.as_str())
            );
            let _ = explanation.render();
        }
    }
});

//! One rule, as a proxy-wasm SDK user writes it: `x-canary: true` → `x-version-route: canary`,
//! else `stable`. The client's own `x-version-route` is replaced either way.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let canary = self.get_http_request_header("x-canary").as_deref() == Some("true");
        self.set_http_request_header("x-version-route", Some(if canary { "canary" } else { "stable" }));
        Action::Continue
    }
}

//! `traffic-color`: check, explain and simulate rules with the same parser and evaluator the
//! filter runs, so the tool cannot disagree with the proxy.

#[cfg(not(target_arch = "wasm32"))]
mod cockpit;
#[cfg(not(target_arch = "wasm32"))]
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod istio;
#[cfg(not(target_arch = "wasm32"))]
mod load;
#[cfg(not(target_arch = "wasm32"))]
mod routes;
#[cfg(not(target_arch = "wasm32"))]
mod run;
#[cfg(not(target_arch = "wasm32"))]
mod yaml;
#[cfg(not(target_arch = "wasm32"))]
mod yaml_read;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    run::main()
}

/// The tool is native only; this keeps `cargo test --target wasm32-*` building every target.
#[cfg(target_arch = "wasm32")]
fn main() {}

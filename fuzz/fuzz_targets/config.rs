//! The config loader on arbitrary bytes: a config or an error that renders, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_color::config::FilterConfig;

fuzz_target!(|data: &[u8]| {
    match FilterConfig::from_json(data) {
        Ok(config) => {
            assert!(!config.header.as_str().is_empty());
            let _ = traffic_color::metrics::Names::for_program(&config.program, true);
            assert!(traffic_color::config_hash::of_json(data).is_some());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

//! The page and the browser bundle, embedded at build time (cockpit/assets/build.rs): nothing
//! is fetched from anywhere at run time, so the page works air-gapped.

pub use traffic_color_cockpit_assets::{ASSETS, HAS_PAGE, MISSING};

/// The content type and bytes served at `path`.
pub fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_with_everything_or_says_what_is_missing() {
        if HAS_PAGE {
            assert!(MISSING.is_empty());
            let (t, b) = find("/pkg/traffic_color_bg.wasm").unwrap();
            assert_eq!(t, "application/wasm");
            assert!(b.starts_with(b"\0asm"));
            assert!(find("/").unwrap().0.starts_with("text/html"));
        } else {
            assert!(!MISSING.is_empty());
            assert!(find("/pkg/traffic_color_bg.wasm").is_none());
        }
    }
}

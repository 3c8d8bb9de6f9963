//! Embeds the cockpit's page (cockpit/web/) and the browser bundle (`make cockpit-web` builds
//! target/cockpit-web/) for the native `traffic-color` binary. Without the bundle or the page
//! the build still succeeds and embeds nothing: `traffic-color cockpit` then says what to run
//! (so `cargo test` never needs the bundle).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (URL path, source relative to the repository, content type)
const PAGE: &[(&str, &str, &str)] = &[
    ("/", "cockpit/web/index.html", "text/html; charset=utf-8"),
    (
        "/app.js",
        "cockpit/web/app.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "/style.css",
        "cockpit/web/style.css",
        "text/css; charset=utf-8",
    ),
];
const BUNDLE: &[(&str, &str, &str)] = &[
    (
        "/pkg/traffic_color.js",
        "traffic_color.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "/pkg/traffic_color_bg.wasm",
        "traffic_color_bg.wasm",
        "application/wasm",
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TRAFFIC_COLOR_COCKPIT_WEB");
    let (Some(crate_dir), Some(out)) = (
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::var_os("OUT_DIR").map(PathBuf::from),
    ) else {
        return;
    };
    // This crate is cockpit/assets/ in the repository.
    let Some(manifest) = crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
    else {
        return;
    };
    // Where `make cockpit-web` puts the bundle (overridable for other target dirs).
    let bundle_dir = std::env::var_os("TRAFFIC_COLOR_COCKPIT_WEB")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target").join("cockpit-web"));
    // Watch directories, not files: a file that does not exist would count as changed on
    // every build and rebuild the crate each time. The bundle directory is made if missing
    // (it is build output) so that it can be watched.
    let _ = std::fs::create_dir_all(&bundle_dir);
    watch(&bundle_dir);
    // cockpit/web/ is in the repository (a .gitkeep keeps it before the page lands), so a
    // page file that appears later is noticed.
    let web = manifest.join("cockpit").join("web");
    if web.is_dir() {
        watch(&web);
    }

    let mut files: Vec<(&str, PathBuf, &str)> = Vec::new();
    for (url, rel, ty) in PAGE {
        files.push((url, manifest.join(rel), ty));
    }
    for (url, name, ty) in BUNDLE {
        files.push((url, bundle_dir.join(name), ty));
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|(_, p, _)| !p.is_file())
        .map(|(_, p, _)| p.display().to_string())
        .collect();
    let mut src = String::from(
        "/// (URL path, content type, bytes)\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    if missing.is_empty() {
        for (url, path, ty) in &files {
            let _ = writeln!(
                src,
                "    ({url:?}, {ty:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
    }
    src.push_str("];\n");
    let _ = writeln!(
        src,
        "/// Whether the page and the bundle are built in.\npub const HAS_PAGE: bool = {};",
        missing.is_empty()
    );
    let _ = writeln!(
        src,
        "/// What was missing at build time.\npub const MISSING: &[&str] = &{missing:?};"
    );
    let _ = std::fs::write(out.join("cockpit_assets.rs"), src);
}

fn watch(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
}

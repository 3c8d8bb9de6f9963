//! Golden-file comparison shared by the command-line tests: `UPDATE_GOLDEN=1` rewrites the file,
//! otherwise a difference is recorded as a failure for the caller to report all at once.

use std::path::Path;

pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `got` with the golden file at `path` (or rewrites it when updating).
pub fn compare(path: &Path, name: &str, got: &str, failures: &mut Vec<String>) {
    if updating() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if got != want {
        failures.push(format!("--- {name}: expected\n{want}\n--- got\n{got}"));
    }
}

//! Reading what the user points the tool at: a JSON config, or a bare rules file.

use std::path::Path;
use traffic_color::config::FilterConfig;
use traffic_color::inspect::config_from_text;

/// A config plus the text its rules came from (for diagnostics and explanations).
pub struct Loaded {
    pub config: FilterConfig,
    /// The file's text, to compile again with other settings.
    pub text: String,
}

/// A file's contents: `-` is standard input.
pub fn read(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = read(path)?;
    let config = config_from_text(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Loaded { config, text })
}

//! The audit log: one JSON object per line, only ever appended to, read back at start so the
//! page shows the history and rollback knows the previous config after a restart.

use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub time: String,
    pub operator: String,
    /// push, rollback or stop.
    pub action: String,
    /// accepted, rejected or rendered (mesh: a manifest was produced, nothing applied).
    pub outcome: String,
    pub reason: Option<String>,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    /// Unified diff of the rules programs (old to new).
    pub diff: String,
    pub old_config: Option<String>,
    pub new_config: Option<String>,
}

impl Entry {
    /// Whether this entry changed (or, in a mesh, proposed) the config in force.
    pub fn took_effect(&self) -> bool {
        self.outcome == "accepted" || self.outcome == "rendered"
    }
}

pub struct AuditLog {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl AuditLog {
    /// Reads every entry of an existing log. A line that is not an entry (a write cut short by
    /// a crash, a hand edit) is skipped with a warning: the rest of the history still counts.
    pub fn open(path: &Path) -> Result<AuditLog, String> {
        let mut entries = Vec::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Entry>(line) {
                        Ok(e) => entries.push(e),
                        Err(e) => eprintln!(
                            "traffic-color cockpit: {}:{}: skipped, not an audit entry: {e}",
                            path.display(),
                            i + 1
                        ),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends one line (and syncs it) before the entry counts: what the page was told
    /// happened is on disk.
    pub fn append(&mut self, entry: Entry) -> Result<(), String> {
        let line = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        f.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.entries.push(entry);
        Ok(())
    }

    /// The config in force before `current_hash` came in: the old config of the latest entry
    /// that brought `current_hash`. None when the log does not know how the current config
    /// arrived (first start, or an edit outside the cockpit).
    pub fn previous(&self, current_hash: &str) -> Option<(&str, Option<&str>)> {
        let e = self
            .entries
            .iter()
            .rev()
            .find(|e| e.took_effect() && e.new_hash.as_deref() == Some(current_hash))?;
        Some((e.old_config.as_deref()?, e.old_hash.as_deref()))
    }

    /// When the current config was brought in, per the log.
    pub fn brought_in(&self, current_hash: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.took_effect() && e.new_hash.as_deref() == Some(current_hash))
            .map(|e| e.time.as_str())
    }
}

/// Unified diff of two rules programs, `a/rules` to `b/rules`, 3 lines of context.
pub fn rules_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("a/rules", "b/rules")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(outcome: &str, old: &str, new: &str) -> Entry {
        Entry {
            time: "2026-01-01T00:00:00Z".into(),
            operator: "ann".into(),
            action: "push".into(),
            outcome: outcome.into(),
            reason: None,
            old_hash: Some(format!("h{old}")),
            new_hash: Some(format!("h{new}")),
            diff: String::new(),
            old_config: Some(old.into()),
            new_config: Some(new.into()),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tc-audit-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_default();
        dir.join("audit.jsonl")
    }

    #[test]
    fn entries_survive_a_reopen_and_a_torn_line_is_skipped() {
        let path = temp("reopen");
        let mut log = AuditLog::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(log.entries().is_empty());
        log.append(entry("accepted", "A", "B"))
            .unwrap_or_else(|e| panic!("{e}"));
        log.append(entry("rejected", "B", "C"))
            .unwrap_or_else(|e| panic!("{e}"));
        // A crash in the middle of a write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"{\"time\": \"2026").unwrap_or_default();
        let again = AuditLog::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.entries(), log.entries());
        assert_eq!(again.entries()[1].outcome, "rejected");
    }

    #[test]
    fn previous_is_what_the_current_config_replaced_and_ignores_rejections() {
        let path = temp("previous");
        let mut log = AuditLog::open(&path).unwrap_or_else(|e| panic!("{e}"));
        log.append(entry("accepted", "A", "B"))
            .unwrap_or_else(|e| panic!("{e}"));
        log.append(entry("rejected", "B", "C"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.previous("hB"), Some(("A", Some("hA"))));
        assert_eq!(log.previous("hC"), None);
        log.append(entry("accepted", "B", "D"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.previous("hD"), Some(("B", Some("hB"))));
        // An edit outside the cockpit: no history for it.
        assert_eq!(log.previous("hZ"), None);
    }

    #[test]
    fn diff_is_unified_over_the_rules() {
        let d = rules_diff("default -> \"stable\"\n", "default -> \"canary\"\n");
        assert!(d.starts_with("--- a/rules\n+++ b/rules\n@@"), "{d}");
        assert!(
            d.contains("-default -> \"stable\"\n+default -> \"canary\"\n"),
            "{d}"
        );
        assert_eq!(rules_diff("x\n", "x\n"), "");
    }
}

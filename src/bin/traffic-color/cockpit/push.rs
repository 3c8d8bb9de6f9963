//! Delivering a config: the ECDS resource file a local Envoy watches (replaced by a rename, the
//! move its directory watch reports), and reading back from Envoy whether it took it.

use super::sources::{Sample, parse_prometheus};
use serde_json::Value;
use std::path::Path;

/// The file's parsed resource document and the filter config JSON text in it.
pub struct EcdsFile {
    pub doc: Value,
    pub config: String,
}

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

fn config_slot(doc: &mut Value) -> Option<&mut Value> {
    let resource = doc.get_mut("resources")?.as_array_mut()?.first_mut()?;
    let typed = resource.get_mut("typed_config")?;
    if typed.get("@type").and_then(Value::as_str) != Some(WASM_TYPE) {
        return None;
    }
    typed
        .get_mut("config")?
        .get_mut("configuration")?
        .get_mut("value")
}

/// Reads an ECDS resource file: a DiscoveryResponse-shaped JSON document whose first resource
/// is a TypedExtensionConfig holding the Wasm filter (envoy/ecds/traffic-color.json).
pub fn read_ecds(path: &Path) -> Result<EcdsFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_ecds(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_ecds(text: &str) -> Result<EcdsFile, String> {
    let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let config = config_slot(&mut doc)
        .and_then(|v| v.as_str())
        .ok_or(
            "expected {\"resources\": [{\"typed_config\": {\"@type\": \"...wasm.v3.Wasm\", \"config\": {\"configuration\": {\"value\": \"<filter config JSON>\"}}}}]}",
        )?
        .to_string();
    Ok(EcdsFile { doc, config })
}

/// The file's text with `config` as the filter configuration and the next version.
pub fn with_config(file: &EcdsFile, config: &str) -> Result<String, String> {
    let mut doc = file.doc.clone();
    let version = doc
        .get("version_info")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("version_info".into(), (version + 1).to_string().into());
    }
    *config_slot(&mut doc).ok_or("the resource lost its shape")? = config.into();
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}

/// Replaces `path` with `text`: a new file in the same directory, synced, renamed over it.
/// Envoy's watched directory sees the move; a reader never sees half a file.
pub fn replace_file(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

/// Envoy's count of ECDS updates it rejected, all extension configs together.
pub fn ecds_rejections(samples: &[Sample]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name.starts_with("envoy_extension_config_discovery_")
                && s.name.ends_with("_update_rejected")
        })
        .map(|s| s.value)
        .sum()
}

/// Whether `traffic_color_config_info{hash}` is 1.
pub fn hash_active(samples: &[Sample], hash: &str) -> bool {
    samples.iter().any(|s| {
        s.name == "traffic_color_config_info" && s.label("hash") == Some(hash) && s.value >= 1.0
    })
}

/// The admin path that has both the filter's config gauge and the ECDS counters.
pub const PUSH_STATS: &str =
    "/stats/prometheus?usedonly&filter=(traffic_color_config_info|extension_config_discovery)";

pub fn parse(text: &str) -> Vec<Sample> {
    parse_prometheus(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"version_info": "7", "resources": [{
      "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
      "name": "traffic_color",
      "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"vm_config": {"vm_id": "x"},
          "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": "{\"rules\": \"default -> \\\"stable\\\"\"}"}}}}]}"#;

    #[test]
    fn reads_and_rewrites_the_resource() {
        let f = parse_ecds(FILE).unwrap();
        assert_eq!(f.config, r#"{"rules": "default -> \"stable\""}"#);
        let text = with_config(&f, r#"{"rules":"default -> \"canary\""}"#).unwrap();
        let again = parse_ecds(&text).unwrap();
        assert_eq!(again.config, r#"{"rules":"default -> \"canary\""}"#);
        assert_eq!(again.doc["version_info"], "8");
        // Everything else is kept.
        assert_eq!(
            again.doc["resources"][0]["typed_config"]["config"]["vm_config"]["vm_id"],
            "x"
        );
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(parse_ecds("{}").is_err());
        assert!(parse_ecds("[").is_err());
        assert!(parse_ecds(&FILE.replace("wasm.v3.Wasm", "lua.v3.Lua")).is_err());
    }

    #[test]
    fn replace_file_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("tc-replace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        replace_file(&path, "one").unwrap();
        replace_file(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_push_outcomes_from_stats() {
        let s = parse(
            "envoy_extension_config_discovery_http_filter_traffic_color_update_rejected{} 2\n\
             traffic_color_config_info{hash=\"ab\"} 1\ntraffic_color_config_info{hash=\"cd\"} 0\n",
        );
        assert_eq!(ecds_rejections(&s), 2.0);
        assert!(hash_active(&s, "ab"));
        assert!(!hash_active(&s, "cd"));
        assert!(!hash_active(&s, "ef"));
    }
}

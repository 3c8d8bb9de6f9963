//! Cookies from one or more `Cookie` headers (HTTP/2 may split them), RFC 6265 style:
//! `name=value` pairs separated by `;`, a value optionally in double quotes.

/// The first value of each wanted cookie across all the headers, in order.
pub fn first_values(headers: &[impl AsRef<str>], names: &[String]) -> Vec<Option<String>> {
    let mut found: Vec<Option<String>> = vec![None; names.len()];
    let mut remaining = names.len();
    for pair in headers.iter().flat_map(|h| h.as_ref().split(';')) {
        if remaining == 0 {
            break;
        }
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        for (i, wanted) in names.iter().enumerate() {
            if found[i].is_none() && wanted == name {
                found[i] = Some(value.to_string());
                remaining -= 1;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn first_occurrence_across_headers() {
        let headers = vec![
            "a=1; canary=always; junk; =x".to_string(),
            "canary=never; b=\"quoted\"; c==eq".to_string(),
        ];
        let names: Vec<String> = ["canary", "b", "c", "a", "zzz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            first_values(&headers, &names),
            vec![
                Some("always".into()),
                Some("quoted".into()),
                Some("=eq".into()),
                Some("1".into()),
                None
            ]
        );
    }
}

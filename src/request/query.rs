//! Query strings: `application/x-www-form-urlencoded` pairs, decoded strictly. A value with a
//! broken `%` escape or invalid UTF-8 is absent, not guessed at (crates that decode lossily
//! would turn garbage into a string a rule could match).

use std::borrow::Cow;

/// The first value of each wanted name, decoded; later occurrences are ignored even when the
/// first one cannot be decoded.
pub fn first_values(query: &str, names: &[String]) -> Vec<Option<String>> {
    let mut found: Vec<Option<Option<String>>> = vec![None; names.len()];
    let mut remaining = names.len();
    for pair in query.split('&') {
        if remaining == 0 {
            break;
        }
        if pair.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = decode(raw_key) else { continue };
        for (i, name) in names.iter().enumerate() {
            if found[i].is_none() && *name == key {
                found[i] = Some(decode(raw_value).map(Cow::into_owned));
                remaining -= 1;
            }
        }
    }
    found.into_iter().map(Option::flatten).collect()
}

/// Percent-decoding with `+` as a space; `None` on a malformed escape or invalid UTF-8.
pub fn decode(s: &str) -> Option<Cow<'_, str>> {
    decode_with(s, true)
}

/// Percent-decoding where `+` is itself (W3C baggage, RFC 3986).
pub fn decode_percent(s: &str) -> Option<Cow<'_, str>> {
    decode_with(s, false)
}

/// Borrows when there is nothing to decode, as with almost every key and most values.
fn decode_with(s: &str, plus_is_space: bool) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn decodes_first_occurrence() {
        let got = first_values(
            "version=v2%2E1&a=1&version=v3&b=x+y%20z&empty=&flag&c%61t=meow",
            &names(&["version", "b", "empty", "flag", "cat", "missing"]),
        );
        assert_eq!(
            got,
            vec![
                Some("v2.1".into()),
                Some("x y z".into()),
                Some("".into()),
                Some("".into()),
                Some("meow".into()),
                None
            ]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_values_are_absent() {
        let got = first_values(
            "a=%zz&b=%e9&c=%4&d=ok&a=later&%zz=1",
            &names(&["a", "b", "c", "d"]),
        );
        assert_eq!(got, vec![None, None, None, Some("ok".into())]);
        assert_eq!(decode("%C3%A9"), Some("é".into()));
        assert_eq!(decode("%"), None);
    }
}

//! A short, stable name for a configuration, so an operator can tell which rules each proxy
//! runs: the filter logs it when a config loads and exposes it as the `hash` label of
//! `traffic_color_config_info`; `traffic-color check` prints it for a file. Both call [`of_json`]
//! on the JSON the filter receives, so they cannot disagree.
//!
//! The hash is over a canonical form of the JSON, so that how a tool lays a config out does not
//! matter: Envoy passes the `configuration` string as written, while Istio re-serializes
//! `pluginConfig` from a protobuf `Struct` (its own key order and spacing, every number a
//! double). Canonical form: objects with keys sorted by code point, no whitespace, strings
//! escaped as serde_json escapes them (`"`, `\`, control characters; nothing else, so `\u00e9`
//! and `é` are one string), and numbers as the exact decimal they denote, printed the way
//! JavaScript prints numbers (`3600.0`, `3.6e3` and `3600` are all `3600`: what Istio's double
//! makes of them). Anything else changes the hash: a key given its default value explicitly,
//! and any edit to the rules' text, comments and spacing included.
//!
//! MurmurHash3 x64_128, seed 0, printed as the 32 hex digits of the 128-bit number
//! `h2 · 2^64 + h1` (the `murmur3` crate's `u128`). Not a cryptographic hash: it names configs
//! that were reviewed, it does not authenticate them (a deliberate collision is easy to build).
//! Murmur3 is already in the module for `bucket()`, so naming configs adds no code to it.

use std::fmt;

/// The hash of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigHash(pub u128);

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The hash of a JSON configuration; `None` when the bytes are not JSON (such a config is
/// rejected anyway, and has no hash).
pub fn of_json(json: &[u8]) -> Option<ConfigHash> {
    let canonical = canonical(json)?;
    murmur3::murmur3_x64_128(&mut canonical.as_bytes(), 0)
        .ok()
        .map(ConfigHash)
}

/// The canonical form of a JSON document (see the module's docs); `None` when it is not JSON.
///
/// Written by hand rather than through `serde_json::Value`: the generic value tree and its
/// maps cost the module 17 KB, this parser a small fraction of that.
pub fn canonical(json: &[u8]) -> Option<String> {
    let mut p = Canon { s: json, i: 0 };
    let mut out = Vec::with_capacity(json.len());
    p.ws();
    p.value(&mut out, 0)?;
    p.ws();
    if p.i != json.len() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Deeper documents are refused, as serde_json refuses them (its recursion limit).
const MAX_DEPTH: usize = 128;

/// A plain decimal up to this many digits before the point, as JavaScript prints numbers.
const MAX_INTEGER_DIGITS: i64 = 21;

struct Canon<'a> {
    s: &'a [u8],
    i: usize,
}

impl Canon<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(out, depth),
            b'[' => self.array(out, depth),
            b'"' => {
                let s = self.string()?;
                escape(&s, out);
                Some(())
            }
            b'-' | b'0'..=b'9' => self.number(out),
            _ => {
                for lit in [&b"true"[..], b"false", b"null"] {
                    if self.s[self.i..].starts_with(lit) {
                        self.i += lit.len();
                        out.extend_from_slice(lit);
                        return Some(());
                    }
                }
                None
            }
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.i += 1;
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.ws();
        if !self.eat(b'}') {
            loop {
                self.ws();
                let key = self.string()?;
                self.ws();
                if !self.eat(b':') {
                    return None;
                }
                self.ws();
                let mut value = Vec::new();
                self.value(&mut value, depth + 1)?;
                // Kept sorted as they come (the bytes of UTF-8 sort as its code points do);
                // an insertion rather than a sort afterwards: a general sort is about 5 KB of
                // module, and a config object has a handful of keys (the strict config parser
                // accepts no others before anything is hashed).
                let at = members.partition_point(|m| m.0 <= key);
                members.insert(at, (key, value));
                self.ws();
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        out.push(b'{');
        for (n, (key, value)) in members.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            escape(key, out);
            out.push(b':');
            out.extend_from_slice(value);
        }
        out.push(b'}');
        Some(())
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.i += 1;
        out.push(b'[');
        self.ws();
        if self.eat(b']') {
            out.push(b']');
            return Some(());
        }
        loop {
            self.ws();
            self.value(out, depth + 1)?;
            self.ws();
            if self.eat(b']') {
                out.push(b']');
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
            out.push(b',');
        }
    }

    /// A string's value, its escapes decoded (UTF-8 is checked once, at the end).
    fn string(&mut self) -> Option<Vec<u8>> {
        if !self.eat(b'"') {
            return None;
        }
        let mut s = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Some(s),
                b'\\' => {
                    let c = match self.next()? {
                        c @ (b'"' | b'\\' | b'/') => char::from(c),
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    s.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..=0x1f => return None,
                b => s.push(b),
            }
        }
    }

    /// After `\u`: one code point, from a surrogate pair when it takes two escapes.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return None;
                }
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return None;
                }
                0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
            }
            _ => first,
        };
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            v = v * 16 + char::from(self.next()?).to_digit(16)?;
        }
        Some(v)
    }

    /// A number as the exact decimal it denotes: digits without leading or trailing zeros and a
    /// power of ten, printed as JavaScript prints numbers (`1000`, `1.5`, `0.001`, `1e+21`,
    /// `1e-7`) but without rounding to a double.
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let negative = self.eat(b'-');
        let mut digits = Vec::new();
        let int_start = self.i;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            digits.push(d);
            self.i += 1;
        }
        let int_len = self.i - int_start;
        if int_len == 0 || (int_len > 1 && digits.first() == Some(&b'0')) {
            return None;
        }
        let mut frac_len: i64 = 0;
        if self.eat(b'.') {
            while let Some(d @ b'0'..=b'9') = self.peek() {
                digits.push(d);
                frac_len += 1;
                self.i += 1;
            }
            if frac_len == 0 {
                return None;
            }
        }
        let mut exp: i64 = 0;
        if self.eat(b'e') || self.eat(b'E') {
            let exp_negative = self.eat(b'-');
            if !exp_negative {
                self.eat(b'+');
            }
            let exp_start = self.i;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                exp = exp.saturating_mul(10).saturating_add(i64::from(d - b'0'));
                self.i += 1;
            }
            if self.i == exp_start {
                return None;
            }
            if exp_negative {
                exp = -exp;
            }
        }
        let lead = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..lead);
        let trail = digits.iter().rev().take_while(|&&d| d == b'0').count();
        digits.truncate(digits.len() - trail);
        if digits.is_empty() {
            out.push(b'0');
            return Some(());
        }
        // value = 0.DIGITS × 10^point
        let exp10 = exp
            .saturating_sub(frac_len)
            .saturating_add(i64::try_from(trail).ok()?);
        let n = i64::try_from(digits.len()).ok()?;
        let point = n.saturating_add(exp10);
        if negative {
            out.push(b'-');
        }
        if exp10 >= 0 && point <= MAX_INTEGER_DIGITS {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', usize::try_from(exp10).ok()?));
        } else if exp10 < 0 && point > 0 {
            let at = usize::try_from(point).ok()?;
            out.extend_from_slice(&digits[..at]);
            out.push(b'.');
            out.extend_from_slice(&digits[at..]);
        } else if exp10 < 0 && point > -6 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', usize::try_from(-point).ok()?));
            out.extend_from_slice(&digits);
        } else {
            out.push(digits[0]);
            if digits.len() > 1 {
                out.push(b'.');
                out.extend_from_slice(&digits[1..]);
            }
            let e = point.saturating_sub(1);
            out.extend_from_slice(if e >= 0 { b"e+" } else { b"e-" });
            out.extend_from_slice(e.unsigned_abs().to_string().as_bytes());
        }
        Some(())
    }
}

/// A string as serde_json writes it: `"`, `\` and control characters escaped, nothing else.
fn escape(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn hash(json: &str) -> String {
        of_json(json.as_bytes()).unwrap().to_string()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn layout_and_key_order_do_not_matter() {
        let a = r#"{"rules": "default -> \"stable\"", "keep": true, "jwt": {"trust": "verified", "metadata_key": "payload"}}"#;
        let b = "{\n  \"jwt\" : { \"metadata_key\":\"payload\",\n \"trust\":\"verified\" },\n\t\"keep\":true,\"rules\":\"default -> \\\"stable\\\"\"\n}\n";
        assert_eq!(hash(a), hash(b));
        assert_eq!(
            canonical(b.as_bytes()).unwrap(),
            r#"{"jwt":{"metadata_key":"payload","trust":"verified"},"keep":true,"rules":"default -> \"stable\""}"#
        );
        assert_eq!(hash(a).len(), 32);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn what_is_said_changes_it() {
        let base = hash(r#"{"rules": "default -> \"stable\""}"#);
        for other in [
            r#"{"rules": "default -> \"canary\""}"#,
            r#"{"rules": "default  -> \"stable\""}"#,
            r#"{"rules": "default -> \"stable\"", "header": "x-version-route"}"#,
            r#"{"rules": "default -> \"stable\"", "keep": false}"#,
        ] {
            assert_ne!(hash(other), base, "{other}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numbers_as_istio_delivers_them() {
        // Istio's pluginConfig numbers are doubles: 3600.0 arrives as 3600.
        assert_eq!(hash(r#"{"n": 3600.0}"#), hash(r#"{"n": 3600}"#));
        assert_eq!(hash(r#"{"n": -2.0}"#), hash(r#"{"n": -2}"#));
        assert_eq!(
            canonical(br#"{"n": [1.5, 1e3, 0.0, -0.0]}"#).unwrap(),
            r#"{"n":[1.5,1000,0,0]}"#
        );
        assert_ne!(hash(r#"{"n": 1.5}"#), hash(r#"{"n": 1}"#));
        // Beyond 2^53 a double is not exact: left as serde_json prints it.
        assert_eq!(canonical(br#"[1e300]"#).unwrap(), "[1e+300]");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn strings_are_escaped_one_way() {
        assert_eq!(
            canonical("{\"k\": \"\\u00e9\\/\\t\\u0001 é \\\"\"}".as_bytes()).unwrap(),
            "{\"k\":\"é/\\t\\u0001 é \\\"\"}"
        );
        // Key order is by code point, as the bytes of UTF-8 sort.
        assert_eq!(
            canonical("{\"é\":1,\"z\":2,\"A\":3}".as_bytes()).unwrap(),
            "{\"A\":3,\"z\":2,\"é\":1}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reference_vectors() {
        // MurmurHash3_x64_128 with seed 0 from the reference C++ (SMHasher), printed h2 then h1:
        // (Guava's `murmur3_128` prints the same two words as little-endian bytes, h1 first).
        let h = |s: &str| {
            murmur3::murmur3_x64_128(&mut s.as_bytes(), 0)
                .ok()
                .map(|h| ConfigHash(h).to_string())
        };
        assert_eq!(h("").as_deref(), Some("00000000000000000000000000000000"));
        assert_eq!(
            h("hello").as_deref(),
            Some("5b1e906a48ae1d19cbd8a7b341bd9b02")
        );
        assert_eq!(
            h("The quick brown fox jumps over the lazy dog").as_deref(),
            Some("7a433ca9c49a9347e34bbc7bbc071b6c")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn not_json_has_no_hash() {
        let bad: &[&[u8]] = &[
            b"",
            b"{",
            b"\xff",
            b"\"\xff\"",
            b"{\"a\":1,}",
            b"[1,]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[-]",
            b"[+1]",
            b"{\"a\" 1}",
            b"{1:2}",
            b"\"tab\there\"",
            b"\"\\x\"",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\u12\"",
            b"tru",
            b"nul",
            b"1 2",
            b"{} x",
        ];
        for json in bad {
            assert_eq!(of_json(json), None, "{}", String::from_utf8_lossy(json));
            assert!(serde_json::from_slice::<serde_json::Value>(json).is_err());
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(of_json(deep.as_bytes()), None);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(canonical(ok.as_bytes()).as_deref(), Some(ok.as_str()));
    }

    /// The canonical form is JSON with the same value, and its own canonical form.
    #[wasm_bindgen_test(unsupported = test)]
    fn canonical_is_the_same_json() {
        let docs = [
            r#" { "rules" : "match { header[\"x\"] == \"1\" } -> \"c\"\n# \u00e9\ud83d\ude00\n" , "keep":false, "n": null, "a": [ true, {"z": [], "y": {}}, -5, 2.25 ] } "#,
            "[]",
            "\"\\b\\f\\u001f\\u007f/\"",
            "{\"\":0}",
        ];
        for doc in docs {
            let c = canonical(doc.as_bytes()).unwrap();
            let a: serde_json::Value = serde_json::from_str(doc).unwrap();
            let b: serde_json::Value = serde_json::from_str(&c).unwrap();
            assert_eq!(a, b, "{doc}");
            assert_eq!(canonical(c.as_bytes()).as_deref(), Some(c.as_str()));
        }
        assert_eq!(
            canonical("\"\\ud83d\\ude00 \\u0041\"".as_bytes()).as_deref(),
            Some("\"\u{1f600} A\"")
        );
    }
}

//! A header map as proxy-wasm serializes it (`proxy_get_header_map_pairs`), read in place.
//! The SDK's getter turns every pair into two fresh allocations; a program reads a handful of
//! headers, so one index over the host's buffer and borrowed values cost far less per request.
//!
//! Layout (little-endian): `count: u32`, then `count` × (`key_len: u32`, `value_len: u32`),
//! then each key and value in order, each followed by a NUL byte.

use std::ops::Range;

/// The serialized pairs and where each key and value lies in them.
#[derive(Debug, Default)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

/// Caps the index a hostile buffer could ask for; Envoy's own limit is 100 headers by default.
const MAX_PAIRS: usize = 16 * 1024;

impl HeaderMap {
    /// The map in `bytes`; a truncated or inconsistent buffer is an empty map.
    pub fn parse(bytes: Vec<u8>) -> Self {
        match index(&bytes) {
            Some(pairs) => HeaderMap { bytes, pairs },
            None => HeaderMap::default(),
        }
    }

    /// Every `(name, value)` pair in order, as bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| Some((self.bytes.get(k.clone())?, self.bytes.get(v.clone())?)))
    }

    /// The first value of `name` (ASCII case-insensitive), as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.all(name).next()
    }

    /// Every value of `name`, in order.
    pub fn all<'m, 'n>(&'m self, name: &'n str) -> impl Iterator<Item = &'m [u8]> + use<'m, 'n> {
        self.iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

fn index(bytes: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = word(0)?;
    if count > MAX_PAIRS {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    for i in 0..count {
        let key_len = word(4 + i * 8)?;
        let value_len = word(8 + i * 8)?;
        let key = data..data.checked_add(key_len)?;
        let value_start = key.end.checked_add(1)?;
        let value = value_start..value_start.checked_add(value_len)?;
        data = value.end.checked_add(1)?;
        if data > bytes.len() {
            return None;
        }
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Serializes as the host does.
    fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_pairs_in_place() {
        let map = HeaderMap::parse(serialize(&[
            (":path", b"/a?b=1"),
            ("cookie", b"a=1"),
            ("x-empty", b""),
            ("cookie", b"b=2"),
            ("x-bin", b"\xff\x00\xfe"),
        ]));
        assert_eq!(map.len(), 5);
        assert_eq!(map.get(":path"), Some(&b"/a?b=1"[..]));
        assert_eq!(map.get("COOKIE"), Some(&b"a=1"[..]));
        assert_eq!(map.all("cookie").collect::<Vec<_>>(), [b"a=1", b"b=2"]);
        assert_eq!(map.get("x-empty"), Some(&b""[..]));
        assert_eq!(map.get("x-bin"), Some(&b"\xff\x00\xfe"[..]));
        assert_eq!(map.get("missing"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_buffers_are_empty_maps() {
        let good = serialize(&[("a", b"1"), ("bb", b"22")]);
        for cut in 0..good.len() {
            let map = HeaderMap::parse(good[..cut].to_vec());
            assert!(
                map.is_empty(),
                "a truncated buffer is not a map (cut at {cut})"
            );
        }
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderMap::parse(huge).is_empty());
        let mut long = good;
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderMap::parse(long).is_empty());
        assert!(HeaderMap::parse(Vec::new()).is_empty());
    }
}

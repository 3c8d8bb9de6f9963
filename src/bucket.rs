//! Sticky percentages, compatible with Unleash's `normalizedValue`, so a user lands in the same
//! cohort here as in an Unleash feature flag with the same group id.

use std::io::Read;

/// `murmur3_x86_32(utf8(group + ":" + key), seed 0) % 100 + 1`: a number in 1..=100.
pub fn bucket(group: &str, key: &str) -> u32 {
    bucket_of(group.as_bytes().chain(&b":"[..]).chain(key.as_bytes()))
}

/// Same as [`bucket`] with `group:` already joined: hashes the parts in sequence rather than
/// building the joined string on every request.
pub(crate) fn bucket_of_prefixed(prefix: &str, key: &str) -> u32 {
    bucket_of(prefix.as_bytes().chain(key.as_bytes()))
}

fn bucket_of(mut bytes: impl Read) -> u32 {
    // Reading from byte slices cannot fail; 0 keeps the function total anyway.
    murmur3::murmur3_32(&mut bytes, 0).unwrap_or(0) % 100 + 1
}

pub fn murmur3_x86_32(bytes: &[u8]) -> u32 {
    // Reading from a byte slice cannot fail; 0 keeps the signature total anyway.
    murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Hashing `group:` and the key in sequence equals hashing them joined, whatever the
    /// lengths (every split of the 4-byte blocks across the two parts).
    #[wasm_bindgen_test(unsupported = test)]
    fn parts_hash_as_joined() {
        for g in ["", "g", "gr", "gro", "group", "checkout-v2"] {
            for k in ["", "u", "us", "use", "user", "user-1234", "ünïcode"] {
                let joined = format!("{g}:{k}");
                let whole = murmur3_x86_32(joined.as_bytes()) % 100 + 1;
                assert_eq!(bucket(g, k), whole, "{joined}");
                assert_eq!(bucket_of_prefixed(&format!("{g}:"), k), whole, "{joined}");
            }
        }
    }

    /// Reference values of MurmurHash3_x86_32 with seed 0 (from the reference C++ implementation).
    #[wasm_bindgen_test(unsupported = test)]
    fn murmur3_reference_vectors() {
        assert_eq!(murmur3_x86_32(b""), 0);
        assert_eq!(murmur3_x86_32(b"hello"), 0x248b_fa47);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    /// The vectors Unleash's own clients pin (`normalizedValue(id, groupId)`).
    #[wasm_bindgen_test(unsupported = test)]
    fn matches_unleash_normalized_value() {
        assert_eq!(bucket("gr1", "123"), 73);
        assert_eq!(bucket("groupX", "999"), 25);
    }
}

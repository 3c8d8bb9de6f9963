//! Sticky percentages, compatible with Unleash's `normalizedValue`, so a user lands in the same
//! cohort here as in an Unleash feature flag with the same group id.

use std::io::Read;

/// `murmur3_x86_32(utf8(group + ":" + key), seed 0) % 100 + 1`: a number in 1..=100.
#[inline]
pub fn bucket(group: &str, key: &str) -> u32 {
    bucket_of(group.as_bytes().chain(&b":"[..]).chain(key.as_bytes()))
}

/// Same as [`bucket`] with `group:` already joined: hashes the parts in sequence rather than
/// building the joined string on every request.
#[inline]
pub(crate) fn bucket_of_prefixed(prefix: &str, key: &str) -> u32 {
    bucket_of(prefix.as_bytes().chain(key.as_bytes()))
}

/// Parts per million of a split: `murmur3_x86_32(group + ":" + key) % 1_000_000`, read as a
/// percentage with four decimals, so `split(..) < 0.1` selects 0.1% (and `< 0.0001` one in a
/// million). The same hash as [`bucket`], so a split is as stable as a bucket.
#[inline]
pub fn split(group: &str, key: &str) -> f64 {
    split_of(group.as_bytes().chain(&b":"[..]).chain(key.as_bytes()))
}

#[inline]
pub(crate) fn split_of_prefixed(prefix: &str, key: &str) -> f64 {
    split_of(prefix.as_bytes().chain(key.as_bytes()))
}

/// How many values a split takes, all equally likely: parts per million.
pub const SPLIT_VALUES: u32 = 1_000_000;
/// How many values a bucket takes, all equally likely: 1..=100.
pub const BUCKET_VALUES: u32 = 100;

/// The split value of `ppm` parts per million, as rules compare it.
#[inline]
pub fn split_value(ppm: u32) -> f64 {
    f64::from(ppm) / 10_000.0
}

#[inline]
fn split_of(mut bytes: impl Read) -> f64 {
    split_value(murmur3::murmur3_32(&mut bytes, 0).unwrap_or(0) % SPLIT_VALUES)
}

#[inline]
fn bucket_of(mut bytes: impl Read) -> u32 {
    // Reading from byte slices cannot fail; 0 keeps the function total anyway.
    murmur3::murmur3_32(&mut bytes, 0).unwrap_or(0) % BUCKET_VALUES + 1
}

#[inline]
pub fn murmur3_x86_32(bytes: &[u8]) -> u32 {
    // Reading from a byte slice cannot fail; 0 keeps the signature total anyway.
    murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A split is in [0, 100) with at most four decimals, the parts hash as joined, and over
    /// many keys each share is close to its width.
    #[wasm_bindgen_test(unsupported = test)]
    fn splits_are_fine_grained_and_uniform() {
        let n = 200_000;
        let mut under = [0u32; 3];
        for i in 0..n {
            let key = format!("req-{i}");
            let s = split("rollout", &key);
            assert!((0.0..100.0).contains(&s), "{s}");
            assert_eq!((s * 10_000.0).round() / 10_000.0, s);
            assert_eq!(split_of_prefixed("rollout:", &key), s);
            for (j, bound) in [0.1, 5.0, 50.0].iter().enumerate() {
                under[j] += u32::from(s < *bound);
            }
        }
        // Expected 200, 10,000 and 100,000; four standard deviations either side.
        for (count, want) in under.iter().zip([200.0, 10_000.0, 100_000.0]) {
            let p: f64 = want / f64::from(n);
            let sd = (f64::from(n) * p * (1.0 - p)).sqrt();
            assert!(
                (f64::from(*count) - want).abs() < 4.0 * sd,
                "{count} vs {want}"
            );
        }
    }

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

//! W3C Baggage (`baggage: k1=v1;prop, k2=v2`): reading one member, and rewriting one member while
//! every other member travels on as it was.
//!
//! The color member is security-relevant: with `keep`, a later hop trusts it. So the reader and
//! the writer share one set of limits (a header the writer would never produce is not read), and
//! the writer removes every member with the color's key whatever the size of the header, even
//! when there is no room left to add ours.

use std::borrow::Cow;

/// Past these sizes a header is not read, and a header we write never exceeds them. W3C asks
/// platforms to propagate at least 64 members and 8,192 bytes; the member bound is ours, to keep
/// a hostile header's parse short.
pub const MAX_BYTES: usize = 8192;
pub const MAX_MEMBERS: usize = 180;

/// The `baggage` headers of a request as one list: HTTP lets a list header be split over several
/// lines, and a member in the second line counts as much as one in the first.
pub fn join<'a>(values: &[Cow<'a, str>]) -> Option<Cow<'a, str>> {
    match values {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(Cow::Owned(
            many.iter()
                .map(|v| v.as_ref())
                .collect::<Vec<_>>()
                .join(","),
        )),
    }
}

/// The member's key: the text before `=` (and before any `;` property), trimmed.
fn key_of(member: &str) -> Option<&str> {
    let kv = member.split(';').next()?;
    kv.split_once('=').map(|(k, _)| k.trim())
}

/// The value of `key`, percent-decoded; absent when the header is larger than the limits (a
/// header this filter would not have written) or the member is missing or malformed.
pub fn member(baggage: &str, key: &str) -> Option<String> {
    if baggage.len() > MAX_BYTES || baggage.split(',').nth(MAX_MEMBERS).is_some() {
        return None;
    }
    baggage
        .split(',')
        .find(|m| key_of(m) == Some(key))
        .and_then(|m| m.split(';').next()?.split_once('=').map(|(_, v)| v.trim()))
        .and_then(crate::request::query::decode_percent)
        .map(Cow::into_owned)
}

/// The header after a rewrite, and whether our member is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Every other member as it was, in order; empty when none is left.
    pub header: String,
    /// False when `key=value` was asked for but did not fit the limits: the header then goes
    /// on without any `key` member rather than with the one that arrived.
    pub added: bool,
}

/// `baggage` with every `key` member removed and, for `Some(value)`, `key=value` in place of the
/// first one (or appended), if the result stays within the limits.
pub fn rewrite(baggage: Option<&str>, key: &str, value: Option<&str>) -> Rewritten {
    let ours = value.map(|v| format!("{key}={v}"));
    let mut others: Vec<&str> = Vec::new();
    let mut at = None;
    for m in baggage.unwrap_or("").split(',') {
        if key_of(m) == Some(key) {
            at.get_or_insert(others.len());
        } else if !m.trim().is_empty() {
            others.push(m.trim());
        }
    }
    let without = others.join(",");
    let Some(ours) = ours else {
        return Rewritten {
            header: without,
            added: false,
        };
    };
    let mut with = others.clone();
    with.insert(at.unwrap_or(with.len()), &ours);
    let header = with.join(",");
    if header.len() <= MAX_BYTES && with.len() <= MAX_MEMBERS {
        Rewritten {
            header,
            added: true,
        }
    } else {
        Rewritten {
            header: without,
            added: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_members() {
        let b = "userId=alice, traffic-color=canary;prop=1 ,serverNode=DF%2028";
        assert_eq!(member(b, "traffic-color").as_deref(), Some("canary"));
        assert_eq!(member(b, "serverNode").as_deref(), Some("DF 28"));
        assert_eq!(member(b, "nope"), None);
        assert_eq!(member("broken", "broken"), None);
        assert_eq!(member(&"a=b,".repeat(5000), "a"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_only_what_the_writer_could_have_written() {
        let at_limit = format!("tc=canary{}", ",a=b".repeat(MAX_MEMBERS - 1));
        assert_eq!(member(&at_limit, "tc").as_deref(), Some("canary"));
        let over = format!("{at_limit},a=b");
        assert_eq!(member(&over, "tc"), None);
        let long = format!("tc=canary,pad={}", "x".repeat(MAX_BYTES));
        assert_eq!(member(&long, "tc"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn merges_without_clobbering() {
        let set = |b: Option<&str>, v: Option<&str>| rewrite(b, "tc", v).header;
        assert_eq!(set(None, Some("canary")), "tc=canary");
        assert_eq!(set(Some(" "), Some("canary")), "tc=canary");
        assert_eq!(
            set(Some("userId=alice,tc=stable;p=1, x=y;q"), Some("canary")),
            "userId=alice,tc=canary,x=y;q"
        );
        assert_eq!(
            set(Some("userId=alice"), Some("canary")),
            "userId=alice,tc=canary"
        );
        assert_eq!(set(Some("userId=alice,tc=canary"), None), "userId=alice");
        assert_eq!(set(Some("tc=canary"), None), "");
        // Every member with our key goes, not only the first.
        assert_eq!(set(Some("tc=a,x=1,tc=b"), Some("c")), "tc=c,x=1");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_full_header_loses_the_incoming_member_even_when_ours_cannot_be_added() {
        for incoming in [
            format!("tc=canary{}", ",a=b".repeat(MAX_MEMBERS)),
            format!("tc=canary,pad={}", "x".repeat(MAX_BYTES - 12)),
            format!("{},tc=canary", "a=b,".repeat(3000)),
        ] {
            let r = rewrite(Some(&incoming), "tc", Some("stable"));
            assert!(!r.added, "{}", incoming.len());
            assert!(!r.header.contains("tc="));
            assert_eq!(member(&r.header, "tc"), None);
        }
        let fits = rewrite(Some("a=b"), "tc", Some("stable"));
        assert!(fits.added);
        assert_eq!(member(&fits.header, "tc").as_deref(), Some("stable"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn several_headers_are_one_list() {
        let values = [Cow::Borrowed("a=1"), Cow::Borrowed("tc=canary")];
        let joined = join(&values);
        assert_eq!(joined.as_deref(), Some("a=1,tc=canary"));
        assert_eq!(join(&[]), None);
    }
}

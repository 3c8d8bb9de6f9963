//! The decoded claims of tokens seen recently, kept per worker. A client sends the same bearer
//! token with every request of a session, and decoding it (base64, then JSON) is most of what
//! reading claims costs; Envoy's own `jwt_authn` caches tokens for the same reason
//! (`jwt_cache_config`). Only the decoding is cached: `exp`/`nbf` are checked against the clock
//! on every request, so a cached token still stops coloring the moment it expires.

use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How many tokens are remembered; the oldest entry makes room for a new one.
pub const SLOTS: usize = 64;

/// Longer tokens are decoded every time rather than kept (bounds the cache to 256 KiB of tokens).
pub const MAX_CACHED_TOKEN_BYTES: usize = 4096;

/// Decoded claims by token, for one compiled program (what is kept depends on the claims it
/// reads). Not `Sync`: each worker's VM has its own.
#[derive(Debug, Default)]
pub struct TokenCache {
    slots: RefCell<Vec<Slot>>,
    next: Cell<usize>,
}

#[derive(Debug)]
struct Slot {
    /// Length and last bytes of the token: a cheap first test before comparing whole tokens.
    tag: u64,
    token: Box<str>,
    /// `None` for a token that does not decode: garbage sent again costs no more than the lookup.
    claims: Option<Rc<Value>>,
}

impl TokenCache {
    pub fn new() -> Self {
        TokenCache::default()
    }

    /// The claims of `token`, decoded by `decode` unless this exact token was decoded recently.
    pub fn claims(
        &self,
        token: &str,
        decode: impl FnOnce(&str) -> Option<Value>,
    ) -> Option<Rc<Value>> {
        if token.len() > MAX_CACHED_TOKEN_BYTES {
            return decode(token).map(Rc::new);
        }
        let tag = tag_of(token);
        if let Some(slot) = self
            .slots
            .borrow()
            .iter()
            .find(|s| s.tag == tag && *s.token == *token)
        {
            return slot.claims.clone();
        }
        let claims = decode(token).map(Rc::new);
        let slot = Slot {
            tag,
            token: token.into(),
            claims: claims.clone(),
        };
        let mut slots = self.slots.borrow_mut();
        if slots.len() < SLOTS {
            slots.push(slot);
        } else {
            let at = self.next.get() % SLOTS;
            slots[at] = slot;
            self.next.set((at + 1) % SLOTS);
        }
        claims
    }

    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The signature at a token's end is where tokens differ most.
fn tag_of(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let mut last = [0u8; 8];
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    last[..tail.len()].copy_from_slice(tail);
    u64::from_le_bytes(last) ^ (bytes.len() as u64).rotate_left(48)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn decodes_each_token_once() {
        let cache = TokenCache::new();
        let decoded = Cell::new(0);
        let decode = |t: &str| {
            decoded.set(decoded.get() + 1);
            (t != "bad").then(|| json!({ "sub": t }))
        };
        let a = cache.claims("token-a", decode);
        let again = cache.claims("token-a", decode);
        assert!(Rc::ptr_eq(a.as_ref().unwrap(), again.as_ref().unwrap()));
        assert_eq!(cache.claims("token-b", decode).unwrap()["sub"], "token-b");
        assert_eq!(cache.claims("bad", decode), None);
        assert_eq!(cache.claims("bad", decode), None);
        assert_eq!(decoded.get(), 3);
        // Same length and same last bytes: told apart by the whole token.
        assert_eq!(cache.claims("Xoken-a", decode).unwrap()["sub"], "Xoken-a");
        assert_eq!(decoded.get(), 4);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stays_bounded() {
        let cache = TokenCache::new();
        let decoded = Cell::new(0);
        let decode = |t: &str| {
            decoded.set(decoded.get() + 1);
            Some(json!(t))
        };
        for i in 0..SLOTS * 3 {
            assert_eq!(
                *cache.claims(&format!("t{i}"), decode).unwrap(),
                Value::String(format!("t{i}"))
            );
        }
        assert_eq!(cache.len(), SLOTS);
        // The newest are kept, the oldest were evicted.
        let before = decoded.get();
        cache.claims(&format!("t{}", SLOTS * 3 - 1), decode);
        assert_eq!(decoded.get(), before);
        cache.claims("t0", decode);
        assert_eq!(decoded.get(), before + 1);
        // Tokens over the size cap are never kept.
        let long = "x".repeat(MAX_CACHED_TOKEN_BYTES + 1);
        cache.claims(&long, decode);
        cache.claims(&long, decode);
        assert_eq!(decoded.get(), before + 3);
    }
}

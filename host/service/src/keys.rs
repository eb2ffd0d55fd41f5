//! API keys: random, shown once when made, and stored only as their SHA-256; the service keeps the live ones in
//! memory ([`KeyRing`]) so checking a key costs a hash and a map look-up, not a database read.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use pingpost_engine::store::StoreError;
use pingpost_sqlite::SqliteStore;
use pingpost_sqlite::registry::Principal;

/// The SHA-256 of a key, hex: what the registry stores.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: `pp_` and 48 hex digits (192 bits from the OS).
pub fn new_key() -> String {
    format!("pp_{}", hex::encode(rand::random::<[u8; 24]>()))
}

/// The live (unrevoked) keys by hash.
#[derive(Debug, Default)]
pub struct KeyRing(ArcSwap<HashMap<String, Principal>>);

impl KeyRing {
    /// Reads the live keys from the registry.
    pub fn load(store: &SqliteStore) -> Result<Self, StoreError> {
        let ring = KeyRing::default();
        ring.reload(store)?;
        Ok(ring)
    }

    /// Re-reads the live keys (after a key is made or revoked).
    pub fn reload(&self, store: &SqliteStore) -> Result<(), StoreError> {
        let keys = store
            .keys()?
            .into_iter()
            .filter(|k| k.revoked_at_unix_ms.is_none())
            .map(|k| (k.key_sha256, k.principal))
            .collect();
        self.0.store(Arc::new(keys));
        Ok(())
    }

    /// Who holds `key`, if anyone.
    pub fn find(&self, key: &str) -> Option<Principal> {
        self.0.load().get(&hash_key(key)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_to_hex() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 48);
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

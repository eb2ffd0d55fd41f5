//! Consumer identity for duplicate detection and suppression: hashes of the normalised phone and email, so the
//! exchange can recognise a consumer again without keeping the raw values for it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 (hex) of a consumer's normalised phone (E.164) and email (lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsumerKeys {
    pub phone_sha256: String,
    pub email_sha256: String,
}

impl ConsumerKeys {
    /// Hashes already-normalised values (see [`super::validate`]).
    pub fn of(normalised_phone: &str, normalised_email: &str) -> Self {
        ConsumerKeys { phone_sha256: sha256_hex(normalised_phone), email_sha256: sha256_hex(normalised_email) }
    }

    /// True when either hash matches: the same phone or the same email is the same consumer.
    pub fn same_consumer(&self, other: &ConsumerKeys) -> bool {
        self.phone_sha256 == other.phone_sha256 || self.email_sha256 == other.email_sha256
    }
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_hashes_not_values() {
        let keys = ConsumerKeys::of("+13055550142", "jane@example.com");
        assert_eq!(keys.phone_sha256.len(), 64);
        assert!(!keys.phone_sha256.contains("3055550142"));
        assert_ne!(keys.phone_sha256, keys.email_sha256);
    }

    #[test]
    fn a_shared_phone_or_email_is_the_same_consumer() {
        let a = ConsumerKeys::of("+13055550142", "jane@example.com");
        assert!(a.same_consumer(&ConsumerKeys::of("+13055550142", "other@example.com")));
        assert!(a.same_consumer(&ConsumerKeys::of("+13055550199", "jane@example.com")));
        assert!(!a.same_consumer(&ConsumerKeys::of("+13055550199", "other@example.com")));
    }
}

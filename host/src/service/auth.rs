//! API keys: `Authorization: Bearer <key>` names a [`Principal`] (operator, publisher or buyer). Keys are random,
//! shown once when made, and stored only as their SHA-256; the service keeps the live ones in memory
//! ([`KeyRing`]) so checking a key costs a hash and a map look-up, not a database read.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;
use crate::auction::store::StoreError;
use crate::storage::SqliteStore;
pub use crate::storage::registry::{Principal, Role};

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

impl Principal {
    /// Ok for an operator; 403 otherwise.
    pub fn operator(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Operator => Ok(()),
            _ => Err(ApiError::forbidden("this needs an operator key")),
        }
    }

    /// The publisher id of a publisher key; 403 for any other key.
    pub fn publisher(&self) -> Result<&str, ApiError> {
        match (self.role, &self.owner_id) {
            (Role::Publisher, Some(id)) => Ok(id),
            _ => Err(ApiError::forbidden("this needs a publisher key")),
        }
    }

    /// The buyer id of a buyer key; 403 for any other key.
    pub fn buyer(&self) -> Result<&str, ApiError> {
        match (self.role, &self.owner_id) {
            (Role::Buyer, Some(id)) => Ok(id),
            _ => Err(ApiError::forbidden("this needs a buyer key")),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing_api_key", "send your API key as `Authorization: Bearer <key>`")
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing_api_key", "the Authorization header must be `Bearer <key>`")
            })?;
        state.keys.find(key).ok_or_else(|| ApiError::unauthorized("invalid_api_key", "unknown or revoked API key"))
    }
}

/// An operator's key. A handler that takes it answers `401` (no valid key) or `403` (another role) before it reads
/// anything else of the request.
#[derive(Debug, Clone)]
pub struct OperatorKey(pub Principal);

/// A publisher's key and the publisher it acts for (`403` for any other role).
#[derive(Debug, Clone)]
pub struct PublisherKey {
    pub principal: Principal,
    pub publisher_id: String,
}

/// A buyer's key and the buyer it acts for (`403` for any other role).
#[derive(Debug, Clone)]
pub struct BuyerKey {
    pub principal: Principal,
    pub buyer_id: String,
}

impl FromRequestParts<Arc<AppState>> for OperatorKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        principal.operator()?;
        Ok(OperatorKey(principal))
    }
}

impl FromRequestParts<Arc<AppState>> for PublisherKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let publisher_id = principal.publisher()?.to_owned();
        Ok(PublisherKey { principal, publisher_id })
    }
}

impl FromRequestParts<Arc<AppState>> for BuyerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let buyer_id = principal.buyer()?.to_owned();
        Ok(BuyerKey { principal, buyer_id })
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

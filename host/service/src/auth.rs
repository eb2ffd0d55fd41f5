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
use pingpost_engine::store::StoreError;
use pingpost_sqlite::SqliteStore;
pub use pingpost_sqlite::registry::{Principal, Role};

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

/// The principal whose key the request's `Authorization: Bearer <key>` names: `401` without a live key.
fn bearer(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_api_key", "send your API key as `Authorization: Bearer <key>`")
    })?;
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing_api_key", "the Authorization header must be `Bearer <key>`"))?;
    state.keys.find(key).ok_or_else(|| ApiError::unauthorized("invalid_api_key", "unknown or revoked API key"))
}

/// The id a publisher or buyer key acts for, when the key has `role`; `403` naming the role needed otherwise.
fn owner_as(principal: &Principal, role: Role, needed: &'static str) -> Result<String, ApiError> {
    match &principal.owner_id {
        Some(id) if principal.role == role => Ok(id.clone()),
        _ => Err(ApiError::forbidden(needed)),
    }
}

/// Any live key, whatever its role.
#[derive(Debug, Clone)]
pub struct AnyKey(pub Principal);

impl FromRequestParts<Arc<AppState>> for AnyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        bearer(parts, state).map(AnyKey)
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
        let principal = bearer(parts, state)?;
        if principal.role != Role::Operator {
            return Err(ApiError::forbidden("this needs an operator key"));
        }
        Ok(OperatorKey(principal))
    }
}

impl FromRequestParts<Arc<AppState>> for PublisherKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = bearer(parts, state)?;
        let publisher_id = owner_as(&principal, Role::Publisher, "this needs a publisher key")?;
        Ok(PublisherKey { principal, publisher_id })
    }
}

impl FromRequestParts<Arc<AppState>> for BuyerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let principal = bearer(parts, state)?;
        let buyer_id = owner_as(&principal, Role::Buyer, "this needs a buyer key")?;
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

//! Who is asking: `Authorization: Bearer <key>` names a [`Principal`] (operator, publisher or buyer) among the live
//! keys ([`KeyRing`](super::keys::KeyRing)). A handler states the role it needs by its extractor, so a wrong key is
//! `401`/`403` before anything else of the request is read.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
pub use pingpost_sqlite::registry::{Principal, Role};

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

//! Vertical routes: `GET /v1/verticals` and `GET /v1/verticals/{name}` for every key (publishers send leads that
//! follow them, buyers read the extras they define), `PUT|DELETE /v1/verticals/{name}` for operators.
//!
//! An exchange that defines no vertical has the built-in set; the first `PUT` or `DELETE` starts from that set, so
//! adding one vertical keeps the others. The last vertical cannot be deleted.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::{RawBody, Shared, from_value, with_path_key};
use crate::auth::{AnyKey, OperatorKey};
use crate::error::ApiError;
use pingpost_engine::{ExchangeConfig, Vertical, VerticalRules};

/// The routes.
pub fn routes() -> Router<Shared> {
    Router::new().route("/v1/verticals", get(list)).route("/v1/verticals/{name}", get(read).put(put).delete(delete))
}

/// The verticals in effect: the registry's, or the built-in set when it defines none.
async fn effective(state: &Shared) -> Result<Vec<Vertical>, ApiError> {
    let config = state.on_store(move |store| store.registry_config()).await?;
    Ok(in_effect(&config))
}

fn in_effect(config: &ExchangeConfig) -> Vec<Vertical> {
    if config.verticals.is_empty() { Vertical::builtin() } else { config.verticals.clone() }
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found(format!("no vertical {name:?}"))
}

/// `GET /v1/verticals`.
async fn list(State(state): State<Shared>, _key: AnyKey) -> Result<Json<Vec<Vertical>>, ApiError> {
    effective(&state).await.map(Json)
}

/// `GET /v1/verticals/{name}`.
async fn read(State(state): State<Shared>, _key: AnyKey, Path(name): Path<String>) -> Result<Json<Vertical>, ApiError> {
    let found = effective(&state).await?.into_iter().find(|v| v.name == name);
    found.map(Json).ok_or_else(|| unknown(&name))
}

/// `PUT /v1/verticals/{name}`: creates (201) or replaces (200) the vertical. The body's `name` may be left out; if
/// given it must be the path's. A definition that does not hold is 422 naming its field.
async fn put(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Vertical>), ApiError> {
    let vertical: Vertical = from_value(with_path_key(&body, "name", &name, "vertical")?)?;
    VerticalRules::new(&vertical).map_err(|e| ApiError::invalid(e.field.clone(), e.to_string()))?;
    let answer = vertical.clone();
    let created = state
        .change(move |config| {
            let mut verticals = in_effect(config);
            let created = match verticals.iter_mut().find(|v| v.name == vertical.name) {
                Some(existing) => {
                    *existing = vertical;
                    false
                }
                None => {
                    verticals.push(vertical);
                    true
                }
            };
            config.verticals = verticals;
            Ok(created)
        })
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(answer)))
}

/// `DELETE /v1/verticals/{name}`: leads of it are refused from then on (422 naming `vertical`).
async fn delete(State(state): State<Shared>, _: OperatorKey, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state
        .change(move |config| {
            let mut verticals = in_effect(config);
            let before = verticals.len();
            verticals.retain(|v| v.name != name);
            if verticals.len() == before {
                return Err(unknown(&name));
            }
            if verticals.is_empty() {
                return Err(ApiError::conflict("last_vertical", "an exchange keeps at least one vertical"));
            }
            config.verticals = verticals;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

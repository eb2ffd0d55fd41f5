//! Vertical routes: `GET /v1/verticals` and `GET /v1/verticals/{name}` for every key (publishers send leads that
//! follow them, buyers read the extras they define), `PUT|DELETE /v1/verticals/{name}` for operators.
//!
//! An exchange that defines no vertical has the built-in set; the first `PUT` or `DELETE` starts from that set, so
//! adding one vertical keeps the others. The last vertical cannot be deleted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{RawBody, Shared, from_value, with_path_key};
use crate::auth::{AnyKey, OperatorKey};
use crate::error::{ApiError, ErrorBody};
use pingpost_engine::{ExchangeConfig, Vertical, VerticalRules};

/// The routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(read, put, delete))
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
#[utoipa::path(get, path = "/v1/verticals", tag = "verticals",
    security(("operator" = []), ("publisher" = []), ("buyer" = [])),
    summary = "The verticals, each with what a lead needs and its extras schema",
    responses((status = 200, description = "Every vertical in effect (the built-in ones until an operator sets any)", body = Vec<Vertical>)))]
async fn list(State(state): State<Shared>, _key: AnyKey) -> Result<Json<Vec<Vertical>>, ApiError> {
    effective(&state).await.map(Json)
}

/// `GET /v1/verticals/{name}`.
#[utoipa::path(get, path = "/v1/verticals/{name}", tag = "verticals",
    security(("operator" = []), ("publisher" = []), ("buyer" = [])),
    summary = "One vertical",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The vertical", body = Vertical),
        (status = 404, description = "No vertical has this name", body = ErrorBody),
    ))]
async fn read(State(state): State<Shared>, _key: AnyKey, Path(name): Path<String>) -> Result<Json<Vertical>, ApiError> {
    let found = effective(&state).await?.into_iter().find(|v| v.name == name);
    found.map(Json).ok_or_else(|| unknown(&name))
}

/// `PUT /v1/verticals/{name}`: creates (201) or replaces (200) the vertical. The body's `name` may be left out; if
/// given it must be the path's. A definition that does not hold is 422 naming its field.
#[utoipa::path(put, path = "/v1/verticals/{name}", tag = "operator", security(("operator" = [])),
    summary = "Create or replace a vertical",
    params(("name" = String, Path, description = "The vertical's name; the body's `name` may be left out")),
    request_body(content = Vertical),
    responses(
        (status = 200, description = "Replaced", body = Vertical),
        (status = 201, description = "Created", body = Vertical),
        (status = 422, description = "The vertical is invalid, or the exchange does not build with it", body = ErrorBody),
    ))]
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
#[utoipa::path(delete, path = "/v1/verticals/{name}", tag = "operator", security(("operator" = [])),
    summary = "Delete a vertical (its leads are refused from then on)",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No vertical has this name", body = ErrorBody),
        (status = 409, description = "`last_vertical`: an exchange keeps at least one", body = ErrorBody),
        (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody),
    ))]
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

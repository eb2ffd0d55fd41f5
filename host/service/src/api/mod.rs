//! The HTTP API: one router, a file per audience ([`publisher`], [`buyer`], [`operator`]; [`verticals`] for all three)
//! and the pieces they share here: the JSON body reader that names the bad field, the error-shaping middleware,
//! request metrics; publishers' `Idempotency-Key` handling is [`idempotency`], their answers [`answers`].

pub mod answers;
pub mod books;
pub mod buyer;
pub mod buyer_campaigns;
pub mod idempotency;
pub mod operator;
pub mod publisher;
pub mod verticals;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tower_http::timeout::TimeoutLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody, code_for_status};
use super::listener::{MAX_HEADER_BYTES, MAX_HEADER_COUNT};
use super::openapi;
use super::state::AppState;
pub use super::state::blocking;

/// The shared state as handlers see it.
pub type Shared = Arc<AppState>;

/// The whole API.
pub fn router(state: Shared) -> Router {
    let settings = &state.settings;
    let json_limit = DefaultBodyLimit::max(settings.max_body_bytes);
    let plugin_limit = DefaultBodyLimit::max(settings.max_plugin_bytes);
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    let (routes, generated) = documented(json_limit, plugin_limit).split_for_parts();
    DOCUMENT.get_or_init(|| openapi::finish(generated));
    routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        // Outside the timeout, so its bare 503 gets the JSON error body too.
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(header_limits))
        .with_state(state)
}

/// Every route, each with its body limit and the middleware of its audience. The router and the OpenAPI document
/// are both made from this, so a route is documented exactly when it is served.
fn documented(json_limit: DefaultBodyLimit, plugin_limit: DefaultBodyLimit) -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .merge(publisher::routes().layer(json_limit).layer(middleware::from_fn(to_completion)))
        .merge(publisher::upload_routes().layer(plugin_limit))
        .merge(buyer::routes().layer(json_limit))
        .merge(buyer_campaigns::routes().layer(json_limit))
        .merge(buyer::upload_routes().layer(plugin_limit))
        .merge(operator::routes().layer(json_limit))
        .merge(books::routes().layer(json_limit))
        .merge(operator::upload_routes().layer(plugin_limit))
        .merge(verticals::routes().layer(json_limit))
}

/// The finished document, made once: by the first router built, or by [`document`] without one (the paths and
/// schemas do not depend on the body limits).
static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();

/// The API's OpenAPI 3.1 document, as `GET /openapi.json` serves it.
pub fn document() -> &'static serde_json::Value {
    DOCUMENT.get_or_init(|| {
        let limit = DefaultBodyLimit::disable();
        openapi::finish(documented(limit, limit).into_openapi())
    })
}

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "health", summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> axum::Json<&'static serde_json::Value> {
    axum::Json(document())
}

/// Refuses a request with more than [`MAX_HEADER_COUNT`] header lines or [`MAX_HEADER_BYTES`] of them: `431
/// headers_too_large` with the JSON error body. (Far larger heads are refused by hyper itself, with a bare 431,
/// before any of this code runs.)
async fn header_limits(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        let message = format!(
            "the request carries {} header lines, {bytes} bytes; at most {MAX_HEADER_COUNT} lines, {MAX_HEADER_BYTES} bytes",
            headers.len()
        );
        return ApiError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", message)
            .into_response();
    }
    next.run(request).await
}

/// `GET /healthz`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok` (a failing check is an error answer).
    #[schema(example = "ok")]
    status: &'static str,
    /// The database's migration version.
    schema_version: u32,
}

/// `GET /healthz`: the process is up, its database answers and it can write (`503 store_unavailable` while it
/// cannot, e.g. on a full disk).
#[utoipa::path(get, path = "/healthz", tag = "health",
    summary = "Liveness: the process is up and its database answers and writes",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "`store_unavailable`: the store cannot write (e.g. a full disk)", body = ErrorBody),
    ))]
async fn healthz(State(state): State<Shared>) -> Result<axum::Json<Health>, ApiError> {
    state.store_writable().await?;
    let store = state.store.clone();
    let schema_version = tokio::task::spawn_blocking(move || store.schema_version())
        .await
        .map_err(|e| ApiError::internal("the health check", e))??;
    Ok(axum::Json(Health { status: "ok", schema_version }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Counts every request by route and status.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Gives every error response the API's JSON error body — also those produced outside the handlers (no route,
/// wrong method, timeout, axum's own extractor rejections).
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { message };
    let mut shaped = ApiError::new(status, code_for_status(status), message).into_response();
    if let Some(retry) = parts.headers.get(header::RETRY_AFTER) {
        shaped.headers_mut().insert(header::RETRY_AFTER, retry.clone());
    }
    shaped
}

/// A request body, read whole within the route's size limit; too large → 413 with the API's JSON error.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl FromRequest<Shared> for RawBody {
    type Rejection = ApiError;

    /// A body that does not arrive within `server.body_read_timeout_ms` is `408 body_timeout`: a stalled client
    /// holds a connection, not an auction.
    async fn from_request(request: Request, state: &Shared) -> Result<Self, Self::Rejection> {
        let limit = Duration::from_millis(state.settings.body_read_timeout_ms);
        match tokio::time::timeout(limit, Bytes::from_request(request, state)).await {
            Ok(read) => read.map(RawBody).map_err(ApiError::from_body),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} ms", limit.as_millis()),
            )),
        }
    }
}

/// Parses a JSON body into `T`: 400 when it is not JSON, 422 naming the field when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::malformed(e.to_string()))?;
    from_value(value)
}

/// The JSON object of a `PUT` body whose field `key` names the resource at the path: filled in from `path_value`
/// when absent, refused (`422` naming it) when it differs; `what` names the resource in the messages.
pub fn with_path_key(body: &[u8], key: &str, path_value: &str, what: &str) -> Result<serde_json::Value, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::malformed(e.to_string()))?;
    let object =
        value.as_object_mut().ok_or_else(|| ApiError::invalid("(body)", format!("a {what} is a JSON object")))?;
    match object.get(key) {
        None | Some(serde_json::Value::Null) => {
            object.insert(key.to_owned(), path_value.into());
        }
        Some(serde_json::Value::String(given)) if given == path_value => {}
        Some(_) => {
            return Err(ApiError::invalid(
                key,
                format!("the body's {key} must be the path's ({path_value:?}) or absent"),
            ));
        }
    }
    Ok(value)
}

/// Converts a parsed JSON value into `T`, naming the offending field on failure (422).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let message = e.into_inner().to_string();
        if field == "." {
            ApiError::invalid("", message).with_field("(body)")
        } else {
            ApiError::invalid(field, message)
        }
    })
}

/// Middleware: runs the rest of the request on its own task and waits for it, so it finishes even when the request is
/// dropped (the client went away, or the request timeout answered 503 first). On the publisher routes: an auction
/// cut off between its cap reservation and its sale would leave the reservation pending and, for an HTTP buyer
/// already holding the post, a lead delivered with no sale recorded. The publisher's retry with the same
/// `Idempotency-Key` then gets the answer it missed.
async fn to_completion(request: Request, next: Next) -> Response {
    tokio::spawn(next.run(request))
        .await
        .unwrap_or_else(|e| ApiError::internal("the request's task", e).into_response())
}

/// A JSON response from a status and a serialised body.
pub fn json_response((status, body): (StatusCode, String)) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Serialises `value` as a JSON answer with `status`.
pub fn to_json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<(StatusCode, String), ApiError> {
    serde_json::to_string(value).map(|body| (status, body)).map_err(|e| ApiError::internal("writing the answer", e))
}

//! Operator routes (an operator key only; every other key gets 403):
//!
//! - publishers, buyers and campaigns: `GET /v1/{kind}`, `GET|PUT|PATCH /v1/{kind}/{id}` (create or replace with the
//!   engine's config JSON; the path's id is the entity's id) and `POST /v1/{kind}/{id}/pause|resume`. Every change
//!   goes through [`AppState::change`](crate::state::AppState::change): the exchange is rebuilt with it and
//!   swapped in, or the change is refused (422, nothing saved) with the builder's message;
//! - plugins: `GET /v1/plugins`, `GET /v1/plugins/{name}`, `POST /v1/plugins/{name}/versions` (the `.wasm` bytes;
//!   validated and compiled before it is stored), `DELETE /v1/plugins/{name}/versions/{version}`,
//!   `POST /v1/plugins/{name}/activate|rollback|disable|enable`;
//! - API keys: `POST /v1/keys` (the key is shown once), `GET /v1/keys` (hashes only), `DELETE /v1/keys/{id}`;
//! - reads: `GET /v1/leads/{lead_id}/trace` (outcome, trace, sales, PII audit), `GET /v1/deliveries?status=`,
//!   `GET /metrics` (Prometheus).
//!
//! A paused publisher's leads are answered `rejected` with reason "publisher paused" (a lead the exchange refuses,
//! as for an unknown publisher: sending it again does not help until the operator resumes the publisher); a paused
//! buyer's campaigns are ineligible ("buyer paused" in the trace).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{RawBody, Shared, blocking, from_value, parse_json, with_path_key};
use crate::auth::{OperatorKey, Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::keys::{hash_key, new_key};
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::openapi::WasmComponent;
use crate::state::Uploaded;
use pingpost_engine::eligibility::cap_windows;
use pingpost_engine::{AuctionStore, Buyer, Campaign, CampaignStatus, CampaignTarget, ExchangeConfig, Publisher};
use pingpost_sqlite::registry::{ArchivedEntity, EntityKind, KeyRecord, PluginRecord};
use pingpost_sqlite::{DeliveryStatus, OutboxDelivery, PiiAuditEntry, SqliteStore};

/// The JSON routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(publishers::list))
        .routes(routes!(publishers::read, publishers::put, publishers::patch, publishers::delete))
        .routes(routes!(publishers::pause))
        .routes(routes!(publishers::resume))
        .routes(routes!(buyers::list))
        .routes(routes!(buyers::read, buyers::put, buyers::patch, buyers::delete))
        .routes(routes!(buyers::pause))
        .routes(routes!(buyers::resume))
        .routes(routes!(campaigns::list))
        .routes(routes!(campaigns::read, campaigns::put, campaigns::patch, campaigns::delete))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(list_plugins))
        .routes(routes!(read_plugin))
        .routes(routes!(delete_plugin_version))
        .routes(routes!(activate_plugin))
        .routes(routes!(rollback_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(lead_trace))
        .routes(routes!(list_archive))
        .routes(routes!(list_deliveries))
        .routes(routes!(metrics))
}

/// The upload route (its own body limit).
pub fn upload_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(upload_plugin_version))
}

/// The routes of one kind of [`Entity`]: documented wrappers of the generic handlers, one module per kind.
macro_rules! entity_routes {
    ($module:ident, $kind:ident, list = $list:tt, one = $one:tt, pause = $pause:tt, resume = $resume:tt,
     patch_example = $patch_example:tt,
     summaries = [$list_summary:tt, $read_summary:tt, $put_summary:tt, $patch_summary:tt, $pause_summary:tt,
        $resume_summary:tt, $delete_summary:tt]) => {
        mod $module {
            use super::*;

            #[utoipa::path(get, path = $list, tag = "operator", security(("operator" = [])), summary = $list_summary,
                responses((status = 200, description = "In creation order", body = Vec<$kind>)))]
            pub(super) async fn list(state: State<Shared>, key: OperatorKey) -> Result<Json<Vec<$kind>>, ApiError> {
                super::list::<$kind>(state, key).await
            }

            #[utoipa::path(get, path = $one, tag = "operator", security(("operator" = [])), summary = $read_summary,
                params(("id" = String, Path)),
                responses((status = 200, body = $kind), (status = 404, description = "No such id", body = ErrorBody)))]
            pub(super) async fn read(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
            ) -> Result<Json<$kind>, ApiError> {
                super::read::<$kind>(state, key, id).await
            }

            #[utoipa::path(put, path = $one, tag = "operator", security(("operator" = [])), summary = $put_summary,
                params(("id" = String, Path, description = "The id; the body's `id` may be left out")),
                request_body(content = $kind),
                responses(
                    (status = 200, description = "Replaced", body = $kind),
                    (status = 201, description = "Created", body = $kind),
                    (status = 422, description = "Invalid, or the exchange does not build with it (nothing saved)",
                        body = ErrorBody),
                ))]
            pub(super) async fn put(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
                body: RawBody,
            ) -> Result<(StatusCode, Json<$kind>), ApiError> {
                super::put::<$kind>(state, key, id, body).await
            }

            #[utoipa::path(patch, path = $one, tag = "operator", security(("operator" = [])), summary = $patch_summary,
                params(("id" = String, Path)),
                request_body(content = Object, content_type = "application/merge-patch+json",
                    description = "A JSON merge patch (RFC 7396): the fields it names are set (`null` puts a field back \
                        to its default), nested objects are merged, the rest is kept; `id` may be repeated, not changed",
                    example = json!($patch_example)),
                responses(
                    (status = 200, description = "Patched", body = $kind),
                    (status = 404, description = "No such id", body = ErrorBody),
                    (status = 422, description = "The patched entity is invalid, or the exchange does not build with it \
                        (nothing saved)", body = ErrorBody),
                ))]
            pub(super) async fn patch(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
                body: RawBody,
            ) -> Result<Json<$kind>, ApiError> {
                super::patch::<$kind>(state, key, id, body).await
            }

            #[utoipa::path(delete, path = $one, tag = "operator", security(("operator" = [])), summary = $delete_summary,
                params(("id" = String, Path)),
                responses(
                    (status = 204, description = "Deleted: out of the exchange at once, its config archived \
                        (`GET /v1/archive`), its history kept"),
                    (status = 404, description = "No such id", body = ErrorBody),
                    (status = 409, description = "`in_use`: other entities still name it (a buyer's campaigns)",
                        body = ErrorBody),
                ))]
            pub(super) async fn delete(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
            ) -> Result<StatusCode, ApiError> {
                super::delete::<$kind>(state, key, id).await
            }

            #[utoipa::path(post, path = $pause, tag = "operator", security(("operator" = [])), summary = $pause_summary,
                params(("id" = String, Path)),
                responses((status = 200, body = $kind), (status = 404, description = "No such id", body = ErrorBody),
                    (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody)))]
            pub(super) async fn pause(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
            ) -> Result<Json<$kind>, ApiError> {
                super::pause::<$kind>(state, key, id).await
            }

            #[utoipa::path(post, path = $resume, tag = "operator", security(("operator" = [])), summary = $resume_summary,
                params(("id" = String, Path)),
                responses((status = 200, body = $kind), (status = 404, description = "No such id", body = ErrorBody),
                    (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody)))]
            pub(super) async fn resume(
                state: State<Shared>,
                key: OperatorKey,
                id: Path<String>,
            ) -> Result<Json<$kind>, ApiError> {
                super::resume::<$kind>(state, key, id).await
            }
        }
    };
}

entity_routes!(
    publishers,
    Publisher,
    list = "/v1/publishers",
    one = "/v1/publishers/{id}",
    pause = "/v1/publishers/{id}/pause",
    resume = "/v1/publishers/{id}/resume",
    patch_example = { "floor_cents": 800 },
    summaries = [
        "List publishers",
        "One publisher",
        "Create or replace a publisher",
        "Change some of a publisher's fields",
        "Pause a publisher",
        "Resume a publisher",
        "Delete a publisher (archived)"
    ]
);
entity_routes!(
    buyers,
    Buyer,
    list = "/v1/buyers",
    one = "/v1/buyers/{id}",
    pause = "/v1/buyers/{id}/pause",
    resume = "/v1/buyers/{id}/resume",
    patch_example = { "name": "Acme Health Direct" },
    summaries = [
        "List buyers",
        "One buyer",
        "Create or replace a buyer",
        "Change some of a buyer's fields",
        "Pause a buyer (all its campaigns)",
        "Resume a buyer",
        "Delete a buyer without campaigns (archived)"
    ]
);
entity_routes!(
    campaigns,
    Campaign,
    list = "/v1/campaigns",
    one = "/v1/campaigns/{id}",
    pause = "/v1/campaigns/{id}/pause",
    resume = "/v1/campaigns/{id}/resume",
    patch_example = { "caps": { "leads_per_day": 50 } },
    summaries = [
        "List campaigns",
        "One campaign",
        "Create or replace a campaign",
        "Change some of a campaign's fields",
        "Pause a campaign",
        "Resume a campaign",
        "Delete a campaign (archived; never pinged again)"
    ]
);

/// A publisher, buyer or campaign: one list of the exchange's config, addressed by id.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind's name in messages (`publisher`, `buyer`, `campaign`).
    const KIND: &'static str;
    /// The entities of this kind in `config`.
    fn all(config: &mut ExchangeConfig) -> &mut Vec<Self>;
    /// The entity's id.
    fn id(&self) -> &str;
    /// Pauses or resumes it.
    fn set_status(&mut self, status: CampaignStatus);
    /// Why entity `id` may not be deleted from `config` while other entities name it, if it may not.
    fn named_by(_config: &ExchangeConfig, _id: &str) -> Option<String> {
        None
    }
    /// The plugin it names (with the field naming it), if any.
    fn plugin_ref(&self) -> Option<(&'static str, &str)> {
        None
    }
}

impl Entity for Publisher {
    const KIND: &'static str = "publisher";
    fn all(config: &mut ExchangeConfig) -> &mut Vec<Self> {
        &mut config.publishers
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn set_status(&mut self, status: CampaignStatus) {
        self.status = status;
    }
    fn plugin_ref(&self) -> Option<(&'static str, &str)> {
        Some(("redactor", &self.redactor))
    }
}

impl Entity for Buyer {
    const KIND: &'static str = "buyer";
    fn all(config: &mut ExchangeConfig) -> &mut Vec<Self> {
        &mut config.buyers
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn set_status(&mut self, status: CampaignStatus) {
        self.status = status;
    }
    fn named_by(config: &ExchangeConfig, id: &str) -> Option<String> {
        let campaigns: Vec<&str> =
            config.campaigns.iter().filter(|c| c.buyer_id == id).map(|c| c.id.as_str()).collect();
        (!campaigns.is_empty()).then(|| format!("buyer {id:?} still has campaigns {campaigns:?}: delete them first"))
    }
}

impl Entity for Campaign {
    const KIND: &'static str = "campaign";
    fn all(config: &mut ExchangeConfig) -> &mut Vec<Self> {
        &mut config.campaigns
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn set_status(&mut self, status: CampaignStatus) {
        self.status = status;
    }
    fn plugin_ref(&self) -> Option<(&'static str, &str)> {
        match &self.target {
            CampaignTarget::Wasm { plugin, .. } => Some(("target.plugin", plugin)),
            CampaignTarget::Http(_) => None,
        }
    }
}

/// The registry's configuration (what operators edit; it includes what a disabled plugin keeps out of the live
/// exchange).
async fn registry(state: &Shared) -> Result<ExchangeConfig, ApiError> {
    state.on_store(move |store| store.registry_config()).await
}

/// `GET /v1/{kind}`: every entity of the kind, in creation order.
async fn list<T: Entity>(State(state): State<Shared>, _: OperatorKey) -> Result<Json<Vec<T>>, ApiError> {
    let mut config = registry(&state).await?;
    Ok(Json(std::mem::take(T::all(&mut config))))
}

/// `GET /v1/{kind}/{id}`.
async fn read<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<T>, ApiError> {
    let mut config = registry(&state).await?;
    let found = T::all(&mut config).iter().find(|e| e.id() == id).cloned();
    found.map(Json).ok_or_else(|| unknown::<T>(&id))
}

fn unknown<T: Entity>(id: &str) -> ApiError {
    ApiError::not_found(format!("no {} {id:?}", T::KIND))
}

/// `PUT /v1/{kind}/{id}`: creates the entity (201) or replaces it (200) with the body, a config of the engine's
/// type. The body's `id` may be left out; if given it must be the path's.
async fn put<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<T>), ApiError> {
    check_id(&id, "id")?;
    let entity: T = from_value(with_path_key(&body, "id", &id, T::KIND)?)?;
    check_plugins(&state, &entity).await?;
    let answer = entity.clone();
    let created = state
        .change(move |config| {
            let all = T::all(config);
            match all.iter_mut().find(|e| e.id() == entity.id()) {
                Some(existing) => {
                    *existing = entity;
                    Ok(false)
                }
                None => {
                    all.push(entity);
                    Ok(true)
                }
            }
        })
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(answer)))
}

/// `PATCH /v1/{kind}/{id}`: applies a JSON merge patch (RFC 7396) to the entity — the fields the patch names are
/// set (`null` puts one back to its default), nested objects are merged, every other field keeps its value — and
/// saves it as `PUT` would (checked, then the exchange rebuilt with it, or refused with nothing saved). The patch may
/// repeat the id, not change it.
async fn patch<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<T>, ApiError> {
    let mut patch: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::malformed(e.to_string()))?;
    let Some(fields) = patch.as_object_mut() else {
        return Err(ApiError::invalid("(body)", format!("a merge patch of a {} is a JSON object", T::KIND)));
    };
    // As in a PUT, a null id is an absent one.
    match fields.get("id") {
        Some(serde_json::Value::Null) => drop(fields.remove("id")),
        Some(given) if given.as_str() != Some(id.as_str()) => {
            return Err(ApiError::invalid("id", format!("a patch cannot change the id ({id:?})")));
        }
        _ => {}
    }
    let mut config = registry(&state).await?;
    let current = T::all(&mut config).iter().find(|e| e.id() == id).cloned().ok_or_else(|| unknown::<T>(&id))?;
    check_plugins(&state, &patched(&current, &patch)?).await?;
    // Applied again to the entity as it is when the change runs, so a change saved in between is not lost.
    state
        .change(move |config| {
            let entity = T::all(config).iter_mut().find(|e| e.id() == id).ok_or_else(|| unknown::<T>(&id))?;
            *entity = patched(entity, &patch)?;
            Ok(entity.clone())
        })
        .await
        .map(Json)
}

/// `entity` with the merge patch `patch` applied; 422 naming the field when the result is not a valid entity.
pub(super) fn patched<T: Entity>(entity: &T, patch: &serde_json::Value) -> Result<T, ApiError> {
    let mut value = serde_json::to_value(entity).map_err(|e| ApiError::internal("patching", e))?;
    json_patch::merge(&mut value, patch);
    from_value(value)
}

/// Refuses (422, naming the field) a publisher's redactor or a Wasm campaign's plugin that is not uploaded.
async fn check_plugins<T: Entity>(state: &Shared, entity: &T) -> Result<(), ApiError> {
    let reference = entity.plugin_ref().map(|(field, name)| (field, name.to_owned()));
    let Some((field, name)) = reference else { return Ok(()) };
    let store = state.store.clone();
    let lookup = name.clone();
    let exists = blocking(move || Ok(store.plugin(&lookup)?.is_some())).await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::invalid(field, format!("no plugin {name:?} is uploaded (POST /v1/plugins/{name}/versions)")))
    }
}

/// `DELETE /v1/{kind}/{id}`: removes the entity from the exchange (the next auction no longer has it) and archives
/// its config; its history — sales, traces, the PII audit — still names it. `409 in_use` while other entities name it.
async fn delete<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .change(move |config| {
            if let Some(why) = T::named_by(config, &id) {
                return Err(ApiError::conflict("in_use", why));
            }
            let all = T::all(config);
            let position = all.iter().position(|e| e.id() == id).ok_or_else(|| unknown::<T>(&id))?;
            all.remove(position);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/archive`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ArchiveQuery {
    /// Only this kind: `publisher`, `buyer`, `campaign` or `vertical`.
    #[param(value_type = Option<String>, pattern = "^(publisher|buyer|campaign|vertical)$")]
    kind: Option<String>,
}

/// `GET /v1/archive?kind=`: what was deleted, oldest first, each with the config it had.
#[utoipa::path(get, path = "/v1/archive", tag = "operator", security(("operator" = [])),
    summary = "Deleted publishers, buyers, campaigns and verticals, with the config each had",
    params(ArchiveQuery),
    responses((status = 200, body = Vec<ArchivedEntity>), (status = 422, description = "An unknown kind", body = ErrorBody)))]
async fn list_archive(
    State(state): State<Shared>,
    _: OperatorKey,
    query: Result<Query<ArchiveQuery>, QueryRejection>,
) -> Result<Json<Vec<ArchivedEntity>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("kind", e.body_text()))?;
    let kind = match query.kind.as_deref() {
        None => None,
        Some("publisher") => Some(EntityKind::Publisher),
        Some("buyer") => Some(EntityKind::Buyer),
        Some("campaign") => Some(EntityKind::Campaign),
        Some("vertical") => Some(EntityKind::Vertical),
        Some(other) => {
            return Err(ApiError::invalid("kind", format!("{other:?} is not publisher, buyer, campaign or vertical")));
        }
    };
    state.on_store(move |store| store.archived(kind)).await.map(Json)
}

/// `POST /v1/{kind}/{id}/pause`.
async fn pause<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<T>, ApiError> {
    set_status::<T>(&state, id, CampaignStatus::Paused).await.map(Json)
}

/// `POST /v1/{kind}/{id}/resume`.
async fn resume<T: Entity>(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<T>, ApiError> {
    set_status::<T>(&state, id, CampaignStatus::Active).await.map(Json)
}

async fn set_status<T: Entity>(state: &Shared, id: String, status: CampaignStatus) -> Result<T, ApiError> {
    state
        .change(move |config| {
            let entity = T::all(config).iter_mut().find(|e| e.id() == id).ok_or_else(|| unknown::<T>(&id))?;
            entity.set_status(status);
            Ok(entity.clone())
        })
        .await
}

/// Ids and plugin names: 1–128 characters of letters, digits, `.`, `_`, `-` (and `:` for plugin names).
fn check_id(id: &str, field: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be 1–128 characters: letters, digits, '.', '_', '-' or ':'"))
    }
}

/// `GET /v1/plugins`: every plugin with its versions.
#[utoipa::path(get, path = "/v1/plugins", tag = "operator", security(("operator" = [])),
    summary = "List plugins with their versions",
    responses((status = 200, body = Vec<PluginRecord>)))]
async fn list_plugins(State(state): State<Shared>, _: OperatorKey) -> Result<Json<Vec<PluginRecord>>, ApiError> {
    state.on_store(move |store| store.plugins()).await.map(Json)
}

/// `GET /v1/plugins/{name}`: its versions, the live one, and whether it is disabled.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "operator", security(("operator" = [])),
    summary = "One plugin with its versions",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginRecord), (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn read_plugin(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(name): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    plugin_record(&state, name).await.map(Json)
}

async fn plugin_record(state: &Shared, name: String) -> Result<PluginRecord, ApiError> {
    let state = state.clone();
    blocking(move || state.plugin_record(&name)).await
}

/// `POST /v1/plugins/{name}/versions`: the body is a `.wasm` file; it is validated and compiled, then stored as the
/// plugin's next version (not activated). A new name makes an operator-owned plugin of the upload's world; a version
/// of an existing plugin must be of its world.
#[utoipa::path(post, path = "/v1/plugins/{name}/versions", tag = "operator", security(("operator" = [])),
    summary = "Upload a plugin version (validated and compiled first; not made live)",
    params(("name" = String, Path, description = "1–128 letters, digits, `.`, `_`, `-`, `:`")),
    request_body(description = "A buyer or redactor component", content((WasmComponent = "application/wasm"), (WasmComponent = "application/octet-stream"))),
    responses(
        (status = 201, description = "Stored as the plugin's next version", body = Uploaded),
        (status = 413, description = "Larger than `server.max_plugin_bytes`", body = ErrorBody),
        (status = 422, description = "Not a valid component of the contract, or of another world than the plugin's", body = ErrorBody),
    ))]
async fn upload_plugin_version(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    check_id(&name, "name")?;
    let lookup = name.clone();
    let existing = state.on_store(move |store| store.plugin(&lookup)).await?;
    let (owner, world) = match existing {
        Some(record) => ((record.owner_role, record.owner_id), Some(record.world)),
        None => ((Role::Operator, None), None),
    };
    let uploaded = state.upload_plugin(name.clone(), owner, world, body.to_vec(), &principal).await?;
    state.prune_versions(&name).await;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// `DELETE /v1/plugins/{name}/versions/{version}`: deletes a version that is not live (`409 plugin_version_live`
/// otherwise), freeing its owner's quota.
#[utoipa::path(delete, path = "/v1/plugins/{name}/versions/{version}", tag = "operator",
    security(("operator" = [])),
    summary = "Delete a version that is not live",
    params(("name" = String, Path), ("version" = String, Path, description = "The version number")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such plugin or version", body = ErrorBody),
        (status = 409, description = "`plugin_version_live`", body = ErrorBody),
    ))]
async fn delete_plugin_version(
    State(state): State<Shared>,
    _: OperatorKey,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let version: u32 =
        version.parse().map_err(|_| ApiError::not_found(format!("plugin {name:?} has no version {version:?}")))?;
    state.delete_version(&name, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/plugins/{name}/activate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ActivateRequest)]
struct ActivateBody {
    #[schema(minimum = 1)]
    version: u32,
}

/// `POST /v1/plugins/{name}/activate` `{"version": n}`: a hot swap; refused (422, nothing changes) when a campaign or
/// publisher using the plugin does not build with that version.
#[utoipa::path(post, path = "/v1/plugins/{name}/activate", tag = "operator", security(("operator" = [])),
    summary = "Make a version live (hot swap)",
    params(("name" = String, Path)),
    request_body(content = ActivateBody, example = json!({ "version": 2 })),
    responses(
        (status = 200, description = "Live: every campaign or publisher using the plugin runs it from the next auction", body = PluginRecord),
        (status = 404, description = "No such plugin or version", body = ErrorBody),
        (status = 422, description = "A user of the plugin does not build with that version (nothing changes)", body = ErrorBody),
    ))]
async fn activate_plugin(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<PluginRecord>, ApiError> {
    let ActivateBody { version } = parse_json(&body)?;
    state.activate_plugin(name.clone(), version, &principal).await?;
    plugin_record(&state, name).await.map(Json)
}

/// `POST /v1/plugins/{name}/rollback`: back to the version that was live before the current one (each rollback goes
/// one activation further back, never forward again).
#[utoipa::path(post, path = "/v1/plugins/{name}/rollback", tag = "operator", security(("operator" = [])),
    summary = "Go back to the previously live version",
    params(("name" = String, Path)),
    responses(
        (status = 200, body = PluginRecord),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "`nothing_to_roll_back`", body = ErrorBody),
        (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody),
    ))]
async fn rollback_plugin(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(name): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    plugin_record(&state, name.clone()).await?;
    state.rollback_plugin(name.clone(), &principal).await?;
    plugin_record(&state, name).await.map(Json)
}

/// `POST /v1/plugins/{name}/disable`: the campaigns and publishers using it stop taking part.
#[utoipa::path(post, path = "/v1/plugins/{name}/disable", tag = "operator", security(("operator" = [])),
    summary = "Stop running a plugin",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginRecord), (status = 404, description = "No such plugin", body = ErrorBody), (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody)))]
async fn disable_plugin(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(name): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    state.set_plugin_disabled(name.clone(), true).await?;
    plugin_record(&state, name).await.map(Json)
}

/// `POST /v1/plugins/{name}/enable`.
#[utoipa::path(post, path = "/v1/plugins/{name}/enable", tag = "operator", security(("operator" = [])),
    summary = "Run a disabled plugin again",
    params(("name" = String, Path)),
    responses((status = 200, body = PluginRecord), (status = 404, description = "No such plugin", body = ErrorBody), (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody)))]
async fn enable_plugin(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(name): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    state.set_plugin_disabled(name.clone(), false).await?;
    plugin_record(&state, name).await.map(Json)
}

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyRequest)]
struct NewKeyBody {
    role: Role,
    /// The publisher or buyer the key acts for; absent for an operator key.
    #[serde(default)]
    owner_id: Option<String>,
    /// The key holder's id; default `<role>:<owner>:<random>`.
    #[serde(default)]
    id: Option<String>,
}

/// The answer to `POST /v1/keys`: the only time the key itself is shown.
#[derive(Debug, Serialize, ToSchema)]
struct NewKey {
    id: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_id: Option<String>,
    key: String,
}

/// `POST /v1/keys`: makes a key (201). A publisher or buyer key's owner must be in the registry.
#[utoipa::path(post, path = "/v1/keys", tag = "operator", security(("operator" = [])),
    summary = "Make an API key (shown once)",
    request_body(content = NewKeyBody, example = json!({ "role": "publisher", "owner_id": "sunshine-quotes" })),
    responses(
        (status = 201, description = "The key, shown this once", body = NewKey),
        (status = 409, description = "`duplicate_id`", body = ErrorBody),
        (status = 422, description = "An operator key with an owner, a publisher or buyer key without a known one, or an \
            `id` that is not 1–128 letters, digits, `.`, `_`, `-`, `:`", body = ErrorBody),
    ))]
async fn create_key(
    State(state): State<Shared>,
    _: OperatorKey,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let NewKeyBody { role, owner_id, id } = parse_json(&body)?;
    let owner_id = owner_id.filter(|o| !o.is_empty());
    let config = registry(&state).await?;
    match (role, &owner_id) {
        (Role::Operator, Some(_)) => return Err(ApiError::invalid("owner_id", "an operator key has no owner")),
        (Role::Operator, None) => {}
        (Role::Publisher | Role::Buyer, None) => {
            return Err(ApiError::invalid("owner_id", format!("a {} key needs its owner's id", role.as_str())));
        }
        (Role::Publisher, Some(owner)) if !config.publishers.iter().any(|p| &p.id == owner) => {
            return Err(ApiError::invalid("owner_id", format!("no publisher {owner:?}")));
        }
        (Role::Buyer, Some(owner)) if !config.buyers.iter().any(|b| &b.id == owner) => {
            return Err(ApiError::invalid("owner_id", format!("no buyer {owner:?}")));
        }
        _ => {}
    }
    let id = match id {
        Some(id) => {
            check_id(&id, "id")?;
            id
        }
        None => format!(
            "{}:{}:{}",
            role.as_str(),
            owner_id.as_deref().unwrap_or("key"),
            hex::encode(rand::random::<[u8; 4]>())
        ),
    };
    let key = new_key();
    let holder = Principal { id: id.clone(), role, owner_id: owner_id.clone() };
    let store = state.store.clone();
    let (hash, now, keys_state) = (hash_key(&key), state.now(), state.clone());
    blocking(move || {
        if store.keys()?.iter().any(|k| k.principal.id == holder.id) {
            return Err(
                ApiError::conflict("duplicate_id", format!("a key holder {:?} exists", holder.id)).with_field("id")
            );
        }
        store.insert_principal(&holder, &hash, now)?;
        keys_state.keys.reload(&store)?;
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(NewKey { id, role, owner_id, key })))
}

/// `GET /v1/keys`: every key holder, revoked ones included, with the SHA-256 of the key (never the key).
#[utoipa::path(get, path = "/v1/keys", tag = "operator", security(("operator" = [])),
    summary = "List API keys (hashes only)",
    responses((status = 200, body = Vec<KeyRecord>)))]
async fn list_keys(State(state): State<Shared>, _: OperatorKey) -> Result<Json<Vec<KeyRecord>>, ApiError> {
    state.on_store(move |store| store.keys()).await.map(Json)
}

/// `DELETE /v1/keys/{id}`: revokes the key (it is refused from the next request on). The last live operator key
/// cannot be revoked (409), so the exchange stays manageable.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "operator", security(("operator" = [])),
    summary = "Revoke an API key",
    params(("id" = String, Path, description = "The key holder's id")),
    responses(
        (status = 200, description = "Revoked", body = KeyRecord),
        (status = 404, description = "No live key has this id", body = ErrorBody),
        (status = 409, description = "`last_operator_key`", body = ErrorBody),
    ))]
async fn revoke_key(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<KeyRecord>, ApiError> {
    let (store, keys_state, now) = (state.store.clone(), state.clone(), state.now());
    blocking(move || {
        let keys = store.keys()?;
        let live = |k: &&KeyRecord| k.revoked_at_unix_ms.is_none();
        let target = keys
            .iter()
            .filter(live)
            .find(|k| k.principal.id == id)
            .ok_or_else(|| ApiError::not_found(format!("no live key {id:?}")))?;
        let operators = keys.iter().filter(live).filter(|k| k.principal.role == Role::Operator).count();
        if target.principal.role == Role::Operator && operators <= 1 {
            return Err(ApiError::conflict(
                "last_operator_key",
                "this is the last live operator key; make another first",
            ));
        }
        if !store.revoke_principal(&id, now)? {
            return Err(ApiError::not_found(format!("no live key {id:?}")));
        }
        keys_state.keys.reload(&store)?;
        let revoked = store.keys()?.into_iter().find(|k| k.principal.id == id);
        revoked.ok_or_else(|| ApiError::internal("revoking a key", "the revoked key vanished"))
    })
    .await
    .map(Json)
}

/// The answer to `GET /v1/leads/{lead_id}/trace`.
#[derive(Debug, Serialize, ToSchema)]
struct LeadTrace {
    lead_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher_id: Option<String>,
    /// `sold`, `unsold`, ... (a two-step lead: `bid` until it is posted).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_at_unix_ms: Option<i64>,
    /// The recorded outcome with its trace (every campaign's eligibility, answer and timing; the redacted ping only).
    outcome: serde_json::Value,
    /// The lead's sales, without the lead.
    sales: Vec<pingpost_engine::StoredSale>,
    /// Who received the lead's PII, and how.
    pii_audit: Vec<PiiAuditEntry>,
}

/// `GET /v1/leads/{lead_id}/trace`: why a lead sold or did not, who bought it, who saw its PII.
#[utoipa::path(get, path = "/v1/leads/{lead_id}/trace", tag = "operator", security(("operator" = [])),
    summary = "A lead's auction: every buyer's answer, the sales, who received its PII",
    params(("lead_id" = String, Path)),
    responses((status = 200, body = LeadTrace), (status = 404, description = "No such lead", body = ErrorBody)))]
async fn lead_trace(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(lead_id): Path<String>,
) -> Result<Json<LeadTrace>, ApiError> {
    let store = state.store.clone();
    let id = lead_id.clone();
    state.recorder.flush().await;
    let (record, sales, pii_audit) =
        blocking(move || Ok((store.auction(&id)?, store.sales_of_lead(&id)?, store.pii_audit(&id)?))).await?;
    if record.is_none() && sales.is_empty() {
        return Err(ApiError::not_found(format!("no lead {lead_id:?}")));
    }
    let mut outcome = match &record {
        Some(record) => serde_json::from_str(&record.outcome_json)
            .map_err(|e| ApiError::internal("reading a recorded auction", e))?,
        None => serde_json::Value::Null,
    };
    let (store, exchange) = (state.store.clone(), state.exchange());
    let outcome = blocking(move || {
        name_plugin_versions(&mut outcome, &exchange, &store)?;
        Ok(outcome)
    })
    .await?;
    Ok(Json(LeadTrace {
        publisher_id: record.as_ref().map(|r| r.publisher_id.clone()),
        status: record.as_ref().map(|r| r.status.clone()),
        received_at_unix_ms: record.as_ref().map(|r| r.received_at_unix_ms),
        lead_id,
        outcome,
        sales,
        pii_audit,
    }))
}

/// Names the plugin and version that answered for each Wasm campaign of a recorded trace (`plugin_sha`, the start
/// of the version's SHA-256), from the campaign's plugin in the registry: `plugin` and `plugin_version` are added
/// where a version of it has that hash (a campaign since moved to another plugin keeps only the hash).
fn name_plugin_versions(
    outcome: &mut serde_json::Value,
    exchange: &pingpost_engine::Exchange,
    store: &SqliteStore,
) -> Result<(), ApiError> {
    let Some(campaigns) = outcome.pointer_mut("/trace/campaigns").and_then(|c| c.as_array_mut()) else {
        return Ok(());
    };
    let mut records: HashMap<String, Option<PluginRecord>> = HashMap::new();
    for campaign in campaigns {
        let Some(sha) = campaign.get("plugin_sha").and_then(|s| s.as_str()).map(str::to_owned) else { continue };
        let plugin = campaign
            .get("campaign_id")
            .and_then(|id| id.as_str())
            .and_then(|id| exchange.campaigns().find(|c| c.id == id))
            .and_then(|c| match &c.target {
                CampaignTarget::Wasm { plugin, .. } => Some(plugin.clone()),
                CampaignTarget::Http(_) => None,
            });
        let Some(plugin) = plugin else { continue };
        if !records.contains_key(&plugin) {
            records.insert(plugin.clone(), store.plugin(&plugin)?);
        }
        let version = records[&plugin]
            .as_ref()
            .and_then(|record| record.versions.iter().find(|v| v.sha256.starts_with(&sha)))
            .map(|v| v.version);
        if let (Some(version), Some(entry)) = (version, campaign.as_object_mut()) {
            entry.insert("plugin".into(), plugin.into());
            entry.insert("plugin_version".into(), version.into());
        }
    }
    Ok(())
}

/// Query of `GET /v1/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `failed` (empty or absent: all of them).
    #[param(value_type = Option<String>, pattern = "^(|pending|delivered|failed)$")]
    status: Option<String>,
}

/// `GET /v1/deliveries?status=pending|delivered|failed`: the outbox, oldest first, without the leads' PII.
#[utoipa::path(get, path = "/v1/deliveries", tag = "operator", security(("operator" = [])),
    summary = "Webhook deliveries of sold leads (outbox), oldest first, without the leads",
    params(DeliveriesQuery),
    responses((status = 200, body = Vec<OutboxDelivery>), (status = 422, description = "An unknown status", body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<Shared>,
    _: OperatorKey,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Vec<OutboxDelivery>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("(query)", e.body_text()))?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            name.parse::<DeliveryStatus>()
                .map_err(|_| ApiError::invalid("status", format!("{name:?}: one of pending, delivered, failed")))?,
        ),
    };
    let mut deliveries = state.on_store(move |store| store.deliveries(status)).await?;
    for delivery in &mut deliveries {
        delivery.lead = None;
    }
    Ok(Json(deliveries))
}

/// `GET /metrics`: Prometheus metrics, with every capped campaign's usage in its current windows.
#[utoipa::path(get, path = "/metrics", tag = "operator", security(("operator" = [])),
    summary = "Prometheus metrics (text format)",
    responses((status = 200, description = "OpenMetrics text", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
async fn metrics(State(state): State<Shared>, _: OperatorKey) -> Result<Response, ApiError> {
    let exchange = state.exchange();
    let now = state.now();
    let mut caps = Vec::new();
    for campaign in exchange.campaigns().filter(|c| !c.caps.is_unlimited()) {
        let Some(buyer) = exchange.buyer(&campaign.buyer_id) else { continue };
        let usage = state.store.usage(&campaign.id, &cap_windows(buyer.time_zone, now)).await?;
        caps.push((campaign.id.clone(), campaign.caps, usage));
    }
    state.metrics.observe_writer(state.store.writer_stats());
    let text = state.metrics.render(caps.iter().map(|(id, caps, usage)| (id.as_str(), *caps, *usage)));
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response())
}

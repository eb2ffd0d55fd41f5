//! Buyer routes (a buyer key; a buyer sees and changes only its own campaigns, plugins and bought leads — another
//! buyer's lead or campaign is answered 404, as if it did not exist, so ids do not leak):
//!
//! - `GET /v1/buyer/campaigns`: its campaigns, config included;
//! - `GET /v1/buyer/leads?after=<sale id>&limit=` and `GET /v1/buyer/leads/{lead_id}`: the leads it bought, with the
//!   consumer's PII (until the retention purge clears it); every lead handed over is written to the PII audit
//!   (`api`, by the key holder) before the answer is sent;
//! - `POST /v1/buyer/leads/{lead_id}/return` `{"reason": "..."}`: within `server.return_window_days` of the sale;
//! - `PUT /v1/buyer/campaigns/{campaign_id}/plugin` (the `.wasm` bytes): a new version of plugin
//!   `campaign:{campaign_id}` (owned by the buyer), made live for that campaign in one hot swap — the campaign keeps
//!   its config and delivery, and is refused (422, nothing changes) if the new version does not accept that config;
//!   `POST .../plugin/rollback` goes back to its previous version.
//!
//! Its own campaigns' settings (pause, caps, schedule, bid config) are changed through `buyer_campaigns.rs`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{RawBody, Shared, blocking, parse_json};
use crate::auth::{BuyerKey, Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::WasmComponent;
use crate::state::Uploaded;
use pingpost_engine::{Campaign, CampaignTarget, StoredSale};
use pingpost_runtime::World;
use pingpost_sqlite::registry::PluginRecord;
use pingpost_sqlite::{PiiAccess, ReturnError, SaleRef};

/// Leads per page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// The largest `limit`.
pub const MAX_PAGE: u32 = 1_000;

const DAY_MS: i64 = 86_400_000;

/// The JSON routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns))
        .routes(routes!(list_leads))
        .routes(routes!(read_lead))
        .routes(routes!(return_lead))
        .routes(routes!(rollback_plugin))
}

/// The upload route (its own body limit).
pub fn upload_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(upload_plugin))
}

/// The buyer's campaigns as the registry holds them.
async fn own_campaigns(state: &Shared, buyer_id: &str) -> Result<Vec<Campaign>, ApiError> {
    let config = state.on_store(move |store| store.registry_config()).await?;
    Ok(config.campaigns.into_iter().filter(|c| c.buyer_id == buyer_id).collect())
}

/// One of the buyer's campaigns, or 404 (also for another buyer's).
pub(super) async fn own_campaign(state: &Shared, buyer_id: &str, campaign_id: &str) -> Result<Campaign, ApiError> {
    own_campaigns(state, buyer_id)
        .await?
        .into_iter()
        .find(|c| c.id == campaign_id)
        .ok_or_else(|| ApiError::not_found(format!("no campaign {campaign_id:?} of yours")))
}

/// `GET /v1/buyer/campaigns`.
#[utoipa::path(get, path = "/v1/buyer/campaigns", tag = "buyer", security(("buyer" = [])),
    summary = "Your campaigns",
    responses((status = 200, description = "Every campaign of the key's buyer", body = Vec<Campaign>)))]
async fn list_campaigns(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    own_campaigns(&state, &buyer_id).await.map(Json)
}

/// Query of `GET /v1/buyer/leads`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LeadsQuery {
    /// Only sales after this sale id (the `next_after` of the previous page).
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
    /// Leads per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A page of bought leads.
#[derive(Debug, Serialize, ToSchema)]
struct LeadsPage {
    leads: Vec<StoredSale>,
    /// Pass as `after` for the next page; absent when this page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// `GET /v1/buyer/leads?after=&limit=`: the leads the buyer bought, in sale order, with PII.
#[utoipa::path(get, path = "/v1/buyer/leads", tag = "buyer", security(("buyer" = [])),
    summary = "The leads you bought, with the consumer's data",
    params(LeadsQuery),
    responses(
        (status = 200, description = "A page of sales in sale order; each hand-over of PII is audited", body = LeadsPage),
        (status = 422, description = "`limit` outside 1–1000, `after` past the largest sale id, or an unknown query \
            parameter", body = ErrorBody),
    ))]
async fn list_leads(
    State(state): State<Shared>,
    BuyerKey { principal, buyer_id }: BuyerKey,
    query: Result<Query<LeadsQuery>, QueryRejection>,
) -> Result<Json<LeadsPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("(query)", e.body_text()))?;
    if query.after.is_some_and(|after| after > i64::MAX as u64) {
        return Err(ApiError::invalid("after", format!("must be at most {}", i64::MAX)));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1–{MAX_PAGE}")));
    }
    let (store, now) = (state.store.clone(), state.now());
    let leads = blocking(move || {
        let sales = store.sales_for_buyer(&buyer_id, query.after, limit)?;
        audit(&store, &principal, &sales, now)?;
        Ok(sales)
    })
    .await?;
    let next_after = leads.last().map(|s| s.sale_id);
    Ok(Json(LeadsPage { leads, next_after }))
}

/// `GET /v1/buyer/leads/{lead_id}`: one bought lead, with PII.
#[utoipa::path(get, path = "/v1/buyer/leads/{lead_id}", tag = "buyer", security(("buyer" = [])),
    summary = "One lead you bought",
    params(("lead_id" = String, Path)),
    responses(
        (status = 200, description = "The sale with the lead (`lead` is null once the retention purge ran)", body = StoredSale),
        (status = 404, description = "You bought no lead with this id", body = ErrorBody),
    ))]
async fn read_lead(
    State(state): State<Shared>,
    BuyerKey { principal, buyer_id }: BuyerKey,
    Path(lead_id): Path<String>,
) -> Result<Json<StoredSale>, ApiError> {
    let (store, now) = (state.store.clone(), state.now());
    let sale = blocking(move || {
        let sale = store.sale_for_buyer(&buyer_id, &lead_id)?;
        let sale = sale.ok_or_else(|| ApiError::not_found(format!("no lead {lead_id:?} bought by you")))?;
        audit(&store, &principal, std::slice::from_ref(&sale), now)?;
        Ok(sale)
    })
    .await?;
    Ok(Json(sale))
}

/// Writes an `api` audit row for every sale handed over with its lead (a purged lead carries no PII: no row).
fn audit(
    store: &pingpost_sqlite::SqliteStore,
    principal: &Principal,
    sales: &[StoredSale],
    now: i64,
) -> Result<(), ApiError> {
    for sale in sales.iter().filter(|s| s.lead.is_some()) {
        store.record_pii_access(&principal.id, &sale.lead_id, Some(&sale.campaign_id), PiiAccess::Api, now)?;
    }
    Ok(())
}

/// Body of `POST /v1/buyer/leads/{lead_id}/return`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReturnRequest)]
struct ReturnBody {
    reason: String,
}

/// `POST /v1/buyer/leads/{lead_id}/return`: returns a bought lead within the return window. 404 for a lead the
/// buyer did not buy, 409 `return_window_closed` / `already_returned`, 422 for an empty reason.
#[utoipa::path(post, path = "/v1/buyer/leads/{lead_id}/return", tag = "buyer", security(("buyer" = [])),
    summary = "Return a lead within the return window",
    params(("lead_id" = String, Path)),
    request_body(content = ReturnBody, example = json!({ "reason": "disconnected phone number" })),
    responses(
        (status = 200, description = "Returned: the sale with `returned` set", body = StoredSale),
        (status = 404, description = "You bought no lead with this id", body = ErrorBody),
        (status = 409, description = "`return_window_closed` or `already_returned`", body = ErrorBody),
        (status = 422, description = "An empty reason", body = ErrorBody),
    ))]
async fn return_lead(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
    Path(lead_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<StoredSale>, ApiError> {
    let ReturnBody { reason } = parse_json(&body)?;
    let window_ms = i64::from(state.settings.return_window_days) * DAY_MS;
    let (store, now) = (state.store.clone(), state.now());
    blocking(move || {
        store.return_sale(&buyer_id, SaleRef::Lead(&lead_id), &reason, now, window_ms).map_err(|error| match error {
            ReturnError::UnknownSale | ReturnError::NotYours => {
                ApiError::not_found(format!("no lead {lead_id:?} bought by you"))
            }
            ReturnError::MissingReason => ApiError::invalid("reason", error.to_string()),
            ReturnError::WindowPassed { .. } => ApiError::conflict("return_window_closed", error.to_string()),
            ReturnError::AlreadyReturned { .. } => ApiError::conflict("already_returned", error.to_string()),
            ReturnError::Store(e) => ApiError::from(e),
        })
    })
    .await
    .map(Json)
}

/// The plugin a buyer uploads for campaign `campaign_id`.
pub fn campaign_plugin(campaign_id: &str) -> String {
    format!("campaign:{campaign_id}")
}

/// `PUT /v1/buyer/campaigns/{campaign_id}/plugin`: uploads a new version of the campaign's own plugin and makes it the
/// campaign's live plugin in one hot swap (201 with the version). The campaign must be a Wasm campaign of the
/// buyer's; it keeps its config and delivery.
#[utoipa::path(put, path = "/v1/buyer/campaigns/{campaign_id}/plugin", tag = "buyer", security(("buyer" = [])),
    summary = "Upload your campaign's bid plugin and make it live",
    params(("campaign_id" = String, Path)),
    request_body(description = "A buyer component (`.wasm`)", content((WasmComponent = "application/wasm"), (WasmComponent = "application/octet-stream"))),
    responses(
        (status = 201, description = "Stored, compiled and live", body = Uploaded),
        (status = 404, description = "You have no campaign with this id", body = ErrorBody),
        (status = 409, description = "`not_a_wasm_campaign` (the campaign is reached over HTTP), `plugin_quota_exceeded` or \
            `plugin_conflict`", body = ErrorBody),
        (status = 413, description = "Larger than `server.max_plugin_bytes`", body = ErrorBody),
        (status = 422, description = "Not a valid buyer component, or it fails with the campaign's config", body = ErrorBody),
    ))]
async fn upload_plugin(
    State(state): State<Shared>,
    BuyerKey { principal, buyer_id }: BuyerKey,
    Path(campaign_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let campaign = own_campaign(&state, &buyer_id, &campaign_id).await?;
    if !matches!(campaign.target, CampaignTarget::Wasm { .. }) {
        return Err(not_wasm(&campaign_id));
    }
    let name = campaign_plugin(&campaign_id);
    let owner = (Role::Buyer, Some(buyer_id.clone()));
    let live_name = name.clone();
    let uploaded = state
        .upload_and_activate(name, owner, World::Buyer, body.to_vec(), &principal, move |config| {
            let campaign = config
                .campaigns
                .iter_mut()
                .find(|c| c.id == campaign_id && c.buyer_id == buyer_id)
                .ok_or_else(|| ApiError::not_found(format!("no campaign {campaign_id:?} of yours")))?;
            match &mut campaign.target {
                CampaignTarget::Wasm { plugin, .. } => {
                    *plugin = live_name;
                    Ok(())
                }
                CampaignTarget::Http(_) => Err(not_wasm(&campaign_id)),
            }
        })
        .await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

fn not_wasm(campaign_id: &str) -> ApiError {
    ApiError::conflict(
        "not_a_wasm_campaign",
        format!("campaign {campaign_id:?} is reached over HTTP; only a Wasm campaign runs an uploaded plugin"),
    )
}

/// `POST /v1/buyer/campaigns/{campaign_id}/plugin/rollback`: the campaign's plugin goes back to its previous version (409
/// `nothing_to_roll_back` when it has none).
#[utoipa::path(post, path = "/v1/buyer/campaigns/{campaign_id}/plugin/rollback", tag = "buyer",
    security(("buyer" = [])),
    summary = "Go back to your campaign's previous plugin version",
    params(("campaign_id" = String, Path)),
    responses(
        (status = 200, description = "The campaign's plugin, its previous version live again", body = PluginRecord),
        (status = 404, description = "You have no campaign with this id", body = ErrorBody),
        (status = 409, description = "`nothing_to_roll_back`", body = ErrorBody),
        (status = 422, description = "`refused`: the exchange does not build with the change (nothing changes)", body = ErrorBody),
    ))]
async fn rollback_plugin(
    State(state): State<Shared>,
    BuyerKey { principal, buyer_id }: BuyerKey,
    Path(campaign_id): Path<String>,
) -> Result<Json<PluginRecord>, ApiError> {
    own_campaign(&state, &buyer_id, &campaign_id).await?;
    let name = campaign_plugin(&campaign_id);
    let lookup = state.clone();
    let record_name = name.clone();
    let record = blocking(move || Ok(lookup.store.plugin(&record_name)?)).await?;
    match record {
        Some(record) if record.owner_role == Role::Buyer && record.owner_id.as_deref() == Some(buyer_id.as_str()) => {}
        _ => {
            return Err(ApiError::conflict(
                "nothing_to_roll_back",
                format!("campaign {campaign_id:?} has no plugin of yours to roll back"),
            ));
        }
    }
    state.rollback_plugin(name.clone(), &principal).await?;
    let reader = state.clone();
    blocking(move || reader.plugin_record(&name)).await.map(Json)
}

//! Buyer routes that change the buyer's own campaigns — when and what it buys, and its own bid settings — never what
//! the operator decides (its tier, exclusivity, bid maximum, target plugin or endpoints, or whose campaign it is):
//!
//! - `PATCH /v1/buyer/campaigns/{campaign_id}`: a JSON merge patch of `paused_by_buyer`, `caps`, `schedule`,
//!   `sources`, `suppression_days` and a Wasm campaign's `target.config` (its plugin's config); any other field is
//!   `403 not_editable` naming it, and the patched campaign is checked and saved as the operator's `PATCH` saves it;
//! - `POST /v1/buyer/campaigns/{campaign_id}/pause` and `.../resume`: the buyer's own pause (`paused_by_buyer`),
//!   apart from the operator's (`status`): a campaign buys only when neither paused it, and neither undoes the
//!   other's.
//!
//! Another buyer's campaign is answered 404, as if it did not exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::buyer::own_campaign;
use super::operator::patched;
use super::{RawBody, Shared};
use crate::auth::BuyerKey;
use crate::error::{ApiError, ErrorBody};
use pingpost_engine::{Campaign, CampaignTarget};

/// The top-level fields of a campaign its buyer may change.
pub const BUYER_EDITABLE: &[&str] = &["paused_by_buyer", "caps", "schedule", "sources", "suppression_days"];

/// The routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(patch_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
}

/// Refuses (403, naming the field) a patch that reaches past what a buyer may change of `campaign`.
fn check_editable(campaign: &Campaign, patch: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    let not_editable = |field: String| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_editable",
            format!(
                "a buyer may change its campaign's {} and a Wasm campaign's target.config; {field} is the operator's",
                BUYER_EDITABLE.join(", ")
            ),
        )
        .with_field(field)
    };
    for (field, value) in patch {
        match field.as_str() {
            "id" if value.is_null() || value.as_str() == Some(campaign.id.as_str()) => {}
            "target" => {
                let Some(target) = value.as_object() else { return Err(not_editable("target".into())) };
                if let Some(other) = target.keys().find(|key| key.as_str() != "config") {
                    return Err(not_editable(format!("target.{other}")));
                }
                if matches!(campaign.target, CampaignTarget::Http(_)) {
                    return Err(not_editable("target.config".into()));
                }
            }
            field if BUYER_EDITABLE.contains(&field) => {}
            field => return Err(not_editable(field.to_owned())),
        }
    }
    Ok(())
}

/// Saves `edit` of the buyer's campaign `campaign_id` as the operator's edits are saved (checked, then the exchange
/// rebuilt with it, or refused with nothing saved); applied to the campaign as it is when the change runs, so a
/// change saved in between is not lost.
async fn change_own(
    state: &Shared,
    buyer_id: String,
    campaign_id: String,
    edit: impl FnOnce(&Campaign) -> Result<Campaign, ApiError> + Send + 'static,
) -> Result<Campaign, ApiError> {
    state
        .change(move |config| {
            let campaign = config
                .campaigns
                .iter_mut()
                .find(|c| c.id == campaign_id && c.buyer_id == buyer_id)
                .ok_or_else(|| ApiError::not_found(format!("no campaign {campaign_id:?} of yours")))?;
            *campaign = edit(campaign)?;
            Ok(campaign.clone())
        })
        .await
}

/// `PATCH /v1/buyer/campaigns/{campaign_id}`.
#[utoipa::path(patch, path = "/v1/buyer/campaigns/{campaign_id}", tag = "buyer", security(("buyer" = [])),
    summary = "Change when and what your campaign buys, and its plugin's config",
    params(("campaign_id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/merge-patch+json",
        description = "A JSON merge patch of `paused_by_buyer`, `caps`, `schedule`, `sources`, `suppression_days`, \
            `target.config`", example = json!({"caps": {"leads_per_day": 40}, "schedule": {"windows": ["mon-fri 08:30-17:45"]}})),
    responses(
        (status = 200, description = "The campaign as saved", body = Campaign),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 403, description = "A field only the operator may change (`not_editable`, naming it)", body = ErrorBody),
        (status = 404, description = "No such campaign of yours", body = ErrorBody),
        (status = 422, description = "The patched campaign is not valid (the field named)", body = ErrorBody)))]
async fn patch_campaign(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
    Path(campaign_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Campaign>, ApiError> {
    let patch: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::malformed(e.to_string()))?;
    let Some(fields) = patch.as_object() else {
        return Err(ApiError::invalid("(body)", "a merge patch of a campaign is a JSON object"));
    };
    let current = own_campaign(&state, &buyer_id, &campaign_id).await?;
    check_editable(&current, fields)?;
    patched(&current, &patch)?;
    change_own(&state, buyer_id, campaign_id, move |campaign| {
        if let Some(fields) = patch.as_object() {
            check_editable(campaign, fields)?;
        }
        patched(campaign, &patch)
    })
    .await
    .map(Json)
}

/// Pauses or resumes the buyer's campaign (the buyer's own pause).
async fn set_paused(state: &Shared, buyer_id: String, campaign_id: String, paused: bool) -> Result<Campaign, ApiError> {
    change_own(state, buyer_id, campaign_id, move |campaign| {
        Ok(Campaign { paused_by_buyer: paused, ..campaign.clone() })
    })
    .await
}

/// `POST /v1/buyer/campaigns/{campaign_id}/pause`.
#[utoipa::path(post, path = "/v1/buyer/campaigns/{campaign_id}/pause", tag = "buyer", security(("buyer" = [])),
    summary = "Pause your campaign (your own pause, apart from the operator's): it is not pinged until you resume it",
    params(("campaign_id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, description = "No such campaign of yours", body = ErrorBody)))]
async fn pause_campaign(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
    Path(campaign_id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    set_paused(&state, buyer_id, campaign_id, true).await.map(Json)
}

/// `POST /v1/buyer/campaigns/{campaign_id}/resume`.
#[utoipa::path(post, path = "/v1/buyer/campaigns/{campaign_id}/resume", tag = "buyer", security(("buyer" = [])),
    summary = "Resume your campaign (an operator's pause stays)",
    params(("campaign_id" = String, Path)),
    responses((status = 200, body = Campaign), (status = 404, description = "No such campaign of yours", body = ErrorBody)))]
async fn resume_campaign(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
    Path(campaign_id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    set_paused(&state, buyer_id, campaign_id, false).await.map(Json)
}

//! What a publisher is answered: a one-shot lead's or a post's [`LeadAnswer`], a ping's [`PingAnswer`] — made from the
//! auction's outcome, or, for a request a crash left unanswered, from what the store recorded of it — and a recorded
//! lead's [`LeadView`].

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ErrorBody;
use pingpost_engine::store::StoredSale;
use pingpost_engine::{FieldError, Outcome, OutcomeStatus, PiiLeak, PingOutcome, PingStatus, Sale};

/// The answer to a one-shot lead or a post.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadAnswer {
    pub lead_id: String,
    /// `sold`, `unsold`, `duplicate`, `rejected` or `error`.
    pub outcome: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the publisher is paid for the lead (all sales together), in cents; 0 unless sold.
    pub payout_cents: u64,
    /// How many buyers bought it.
    pub buyers: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii_leaks: Vec<PiiLeak>,
}

impl LeadAnswer {
    /// The publisher's view of an auction's outcome.
    pub fn of(outcome: &Outcome) -> Self {
        LeadAnswer {
            lead_id: outcome.ping_id.clone(),
            outcome: outcome.status,
            reason: outcome.reason.clone(),
            payout_cents: outcome.sales.iter().map(|s| u64::from(s.payout_cents)).sum(),
            buyers: outcome.sales.len() as u32,
            field_errors: outcome.field_errors.clone(),
            pii_leaks: outcome.pii_leaks.clone(),
        }
    }

    /// 422 for a lead refused as invalid, 200 for every other outcome.
    pub fn status(&self) -> StatusCode {
        match self.outcome {
            OutcomeStatus::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::OK,
        }
    }
}

/// The answer to a two-step ping (read back from a recorded [`PingOutcome`] too, whose `status` is its `outcome`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PingAnswer {
    pub ping_id: String,
    /// `bid`, `no_bid`, `duplicate`, `rejected` or `error`.
    #[serde(alias = "status")]
    pub outcome: PingStatus,
    /// What the publisher would be paid for the best bid, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_cents: Option<u32>,
    /// Post before this instant (unix ms) to sell at that price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_unix_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii_leaks: Vec<PiiLeak>,
}

impl PingAnswer {
    /// The publisher's view of a ping's outcome.
    pub fn of(outcome: &PingOutcome) -> Self {
        PingAnswer {
            ping_id: outcome.ping_id.clone(),
            outcome: outcome.status,
            payout_cents: outcome.payout_cents,
            expires_at_unix_ms: outcome.expires_at_unix_ms,
            reason: outcome.reason.clone(),
            field_errors: outcome.field_errors.clone(),
            pii_leaks: outcome.pii_leaks.clone(),
        }
    }
}

/// The fields of a recorded one-shot or post [`Outcome`] a [`LeadAnswer`] is made of (a ping's record has no `sales`).
#[derive(Deserialize)]
struct RecordedOutcome {
    ping_id: String,
    status: OutcomeStatus,
    #[serde(default)]
    reason: Option<String>,
    sales: Vec<RecordedPayout>,
    #[serde(default)]
    field_errors: Vec<FieldError>,
    #[serde(default)]
    pii_leaks: Vec<PiiLeak>,
}

#[derive(Deserialize)]
struct RecordedPayout {
    payout_cents: u32,
}

impl LeadAnswer {
    /// The answer a one-shot lead or a post got, from its recorded outcome JSON; `None` when the record is not one
    /// (a two-step lead's record is its ping's until the post is recorded).
    pub fn from_recorded(outcome_json: &str) -> Option<Self> {
        let recorded: RecordedOutcome = serde_json::from_str(outcome_json).ok()?;
        Some(LeadAnswer {
            lead_id: recorded.ping_id,
            outcome: recorded.status,
            reason: recorded.reason,
            payout_cents: recorded.sales.iter().map(|s| u64::from(s.payout_cents)).sum(),
            buyers: recorded.sales.len() as u32,
            field_errors: recorded.field_errors,
            pii_leaks: recorded.pii_leaks,
        })
    }

    /// The answer of a lead whose sales were recorded but not its outcome, at the publisher's `margin_bps`.
    pub fn sold(lead_id: &str, sales: &[StoredSale], margin_bps: u32) -> Self {
        let payout =
            |s: &StoredSale| Sale::new(&s.campaign_id, &s.buyer_id, s.price_cents, margin_bps, None).payout_cents;
        LeadAnswer {
            lead_id: lead_id.to_owned(),
            outcome: OutcomeStatus::Sold,
            reason: None,
            payout_cents: sales.iter().map(|s| u64::from(payout(s))).sum(),
            buyers: sales.len() as u32,
            field_errors: vec![],
            pii_leaks: vec![],
        }
    }
}

impl PingAnswer {
    /// The answer a ping got, from its recorded outcome JSON; `None` when the record is not a ping's.
    pub fn from_recorded(outcome_json: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(outcome_json).ok()?;
        if value.get("sales").is_some() {
            return None;
        }
        // The recorded outcome names the status `status`; the rest of its fields are the answer's.
        serde_json::from_value(value).ok()
    }

    /// 422 for a lead refused as invalid, 200 for every other outcome.
    pub fn status(&self) -> StatusCode {
        match self.outcome {
            PingStatus::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::OK,
        }
    }
}

/// A `422` to a lead or ping: the auction's `rejected` answer, or the error naming the field that does not fit the
/// schema.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LeadRefusal {
    Rejected(LeadAnswer),
    Invalid(ErrorBody<'static>),
}

/// A `422` to a ping, as [`LeadRefusal`].
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PingRefusal {
    Rejected(PingAnswer),
    Invalid(ErrorBody<'static>),
}

/// `GET /v1/leads/{lead_id}`'s answer: what a publisher may read of a recorded auction — a one-shot or posted
/// lead's [`LeadAnswer`] fields, or a ping's [`PingAnswer`] fields — never the buyers or their bids.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LeadView {
    pub lead_id: String,
    /// A lead's or post's outcome (`sold`, `unsold`, `duplicate`, `rejected`, `error`) or, for a ping not yet posted,
    /// the ping's (`bid`, `no_bid`, ...).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the publisher is paid (a lead: all its sales; a ping: for its best bid), in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_cents: Option<u64>,
    /// How many buyers bought it (a lead or post only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyers: Option<u32>,
    /// A ping's: post before this instant (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_unix_ms: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pii_leaks: Vec<PiiLeak>,
}

/// The [`LeadView`] of the recorded outcome JSON `outcome` of lead `lead_id`.
pub fn publisher_view(lead_id: &str, outcome: &serde_json::Value) -> LeadView {
    use serde_json::Value;
    let text = |key: &str| outcome.get(key).and_then(Value::as_str).map(str::to_owned);
    let sales = outcome.get("sales").and_then(Value::as_array);
    let payout = match sales {
        Some(sales) => Some(sales.iter().filter_map(|s| s.get("payout_cents")?.as_u64()).sum()),
        None => outcome.get("payout_cents").and_then(Value::as_u64),
    };
    LeadView {
        lead_id: lead_id.to_owned(),
        outcome: text("status").unwrap_or_default(),
        reason: text("reason"),
        payout_cents: payout,
        buyers: sales.map(|sales| sales.len() as u32),
        expires_at_unix_ms: outcome.get("expires_at_unix_ms").and_then(Value::as_i64),
        field_errors: list(outcome, "field_errors"),
        pii_leaks: list(outcome, "pii_leaks"),
    }
}

/// The list under `key` of a recorded outcome (empty when absent).
fn list<T: serde::de::DeserializeOwned>(outcome: &serde_json::Value, key: &str) -> Vec<T> {
    outcome.get(key).and_then(|v| Vec::<T>::deserialize(v).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests;

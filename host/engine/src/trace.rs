//! What an auction reports: the [`Outcome`] (sold, unsold, duplicate, rejected, error) and the per-lead [`Trace`] of
//! every step and every campaign's eligibility, answer and post, with timings. Serialisable for the CLI and the API.

use serde::Serialize;

use super::config::SelectionMode;
use super::eligibility::Ineligible;
use super::field_error::FieldError;
use super::ledger::payout_cents;
use super::pii::PiiLeak;
use super::store::CapKind;
use pingpost_model::{LogLine, RejectCode};
use pingpost_runtime::CallError;

/// How an auction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Sold to at least one buyer.
    Sold,
    /// Valid and pinged, but nobody bought it.
    Unsold,
    /// Seen from the same publisher within its dedupe window.
    Duplicate,
    /// Invalid: see the field errors.
    Rejected,
    /// The exchange could not run the auction (redactor failure, PII guard refusal, storage failure).
    Error,
}

/// One sale of the lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sale {
    pub campaign_id: String,
    pub buyer_id: String,
    /// What the buyer pays, in cents.
    pub price_cents: u32,
    /// The exchange's share: `price × margin_bps / 10 000`, rounded down.
    pub margin_cents: u32,
    /// What the publisher is paid: price minus margin.
    pub payout_cents: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_lead_id: Option<String>,
}

impl Sale {
    /// A sale at `price_cents` with the publisher's margin applied.
    pub fn new(
        campaign_id: &str,
        buyer_id: &str,
        price_cents: u32,
        margin_bps: u32,
        buyer_lead_id: Option<String>,
    ) -> Self {
        let payout_cents = payout_cents(price_cents, margin_bps);
        Sale {
            campaign_id: campaign_id.to_owned(),
            buyer_id: buyer_id.to_owned(),
            price_cents,
            margin_cents: price_cents - payout_cents,
            payout_cents,
            buyer_lead_id,
        }
    }
}

/// The result of running one lead (one-shot) or posting one ping (two-step).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ping_id: String,
    pub status: OutcomeStatus,
    /// Why it was not sold, or what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub sales: Vec<Sale>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pii_leaks: Vec<PiiLeak>,
    pub trace: Trace,
}

impl Outcome {
    /// Total paid by buyers, in cents.
    pub fn revenue_cents(&self) -> u64 {
        self.sales.iter().map(|s| u64::from(s.price_cents)).sum()
    }
}

/// How an auction that stopped before its post phase ended: its status, why, and what was wrong with the lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EarlyEnd {
    pub status: OutcomeStatus,
    pub reason: String,
    pub field_errors: Vec<FieldError>,
    pub pii_leaks: Vec<PiiLeak>,
}

impl EarlyEnd {
    /// An end with `status` for `reason`.
    pub fn new(status: OutcomeStatus, reason: impl Into<String>) -> Self {
        EarlyEnd { status, reason: reason.into(), field_errors: vec![], pii_leaks: vec![] }
    }

    /// The exchange could not run the auction.
    pub fn error(reason: impl Into<String>) -> Self {
        EarlyEnd::new(OutcomeStatus::Error, reason)
    }

    /// The lead failed validation: every field error, and all of them in the reason.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let named: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let reason = format!("invalid lead: {}", named.join("; "));
        EarlyEnd { field_errors: errors, ..EarlyEnd::new(OutcomeStatus::Rejected, reason) }
    }

    /// The outcome of the lead `ping_id` that ended so, with its trace.
    pub fn into_outcome(self, ping_id: String, trace: Trace) -> Outcome {
        Outcome {
            ping_id,
            status: self.status,
            reason: Some(self.reason),
            sales: vec![],
            field_errors: self.field_errors,
            pii_leaks: self.pii_leaks,
            trace,
        }
    }
}

/// A campaign's answer to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(tag = "answer", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Answer {
    Bid {
        price_cents: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        buyer_ref: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u32>,
    },
    /// A bid under the publisher's floor, dropped.
    BelowFloor {
        price_cents: u32,
        floor_cents: u32,
    },
    /// A bid the campaign's own caps cannot cover (a sale at its price would exceed `cap`, of which `left_cents`
    /// was left when the spend is known), dropped: a bid it could not honour is never ranked, nor quoted.
    CapWouldExceed {
        price_cents: u32,
        cap: CapKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        left_cents: Option<u64>,
    },
    /// A bid over what its buyer may still spend (balance + credit limit − held, `available_cents`), dropped.
    FundsWouldExceed {
        price_cents: u32,
        available_cents: i64,
    },
    Reject {
        code: RejectCode,
        message: String,
    },
    /// A bid of zero: the buyer passed without a reason.
    NoBid,
    /// No answer within the auction's deadline.
    Timeout,
    /// The plugin's circuit breaker is open.
    Suspended {
        until_unix_ms: i64,
        reason: String,
    },
    /// The call failed (trap, limit, HTTP status, malformed answer, transport).
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Why a campaign's call gave no usable answer: what an [`Answer::Error`] records and metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorKind {
    /// Wasm: the plugin used its whole fuel budget.
    OutOfFuel,
    /// Wasm: the plugin tried to grow its memory past the limit.
    MemoryLimit,
    /// Wasm: the plugin recursed too deep.
    StackOverflow,
    /// Wasm: the plugin trapped.
    Trap,
    /// Wasm: the plugin's answer held more string bytes than allowed.
    OutputTooLarge,
    /// Wasm: the plugin's answer does not fit the contract.
    InvalidOutput,
    /// Wasm: the host's input did not fit the contract (the plugin was not called).
    InvalidInput,
    /// Wasm: the plugin could not be instantiated.
    Instantiate,
    /// Wasm: the plugin refused its config.
    Config,
    /// Wasm: the plugin's contract version has no such export (the plugin was not called).
    Unsupported,
    /// HTTP: the buyer answered a non-2xx status.
    Status,
    /// HTTP: the answer was too large or not the expected JSON.
    Malformed,
    /// HTTP: the request could not be sent or the answer not read.
    Transport,
    /// A bid above the campaign's `max_bid_cents`.
    BidTooHigh,
    /// An answer outside the exchange's bounds (an oversized `buyer_ref`).
    InvalidAnswer,
    /// The host's side of the call panicked.
    Panic,
    /// The exchange itself went wrong (a campaign handed to the wrong caller).
    Internal,
    /// A deadline passed; the fan-out records it as [`Answer::Timeout`].
    Timeout,
    /// The plugin's circuit breaker is open; the fan-out records it as [`Answer::Suspended`].
    Suspended,
}

impl ErrorKind {
    /// The snake_case name traces and metrics give it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<&CallError> for ErrorKind {
    fn from(error: &CallError) -> Self {
        match error {
            CallError::Timeout { .. } => ErrorKind::Timeout,
            CallError::OutOfFuel { .. } => ErrorKind::OutOfFuel,
            CallError::MemoryLimit { .. } => ErrorKind::MemoryLimit,
            CallError::StackOverflow => ErrorKind::StackOverflow,
            CallError::Trap { .. } => ErrorKind::Trap,
            CallError::OutputTooLarge { .. } => ErrorKind::OutputTooLarge,
            CallError::InvalidOutput { .. } => ErrorKind::InvalidOutput,
            CallError::InvalidInput { .. } => ErrorKind::InvalidInput,
            CallError::Suspended { .. } => ErrorKind::Suspended,
            CallError::Instantiate { .. } => ErrorKind::Instantiate,
            CallError::Config { .. } => ErrorKind::Config,
            CallError::Unsupported { .. } => ErrorKind::Unsupported,
        }
    }
}

impl Answer {
    /// A short name of the answer kind.
    pub fn kind(&self) -> &'static str {
        self.into()
    }
}

/// How a campaign is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Wasm,
    Http,
}

/// Everything that happened to one campaign in the ping phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignTrace {
    pub campaign_id: String,
    pub buyer_id: String,
    pub kind: TargetKind,
    pub tier: u32,
    /// Why it was not pinged; `None` when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ineligible: Option<Ineligible>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// From the start of the fan-out to this answer, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_us: Option<u64>,
    /// Wall time of the plugin call itself (Wasm only), in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_wall_us: Option<u64>,
    /// Fuel the plugin call used (Wasm only, when the runtime meters fuel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_fuel: Option<u64>,
    /// Lines the plugin logged during its bid (Wasm only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// Which version of its plugin answered (Wasm only): the start of the version's SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_sha: Option<PluginSha>,
}

/// The first 6 bytes of a plugin version's SHA-256, written as 12 hex digits: enough to tell a plugin's versions
/// apart in a trace, and no allocation on the auction's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginSha([u8; 6]);

impl PluginSha {
    /// The start of a version's SHA-256.
    pub fn of(sha256: &[u8; 32]) -> Self {
        let mut start = [0u8; 6];
        start.copy_from_slice(&sha256[..6]);
        PluginSha(start)
    }
}

impl std::fmt::Display for PluginSha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for PluginSha {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How one post ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PostResult {
    /// The HTTP buyer took the lead at this price.
    Accepted {
        price_cents: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        buyer_lead_id: Option<String>,
    },
    /// Kept in the store for the buyer to pick up (Wasm campaign with pick-up delivery).
    PickedUp {
        price_cents: u32,
    },
    /// Sold at the bid and queued for the outbox to POST to the campaign's webhook (Wasm campaign with webhook
    /// delivery: the plugin's bid is the buyer's commitment).
    Queued {
        price_cents: u32,
    },
    Rejected {
        reason: String,
    },
    Duplicate,
    /// The campaign reached a cap since it was pinged; nothing was sent.
    CapReached {
        cap: CapKind,
    },
    /// The campaign is no longer eligible (schedule, status, suppression) or its bid expired; nothing was sent.
    NoLongerEligible {
        reason: String,
    },
    /// The post deadline passed before an answer.
    Timeout,
    Failed {
        error: String,
    },
}

impl PostResult {
    /// The price the lead was sold at, for a successful post.
    pub fn sold_price(&self) -> Option<u32> {
        match self {
            PostResult::Accepted { price_cents, .. }
            | PostResult::PickedUp { price_cents }
            | PostResult::Queued { price_cents } => Some(*price_cents),
            _ => None,
        }
    }
}

/// One post attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostTrace {
    pub campaign_id: String,
    pub buyer_id: String,
    /// The bid posted at.
    pub bid_cents: u32,
    pub result: PostResult,
    /// How long the post took, in microseconds.
    pub elapsed_us: u64,
}

/// One step of the flow and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepTrace {
    pub step: String,
    /// Time from the start of the auction to the end of this step, in microseconds.
    pub elapsed_us: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The per-lead record of an auction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub publisher_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SelectionMode>,
    /// The clock's time when the auction started, unix ms.
    pub started_at_unix_ms: i64,
    pub steps: Vec<StepTrace>,
    pub campaigns: Vec<CampaignTrace>,
    pub posts: Vec<PostTrace>,
    /// Wall time of the whole call, in microseconds.
    pub total_us: u64,
}

impl Trace {
    /// Appends a step.
    pub fn step(&mut self, step: &str, elapsed: std::time::Duration, detail: impl Into<String>) {
        self.steps.push(StepTrace { step: step.to_owned(), elapsed_us: micros(elapsed), detail: detail.into() });
    }
}

/// A duration in whole microseconds.
pub fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

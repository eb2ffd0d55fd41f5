//! The engine's storage boundary: cap counters with atomic check-and-reserve, duplicate and suppression records,
//! two-step ping records, sales and their postings in the journal. The service implements [`AuctionStore`] over
//! SQLite; [`MemoryStore`](super::memory::MemoryStore) is the real in-memory implementation the CLI and tests use.
//!
//! Cap protocol: before posting a lead to a campaign the engine calls [`AuctionStore::reserve`], which counts the
//! sale against every cap window at once (or refuses, naming the cap that is full) so concurrent auctions can never
//! oversell; an accepted post [`AuctionStore::commit`]s the reservation at the confirmed price together with the
//! [`SaleRecord`] (one atomic step: a sale is recorded exactly when its caps are), a rejected or failed post
//! [`AuctionStore::release`]s it. The same step checks duplicate suppression: a reservation names the buyer and
//! the consumer ([`Purchase`]), is refused when that buyer bought the consumer — or holds a pending reservation for
//! it — within the campaign's window, and records the purchase when committed, so two auctions of one consumer running
//! at once can never both sell it to the same buyer. It checks the buyer's funds too: with a credit limit, a
//! reservation is refused unless its price fits in balance + limit − what the buyer's other reservations hold, and a
//! committed sale appends its postings ([`ledger::sale_postings`](super::ledger::sale_postings)) to the journal in the
//! same step, so no sale is recorded without them and none twice.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::Caps;
use super::identity::ConsumerKeys;
use super::lead_ping::Pinged;
use super::ledger::Funds;
use super::select::Candidate;
use pingpost_model::Lead;

/// The cap windows a sale falls in, as labels in the buyer's local time (`2026-03-14T09`, `2026-03-14`, `2026-03`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapWindows {
    pub hour: String,
    pub day: String,
    pub month: String,
}

/// Which cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CapKind {
    LeadsPerHour,
    LeadsPerDay,
    LeadsPerMonth,
    SpendPerDay,
    SpendPerMonth,
}

impl CapKind {
    /// The snake_case name of the cap.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a campaign has bought (and has reserved) in its current cap windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub leads_hour: u32,
    pub leads_day: u32,
    pub leads_month: u32,
    pub spend_day_cents: u64,
    pub spend_month_cents: u64,
}

impl Usage {
    /// The first cap that one more lead at `price_cents` would exceed, if any.
    pub fn exceeded_by(&self, caps: &Caps, price_cents: u32) -> Option<CapKind> {
        let price = u64::from(price_cents);
        let over_leads = |cap: Option<u32>, used: u32| cap.is_some_and(|cap| used >= cap);
        let over_spend = |cap: Option<u64>, used: u64| cap.is_some_and(|cap| used.saturating_add(price) > cap);
        if over_leads(caps.leads_per_hour, self.leads_hour) {
            Some(CapKind::LeadsPerHour)
        } else if over_leads(caps.leads_per_day, self.leads_day) {
            Some(CapKind::LeadsPerDay)
        } else if over_leads(caps.leads_per_month, self.leads_month) {
            Some(CapKind::LeadsPerMonth)
        } else if over_spend(caps.spend_per_day_cents, self.spend_day_cents) {
            Some(CapKind::SpendPerDay)
        } else if over_spend(caps.spend_per_month_cents, self.spend_month_cents) {
            Some(CapKind::SpendPerMonth)
        } else {
            None
        }
    }
}

/// The buyer and (when known) the consumer of a sale, checked when the sale is reserved: the buyer's funds against its
/// credit limit, and the consumer against the buyer's suppression window; recorded as the buyer's purchase when it is
/// committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub buyer_id: String,
    /// The consumer's keys; `None` for a PII-free ping that carried no hashes (suppression is then checked at the
    /// post, when the lead is known).
    pub keys: Option<ConsumerKeys>,
    /// When the sale is made (the post attempt); the purchase time recorded on commit.
    pub at_unix_ms: i64,
    /// Start of the campaign's suppression window: the reservation is refused when the buyer bought this consumer, or
    /// holds a pending reservation for it, at or after this time. `None`: no window (the purchase is still recorded,
    /// so the buyer's other campaigns see it).
    pub suppress_since_unix_ms: Option<i64>,
    /// The buyer's credit limit when the exchange manages its funds: the sale is refused unless its price fits in
    /// balance + limit − what the buyer's pending sales hold. `None`: the buyer's spending is not limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit_cents: Option<u64>,
}

/// A hand-over of a lead's PII about to happen (the post of the full lead to an HTTP buyer): audited by the store in
/// the same atomic step as the reservation that precedes the post, so every post attempt is audited, whatever the
/// buyer answers and whether it answers at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub lead_id: String,
    pub buyer_id: String,
    pub campaign_id: String,
    pub at_unix_ms: i64,
}

/// A sale counted against a campaign's caps but not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: u64,
    pub campaign_id: String,
    pub windows: CapWindows,
    pub price_cents: u32,
    /// Who buys whom, when the sale is of a known consumer; while pending it counts as a purchase for suppression.
    pub purchase: Option<Purchase>,
    /// Set on a hold (a standing quote's reservation, [`AuctionStore::hold`]): when it is given back unless its post
    /// took it first, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_unix_ms: Option<i64>,
}

/// A failure of the store itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("reservation {0} is not pending (already committed or released, or never made)")]
    UnknownReservation(u64),
    #[error("ping id {0:?} is already stored")]
    DuplicatePingId(String),
    /// The backend failed (a SQL error, I/O, a full disk): what the store was doing, and the backend's own error.
    /// The message includes the cause's, so a log line or an answer built from it tells the whole story.
    #[error("store backend failed: {what}: {cause}")]
    Backend {
        what: String,
        /// Shared, so one failed batch can answer every request in it.
        cause: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// What the store holds does not read back as the store writes it (an unknown name, a negative id).
    #[error("store data is corrupt: {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// The store cannot take the request: its writer has stopped, a write panicked, a lock was poisoned.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The backend failed doing `what` with `source`.
    pub fn backend(what: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend { what: what.into(), cause: Arc::new(cause) }
    }

    /// The backend's own error, when the backend failed.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Backend { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }

    /// Stored data read while doing `what` is not what the store writes: `detail` says how.
    pub fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into(), detail: detail.into() }
    }

    /// The same error, as the failure of `what` (its cause kept): a batch's failure told to each write in it.
    pub fn doing(&self, what: &str) -> Self {
        match self {
            StoreError::Backend { what: inner, cause } => {
                StoreError::Backend { what: format!("{what}: {inner}"), cause: cause.clone() }
            }
            StoreError::Corrupt { what: inner, detail } => {
                StoreError::Corrupt { what: format!("{what}: {inner}"), detail: detail.clone() }
            }
            StoreError::Unavailable(reason) => StoreError::Unavailable(format!("{what}: {reason}")),
            other => other.clone(),
        }
    }
}

/// Two errors are equal when they are the same kind with the same message (a backend's cause compares by its
/// message).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.to_string() == other.to_string()
    }
}

impl Eq for StoreError {}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    #[error("cap {} reached", .0.as_str())]
    CapReached(CapKind),
    /// The buyer bought this consumer at `at_unix_ms`, within the suppression window; `pending` when that purchase is a
    /// reservation not yet committed (another auction is posting this consumer to the buyer right now).
    #[error("buyer {} this consumer at {at_unix_ms} (unix ms), within its suppression window", bought_or_holds(.pending))]
    Suppressed { at_unix_ms: i64, pending: bool },
    /// The buyer's available funds (balance + credit limit − held) cannot cover the price.
    #[error("insufficient funds: {available_cents} cents available")]
    InsufficientFunds { available_cents: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How [`ReserveError::Suppressed`] names the earlier sale.
fn bought_or_holds(pending: &bool) -> &'static str {
    if *pending { "holds a pending sale of" } else { "already bought" }
}

/// A two-step auction between its ping and its post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingRecord {
    pub ping_id: String,
    pub publisher_id: String,
    /// The validated, normalised lead (kept only until the post or the expiry); `None` for a PII-free ping, whose
    /// lead comes with its post.
    pub lead: Option<Lead>,
    /// The age buyers were told.
    pub age: u8,
    /// The consumer's keys: the lead's, or those a PII-free ping carried (`None` when it carried none).
    pub keys: Option<ConsumerKeys>,
    /// What a PII-free ping said about its consumer: the posted lead must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinged: Option<Pinged>,
    /// The bids that may be posted to, best first.
    pub ranked: Vec<Candidate>,
    /// What the quoted bids hold of their campaigns' caps until the post takes it or it expires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Reservation>,
    /// How many buyers the lead may be sold to (1 unless shared).
    pub max_buyers: u32,
    pub created_at_unix_ms: i64,
    pub expires_at_unix_ms: i64,
}

/// The result of claiming a ping id for its post.
#[derive(Debug, Clone, PartialEq)]
pub enum PingClaim {
    /// Claimed: no other post can claim it again.
    Claimed(Box<PingRecord>),
    Unknown,
    Expired {
        expired_at_unix_ms: i64,
    },
    AlreadyPosted,
}

/// How a sold lead reaches its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SaleDelivery {
    /// An HTTP buyer took the post itself: it already has the lead.
    Posted,
    /// Kept for the buyer to read (a Wasm campaign with pick-up delivery).
    Pickup,
    /// Queued for the outbox to POST to this URL (a Wasm campaign with a webhook); only ever to this URL.
    Webhook { url: String },
}

impl SaleDelivery {
    /// The snake_case name of the delivery kind.
    pub fn kind(&self) -> &'static str {
        self.into()
    }
}

/// A sale as the engine commits it, with the lead (PII) it sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleRecord {
    /// The auction's ping id: the exchange's id of the lead.
    pub lead_id: String,
    pub campaign_id: String,
    pub buyer_id: String,
    pub publisher_id: String,
    /// What the buyer pays, in cents (the price the reservation is committed at).
    pub price_cents: u32,
    /// What the publisher earns of it (the price less the exchange's margin): the sale's postings in the journal.
    pub payout_cents: u32,
    pub sold_at_unix_ms: i64,
    /// The reference the buyer gave with its bid, echoed in the webhook post.
    pub buyer_ref: Option<String>,
    /// The normalised full lead.
    pub lead: Lead,
    pub delivery: SaleDelivery,
}

/// A return of a sold lead by its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SaleReturn {
    pub reason: String,
    pub returned_at_unix_ms: i64,
}

/// A recorded sale as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredSale {
    /// The store's id of the sale (increasing in sale order).
    pub sale_id: u64,
    pub lead_id: String,
    pub campaign_id: String,
    pub buyer_id: String,
    pub publisher_id: String,
    pub price_cents: u32,
    pub sold_at_unix_ms: i64,
    pub buyer_ref: Option<String>,
    pub delivery: SaleDelivery,
    /// The full lead; `None` once the retention purge has cleared it (or where the reader may not see it).
    pub lead: Option<Lead>,
    /// Set once the buyer returned the lead.
    pub returned: Option<SaleReturn>,
}

impl StoredSale {
    /// The sale `sale` as stored under `sale_id` at `price_cents`, not returned.
    pub fn new(sale_id: u64, sale: &SaleRecord, price_cents: u32) -> Self {
        StoredSale {
            sale_id,
            lead_id: sale.lead_id.clone(),
            campaign_id: sale.campaign_id.clone(),
            buyer_id: sale.buyer_id.clone(),
            publisher_id: sale.publisher_id.clone(),
            price_cents,
            sold_at_unix_ms: sale.sold_at_unix_ms,
            buyer_ref: sale.buyer_ref.clone(),
            delivery: sale.delivery.clone(),
            lead: Some(sale.lead.clone()),
            returned: None,
        }
    }
}

/// What the engine needs from storage. Every method is one atomic step.
///
/// The methods are async so that a store can make the auction wait for its write without holding a thread (the
/// SQLite store's group commit batches the writes of many auctions waiting at once).
///
/// **Durability.** A write is durable (committed) when it returns, unless its method says otherwise — only
/// [`AuctionStore::check_and_record_lead`] does. A read sees what is committed.
///
/// **Reads on the caller's thread.** [`AuctionStore::usage`], [`AuctionStore::funds`] and
/// [`AuctionStore::bought_since`] are indexed point
/// look-ups that a store may answer synchronously on the async worker that calls them (the SQLite store does, on one
/// of its read connections: in WAL mode a reader never waits for the writer, and the look-up takes microseconds —
/// less than handing it to the blocking pool and back).
#[async_trait::async_trait]
pub trait AuctionStore: Send + Sync + std::fmt::Debug {
    /// Counts one sale at `price_cents` against every window of `campaign_id`'s caps, or refuses: first with
    /// [`ReserveError::Suppressed`] when `purchase` has a suppression window its buyer already bought (or holds a
    /// pending reservation for) this consumer in, then with the first cap it would exceed. Reserved sales count
    /// against caps and suppression until released. A `handover` is audited in the same atomic step (nothing is
    /// audited when the reservation is refused).
    async fn reserve(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError>;
    /// Confirms a reservation at the price the buyer confirmed (spend is corrected to it), records its purchase and
    /// the sale (at `final_price_cents`; a webhook sale also queues its delivery) with its postings, all in one atomic
    /// step; returns the sale's id.
    async fn commit(
        &self,
        reservation: &Reservation,
        final_price_cents: u32,
        sale: &SaleRecord,
    ) -> Result<u64, StoreError>;
    /// Gives a reservation (or a hold) back.
    async fn release(&self, reservation: &Reservation) -> Result<(), StoreError>;
    /// Holds a sale at `price_cents` for a standing two-step quote until `expires_at_unix_ms`: counted against the
    /// caps and (with a `purchase`) the buyer's suppression window exactly as a reservation is, and refused as
    /// [`AuctionStore::reserve`] refuses, so concurrent quotes cannot promise one campaign's last unit twice. Its post
    /// takes it ([`AuctionStore::take_hold`]); otherwise it is released, or once expired by
    /// [`AuctionStore::release_expired_holds`].
    async fn hold(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        expires_at_unix_ms: i64,
    ) -> Result<Reservation, ReserveError>;
    /// Turns a hold into the reservation of its post, in one atomic step: the caps are not checked again (the hold
    /// already counts against them, in its windows), the buyer's suppression window is checked for `purchase` (the
    /// consumer may be known only now) and the `handover` audited. Refused with [`StoreError::UnknownReservation`]
    /// when the hold is gone (released at its expiry, or taken by a post a crash cut short), else as `reserve`
    /// refuses; a refused hold stays held.
    async fn take_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError>;
    /// [`AuctionStore::take_hold`] and [`AuctionStore::commit`] as one atomic step, at `sale.price_cents`: the sale of
    /// a held Wasm bid, which nothing can undo between the two. Refuses as `take_hold` does; returns the sale's id.
    async fn sell_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError>;
    /// Releases every hold whose expiry is at or before `now_unix_ms`; returns how many.
    async fn release_expired_holds(&self, now_unix_ms: i64) -> Result<usize, StoreError>;
    /// [`AuctionStore::reserve`] and [`AuctionStore::commit`] as one atomic step, at `sale.price_cents`: for a sale
    /// nothing can undo between the two (a Wasm buyer's bid is its commitment), so the store writes once instead of
    /// twice and keeps no reservation. Refuses exactly as `reserve` does; returns the sale's id.
    async fn sell(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError>;
    /// `buyer_id`'s funds: its account's balance and what its pending sales and holds keep (a read on the caller's
    /// thread: see the trait).
    async fn funds(&self, buyer_id: &str) -> Result<Funds, StoreError>;
    /// What `campaign_id` has bought and reserved in `windows` (a read on the caller's thread: see the trait).
    async fn usage(&self, campaign_id: &str, windows: &CapWindows) -> Result<Usage, StoreError>;
    /// If this consumer was seen from `publisher_id` at or after `since_unix_ms`, when; otherwise records it as seen
    /// at `now_unix_ms` and returns `None`. Checks and records run one after another, so of two leads of one consumer
    /// only the first is new. The record need not be durable when this returns, only before any later write of this
    /// store is (the lead's sale): a crash may forget a consumer whose lead sold nothing.
    async fn check_and_record_lead(
        &self,
        publisher_id: &str,
        keys: &ConsumerKeys,
        since_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Whether `buyer_id` bought (committed a purchase of) this consumer at or after `since_unix_ms`: the engine's
    /// cheap eligibility filter; [`AuctionStore::reserve`] makes the binding check (a read on the caller's thread).
    async fn bought_since(&self, buyer_id: &str, keys: &ConsumerKeys, since_unix_ms: i64) -> Result<bool, StoreError>;
    /// Forgets the record [`AuctionStore::check_and_record_lead`] made at `seen_at` (unix ms) of this consumer from
    /// `publisher_id`: the lead went unsold for the exchange's own reasons, so a resend is not a duplicate.
    async fn forget_lead(&self, publisher_id: &str, keys: &ConsumerKeys, seen_at: i64) -> Result<(), StoreError>;
    /// Stores a two-step ping until its post.
    async fn save_ping(&self, record: PingRecord) -> Result<(), StoreError>;
    /// The record of an open ping (not yet claimed, closed or expired at its last check), without claiming it: what
    /// a post checks its lead against before it claims the ping.
    async fn open_ping(&self, ping_id: &str) -> Result<Option<PingRecord>, StoreError>;
    /// Claims a ping for its post, once. The store keeps the ping's record until [`AuctionStore::finish_post`], so a
    /// post that a crash cuts short can be claimed again once the store has settled it.
    async fn claim_ping(&self, ping_id: &str, now_unix_ms: i64) -> Result<PingClaim, StoreError>;
    /// Ends the post of a claimed ping, whatever its outcome: the ping's record (the lead) is cleared.
    async fn finish_post(&self, ping_id: &str) -> Result<(), StoreError>;
    /// The sales of `campaign_id`, in sale order.
    async fn sales_of_campaign(&self, campaign_id: &str) -> Result<Vec<StoredSale>, StoreError>;
}

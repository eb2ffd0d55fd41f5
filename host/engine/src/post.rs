//! The post phase: the full lead goes only to the selected buyer(s), one campaign at a time per buyer, with
//! fallback down the ranking when a post is refused or fails, until the lead is sold to as many buyers as the mode
//! allows, the ranking is exhausted, or the post deadline passes. Every post is preceded by a reservation that counts
//! the sale against the caps and, in the same atomic step, against the buyer's suppression window (a pending sale of
//! this consumer to this buyer counts as a purchase) — or, for a bid a two-step quote held, by taking that hold; it
//! is committed — recording the purchase and the sale, in one atomic step — when the buyer takes the lead and
//! released otherwise.
//!
//! Only HTTP buyers are posted to here, synchronously, because their answer decides the sale. A Wasm campaign's bid
//! is its buyer's commitment: its sale is reserved and committed in one atomic step (`AuctionStore::sell`), with the
//! lead kept for pick-up or, for a webhook, with an outbox row the service's delivery worker POSTs with retries, so
//! a buyer outage never loses a sale.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use tokio::time::Instant;

use super::config::Caps;
use super::config::{CampaignStatus, Delivery, Origin, Publisher};
use super::eligibility::{cap_windows, in_schedule};
use super::entries::{CampaignEntry, Campaigns, Runner};
use super::http_buyer::{HttpBuyerClient, HttpBuyerError, PostAnswer, PostRequest};
use super::identity::ConsumerKeys;
use super::ledger::payout_cents;
use super::pii::PiiGuard;
use super::quote;
use super::select::{Candidate, next_batch};
use super::store::{
    AuctionStore, CapWindows, Handover, Purchase, Reservation, ReserveError, SaleDelivery, SaleRecord, StoreError,
};
use super::text::{MAX_STORED_TEXT, bounded, stored};
use super::trace::{ErrorKind, PostResult, PostTrace, Sale, micros};
use pingpost_model::Lead;
use pingpost_model::clock::SharedClock;

/// What the post phase needs to know about the lead.
pub(crate) struct PostJob<'a> {
    pub ping_id: &'a str,
    pub lead: &'a Lead,
    pub keys: &'a ConsumerKeys,
    pub publisher: &'a Publisher,
    pub ranked: &'a [Candidate],
    /// What a two-step quote holds for some of the bids (none one-shot): their post takes the hold instead of
    /// reserving afresh.
    pub holds: &'a [Reservation],
    /// The ids of the holds a post took (the engine gives the others back).
    pub taken: &'a Mutex<HashSet<u64>>,
    pub max_buyers: u32,
    /// The consumer's age on the day of the auction (what the guard derives the ping's age from).
    pub age: u8,
    /// The lead's PII guard, made on first use: it keeps the lead's PII out of what a buyer that saw the lead
    /// answers (stored in the trace).
    pub guard: &'a std::sync::OnceLock<PiiGuard>,
}

impl PostJob<'_> {
    /// The hold a quote took for `candidate`'s bid, if any.
    fn hold_of(&self, candidate: &Candidate) -> Option<&Reservation> {
        self.holds.iter().find(|h| h.campaign_id == candidate.campaign_id)
    }

    /// Whether `hold` was taken (or given back) already.
    fn is_taken(&self, hold: &Reservation) -> bool {
        self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&hold.id)
    }

    /// Marks a hold as taken by its post (or found gone, or given back): the engine does not give it back.
    fn take(&self, hold: &Reservation) {
        self.taken.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(hold.id);
    }

    /// `text` from a buyer that saw the lead, as it may be stored.
    fn stored(&self, text: String) -> String {
        stored(self.guard.get_or_init(|| PiiGuard::for_lead(self.lead, self.age)), text)
    }
}

/// What the post phase uses of the exchange: its campaigns, its store, its clock and its HTTP client.
pub(crate) struct Poster<'a> {
    pub campaigns: &'a Campaigns,
    pub store: &'a dyn AuctionStore,
    pub clock: &'a SharedClock,
    pub http: &'a HttpBuyerClient,
}

impl Poster<'_> {
    /// Posts down the ranking; returns the sales and every attempt.
    pub(crate) async fn run(&self, job: PostJob<'_>) -> (Vec<Sale>, Vec<PostTrace>) {
        let deadline = Instant::now() + std::time::Duration::from_millis(job.publisher.post_deadline_ms);
        let mut sales: Vec<Sale> = Vec::new();
        let mut posts = Vec::new();
        let mut tried: HashSet<String> = HashSet::new();
        loop {
            let want = (job.max_buyers as usize).saturating_sub(sales.len());
            let sold_to: HashSet<String> = sales.iter().map(|s| s.buyer_id.clone()).collect();
            let batch = next_batch(job.ranked, &tried, &sold_to, want);
            if want == 0 || batch.is_empty() || Instant::now() >= deadline {
                break;
            }
            let attempts = batch.iter().map(|candidate| self.attempt(&job, candidate, deadline));
            for (candidate, (trace, sale)) in batch.iter().zip(join_all(attempts).await) {
                tried.insert(candidate.campaign_id.clone());
                posts.push(trace);
                sales.extend(sale);
            }
        }
        (sales, posts)
    }

    /// One post: re-check, reserve, deliver, then commit or release. A hold the attempt did not take (the campaign
    /// paused, its bid expired, the take refused) is given back at once, so it cannot stand in the way of the
    /// fallback (another campaign of the same buyer would find this consumer held by it).
    async fn attempt(&self, job: &PostJob<'_>, candidate: &Candidate, deadline: Instant) -> (PostTrace, Option<Sale>) {
        let started = Instant::now();
        let (result, sale) = self.attempt_inner(job, candidate, deadline).await;
        if let Some(hold) = job.hold_of(candidate).filter(|hold| !job.is_taken(hold)) {
            job.take(hold);
            quote::release(self.store, std::slice::from_ref(hold)).await;
        }
        let trace = PostTrace {
            campaign_id: candidate.campaign_id.clone(),
            buyer_id: candidate.buyer_id.clone(),
            bid_cents: candidate.price_cents,
            result,
            elapsed_us: micros(started.elapsed()),
        };
        (trace, sale)
    }

    async fn attempt_inner(
        &self,
        job: &PostJob<'_>,
        candidate: &Candidate,
        deadline: Instant,
    ) -> (PostResult, Option<Sale>) {
        let Some(entry) = self.campaigns.get(&candidate.campaign_id).cloned() else {
            return no_longer("campaign no longer configured");
        };
        let now = self.clock.now_unix_ms();
        if now >= candidate.expires_at_unix_ms {
            return no_longer("bid expired");
        }
        if entry.config.status == CampaignStatus::Paused || entry.config.paused_by_buyer {
            return no_longer("paused");
        }
        if entry.config.sources.refuses(Origin::of_lead(job.lead)).is_err() {
            return no_longer("source refused");
        }
        if !in_schedule(&entry.config.schedule, entry.time_zone, now) {
            return no_longer("out of schedule");
        }
        let windows = cap_windows(entry.time_zone, now);
        let days = entry.config.suppression_days;
        let purchase = entry.purchase(Some(job.keys), now);
        let caps = &entry.config.caps;
        let hold = job.hold_of(candidate);
        let endpoints = match &entry.runner {
            Runner::Http(endpoints) => endpoints,
            Runner::Disabled { .. } => return no_longer("plugin disabled"),
            // Nothing can undo a Wasm buyer's sale between its reservation and its commit: one atomic step.
            Runner::Wasm { delivery, .. } => {
                let (result, delivery) = match delivery {
                    Delivery::Pickup => {
                        (PostResult::PickedUp { price_cents: candidate.price_cents }, SaleDelivery::Pickup)
                    }
                    Delivery::Webhook { url } => (
                        PostResult::Queued { price_cents: candidate.price_cents },
                        SaleDelivery::Webhook { url: url.clone() },
                    ),
                };
                let record = sale_record(job, candidate, &entry, candidate.price_cents, now, delivery);
                let sold = match hold {
                    Some(hold) => self.sell_held(job, hold, (caps, &windows), &purchase, &record).await,
                    None => self.store.sell(&entry.config.id, caps, &windows, Some(&purchase), &record).await,
                };
                return match sold {
                    Ok(_) => (result, Some(sale(job, &entry, candidate.price_cents, None))),
                    Err(ReserveError::Store(error)) => {
                        (PostResult::Failed { error: format!("recording the sale: {error}") }, None)
                    }
                    Err(refusal) => refused(refusal, days),
                };
            }
        };
        // The post hands the lead's PII over: audited with the reservation, before any byte of it is sent.
        let handover = Handover {
            lead_id: job.ping_id.to_owned(),
            buyer_id: entry.config.buyer_id.clone(),
            campaign_id: entry.config.id.clone(),
            at_unix_ms: now,
        };
        let reserved = match hold {
            Some(hold) => self.reserve_held(job, hold, (caps, &windows), &purchase, &handover).await,
            None => {
                let price = candidate.price_cents;
                self.store.reserve(&entry.config.id, caps, &windows, price, Some(&purchase), Some(&handover)).await
            }
        };
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(ReserveError::Store(error)) => return (PostResult::Failed { error: error.to_string() }, None),
            Err(refusal) => return refused(refusal, days),
        };
        let result = self.post_to_buyer(job, candidate, &entry, &endpoints.post_url, deadline).await;
        let Some(price) = result.sold_price() else {
            self.release(&entry, &reservation).await;
            return (result, None);
        };
        let record = sale_record(job, candidate, &entry, price, now, SaleDelivery::Posted);
        let buyer_lead_id = match &result {
            PostResult::Accepted { buyer_lead_id, .. } => buyer_lead_id.clone(),
            _ => None,
        };
        let sale = sale(job, &entry, price, buyer_lead_id);
        if let Err(error) = self.store.commit(&reservation, price, &record).await {
            // The HTTP buyer that accepted already holds the lead: it is sold whatever the store says.
            tracing::error!(campaign = %entry.config.id, %error, "could not record the sale of a lead an HTTP buyer accepted");
        }
        (result, Some(sale))
    }

    /// Sells a held bid of a Wasm campaign on its hold, in one atomic step. A hold found gone (released at its expiry,
    /// or taken by a post a crash cut short) is sold as an unheld bid is; a hold the store refuses to take (the
    /// buyer's suppression window) stays held, for the attempt to give back.
    async fn sell_held(
        &self,
        job: &PostJob<'_>,
        hold: &Reservation,
        (caps, windows): (&Caps, &CapWindows),
        purchase: &Purchase,
        record: &SaleRecord,
    ) -> Result<u64, ReserveError> {
        match self.store.sell_hold(hold, Some(purchase), record).await {
            Ok(sale_id) => {
                job.take(hold);
                Ok(sale_id)
            }
            Err(ReserveError::Store(StoreError::UnknownReservation(_))) => {
                job.take(hold);
                self.store.sell(&hold.campaign_id, caps, windows, Some(purchase), record).await
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// Reserves the post of a held bid to an HTTP buyer by taking its hold (auditing the hand-over in the same step),
    /// or afresh when the hold is gone (as for [`Poster::sell_held`]).
    async fn reserve_held(
        &self,
        job: &PostJob<'_>,
        hold: &Reservation,
        (caps, windows): (&Caps, &CapWindows),
        purchase: &Purchase,
        handover: &Handover,
    ) -> Result<Reservation, ReserveError> {
        match self.store.take_hold(hold, Some(purchase), Some(handover)).await {
            Ok(reservation) => {
                job.take(hold);
                Ok(reservation)
            }
            Err(ReserveError::Store(StoreError::UnknownReservation(_))) => {
                job.take(hold);
                let price = hold.price_cents;
                self.store.reserve(&hold.campaign_id, caps, windows, price, Some(purchase), Some(handover)).await
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// Gives a reservation back, logging a failure (the auction goes on either way).
    async fn release(&self, entry: &CampaignEntry, reservation: &Reservation) {
        if let Err(error) = self.store.release(reservation).await {
            tracing::error!(campaign = %entry.config.id, %error, "could not release a cap reservation");
        }
    }

    /// Posts the full lead to an HTTP buyer's post URL and reads its answer.
    async fn post_to_buyer(
        &self,
        job: &PostJob<'_>,
        candidate: &Candidate,
        entry: &Arc<CampaignEntry>,
        url: &str,
        deadline: Instant,
    ) -> PostResult {
        let budget = deadline.saturating_duration_since(Instant::now());
        let request = PostRequest {
            ping_id: job.ping_id,
            campaign_id: &entry.config.id,
            price_cents: candidate.price_cents,
            buyer_ref: candidate.buyer_ref.as_deref(),
            lead: job.lead,
        };
        // The buyer has seen the full lead: whatever text it answers is guarded before it is stored.
        match self.http.post(url, &request, budget).await {
            Ok(PostAnswer::Accepted { price_cents, buyer_lead_id }) => {
                PostResult::Accepted { price_cents, buyer_lead_id: buyer_lead_id.map(|id| job.stored(id)) }
            }
            Ok(PostAnswer::Rejected { reason }) => PostResult::Rejected { reason: job.stored(reason) },
            Ok(PostAnswer::Duplicate) => PostResult::Duplicate,
            Err(HttpBuyerError::Timeout) => PostResult::Timeout,
            Err(error) => PostResult::Failed {
                error: job.stored(bounded(&format!("{}: {error}", ErrorKind::from(&error).as_str()), MAX_STORED_TEXT)),
            },
        }
    }
}

/// A post not attempted because the candidate no longer qualifies, and why.
fn no_longer(reason: &str) -> (PostResult, Option<Sale>) {
    (PostResult::NoLongerEligible { reason: reason.to_owned() }, None)
}

/// The post result of a sale the store refused to reserve (a cap or the buyer's suppression window).
fn refused(refusal: ReserveError, suppression_days: u32) -> (PostResult, Option<Sale>) {
    match refusal {
        ReserveError::Suppressed { at_unix_ms, pending } => {
            let at =
                chrono::DateTime::from_timestamp_millis(at_unix_ms).map_or(at_unix_ms.to_string(), |t| t.to_rfc3339());
            let days = suppression_days;
            no_longer(&if pending {
                format!(
                    "suppressed: another auction is selling this consumer to this buyer (reserved at {at}), within its {days}-day window"
                )
            } else {
                format!("suppressed: buyer bought this consumer at {at}, within its {days}-day window")
            })
        }
        ReserveError::CapReached(cap) => (PostResult::CapReached { cap }, None),
        ReserveError::InsufficientFunds { available_cents } => {
            no_longer(&format!("insufficient funds: the buyer has {available_cents} cents available"))
        }
        ReserveError::Store(error) => (PostResult::Failed { error: error.to_string() }, None),
    }
}

/// The auction's view of a sale to `entry`'s campaign at `price_cents`.
fn sale(job: &PostJob<'_>, entry: &CampaignEntry, price_cents: u32, buyer_lead_id: Option<String>) -> Sale {
    Sale::new(&entry.config.id, &entry.config.buyer_id, price_cents, job.publisher.margin_bps, buyer_lead_id)
}

/// What the store records of a sale of `job`'s lead to `entry`'s campaign.
fn sale_record(
    job: &PostJob<'_>,
    candidate: &Candidate,
    entry: &CampaignEntry,
    price_cents: u32,
    now_unix_ms: i64,
    delivery: SaleDelivery,
) -> SaleRecord {
    SaleRecord {
        lead_id: job.ping_id.to_owned(),
        campaign_id: entry.config.id.clone(),
        buyer_id: entry.config.buyer_id.clone(),
        publisher_id: job.publisher.id.clone(),
        price_cents,
        payout_cents: payout_cents(price_cents, job.publisher.margin_bps),
        sold_at_unix_ms: now_unix_ms,
        buyer_ref: candidate.buyer_ref.clone(),
        lead: job.lead.clone(),
        delivery,
    }
}

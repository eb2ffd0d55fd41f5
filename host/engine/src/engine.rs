//! The exchange: runs a lead through validate → redact → PII guard → duplicate check → eligibility → ping fan-out →
//! select → post with fallback → outcome, one-shot ([`Exchange::run_lead`]) or in two steps ([`Exchange::ping`] then
//! [`Exchange::post`]). Each step is a function in its own file that takes what it needs and returns what the next
//! step needs, or how the auction ended; this file calls them in order and keeps the trace. Time, ids, storage and
//! the HTTP client are injected through [`ExchangeParts`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::config::{Buyer, Campaign, CampaignStatus, Origin, Publisher};
use super::entries::{Campaigns, PublisherEntry, Runner};
use super::fanout::FanOut;
use super::field_error::FieldError;
use super::http_buyer::HttpBuyerClient;
use super::identity::ConsumerKeys;
use super::ids::IdSource;
use super::lead_ping::{LeadPing, ValidLeadPing, validate_lead_ping};
use super::pii::{PiiGuard, PiiLeak};
use super::pingable::LeadAt;
use super::post::{PostJob, Poster};
use super::quote::{self, Quote, QuoteTerms};
use super::redact::{redact, redact_ping};
use super::select::{self, Candidate};
use super::store::{AuctionStore, PingClaim, PingRecord, Reservation, StoreError};
use super::trace::{Answer, EarlyEnd, Outcome, OutcomeStatus, Sale, Trace, micros};
use super::validate::{ValidLead, validate_lead};
use super::vertical::Verticals;
use super::{answers, dedupe, guard, pingable};
use pingpost_model::Lead;
use pingpost_model::clock::SharedClock;
use pingpost_runtime::{BuyerPlugin, PluginSlot, RedactorPlugin};

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Time kept back from the ping deadline for the engine's own work after the answers (selection, bookkeeping):
    /// buyers get the deadline minus this, as Prebid Server budgets `tmax`.
    pub overhead_reserve: Duration,
    /// The highest bid any campaign may make unless its own `max_bid_cents` says otherwise, in cents: a bug or a
    /// hostile plugin bidding `u32::MAX` ($42.9M) must not sell.
    pub max_bid_cents: u32,
}

/// The exchange-wide bid maximum by default: $1,000, far above any consumer lead's price.
pub const DEFAULT_MAX_BID_CENTS: u32 = 100_000;

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { overhead_reserve: Duration::from_millis(10), max_bid_cents: DEFAULT_MAX_BID_CENTS }
    }
}

/// The injected parts of an exchange.
#[derive(Debug, Clone)]
pub struct ExchangeParts {
    pub clock: SharedClock,
    pub ids: Arc<dyn IdSource>,
    pub store: Arc<dyn AuctionStore>,
    pub http: HttpBuyerClient,
    pub settings: EngineSettings,
}

/// Per-lead options of a one-shot auction or a ping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadOptions {
    /// In shared mode, sell to at most this many buyers (lowers the publisher's N, never raises it).
    pub shared_max_buyers: Option<u32>,
    /// The id the lead's auction runs under, when the caller named it before (from [`Exchange::new_lead_id`]); a
    /// fresh id otherwise.
    pub lead_id: Option<String>,
}

/// How a two-step ping ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PingStatus {
    /// A bid stands until `expires_at_unix_ms`: post the ping id to sell.
    Bid,
    /// Nobody bid (or every bid was under the floor).
    NoBid,
    Duplicate,
    Rejected,
    Error,
}

/// The answer to a two-step ping.
#[derive(Debug, Clone, Serialize)]
pub struct PingOutcome {
    pub ping_id: String,
    pub status: PingStatus,
    /// The best bid, in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_bid_cents: Option<u32>,
    /// What the publisher would be paid for the best bid (bid minus margin), in cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_cents: Option<u32>,
    /// Until when a post sells at the best bid, unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_unix_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pii_leaks: Vec<PiiLeak>,
    pub trace: Trace,
}

/// Why a two-step post could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("unknown ping id {0:?}")]
    UnknownPingId(String),
    #[error("ping {ping_id:?} expired at {expired_at_unix_ms} (unix ms)")]
    Expired { ping_id: String, expired_at_unix_ms: i64 },
    #[error("ping {0:?} was already posted")]
    AlreadyPosted(String),
    #[error("ping {0:?}: its publisher is no longer configured")]
    UnknownPublisher(String),
    /// The ping was sent without its lead, and the post did not bring it.
    #[error("ping {0:?} was sent without its lead: the post must carry it")]
    LeadRequired(String),
    /// The ping was sent with its lead, and the post brought one too.
    #[error("ping {0:?} was sent with its lead: the post carries only the ping id")]
    LeadNotExpected(String),
    /// The posted lead is not valid, or not the consumer the ping described: each field named. Nothing was sold and
    /// the ping stays open.
    #[error("the posted lead does not fit its ping: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    LeadRefused(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PingOutcome {
    /// The answer to a ping whose auction ended before any bid stood.
    fn ended(ping_id: String, end: EarlyEnd, trace: Trace) -> Self {
        let status = match end.status {
            OutcomeStatus::Duplicate => PingStatus::Duplicate,
            OutcomeStatus::Rejected => PingStatus::Rejected,
            OutcomeStatus::Unsold | OutcomeStatus::Sold => PingStatus::NoBid,
            OutcomeStatus::Error => PingStatus::Error,
        };
        PingOutcome {
            status,
            reason: Some(end.reason),
            field_errors: end.field_errors,
            pii_leaks: end.pii_leaks,
            trace,
            ..PingOutcome::no_bid(ping_id)
        }
    }

    /// A ping with no standing bid (yet), nothing else said.
    fn no_bid(ping_id: String) -> Self {
        PingOutcome {
            ping_id,
            status: PingStatus::NoBid,
            best_bid_cents: None,
            payout_cents: None,
            expires_at_unix_ms: None,
            reason: None,
            field_errors: vec![],
            pii_leaks: vec![],
            trace: Trace::default(),
        }
    }
}

/// The running exchange: configuration, plugins and injected parts. Cheap to share behind an `Arc`; every entry
/// point takes `&self` and may run concurrently with others. Built by [`ExchangeBuilder`](super::ExchangeBuilder).
pub struct Exchange {
    pub(crate) verticals: Verticals,
    pub(crate) publishers: HashMap<String, PublisherEntry>,
    pub(crate) buyers: HashMap<String, Buyer>,
    pub(crate) campaigns: Campaigns,
    pub(crate) clock: SharedClock,
    pub(crate) ids: Arc<dyn IdSource>,
    pub(crate) store: Arc<dyn AuctionStore>,
    pub(crate) http: HttpBuyerClient,
    pub(crate) settings: EngineSettings,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("publishers", &self.publishers.len())
            .field("buyers", &self.buyers.len())
            .field("campaigns", &self.campaigns.len())
            .finish_non_exhaustive()
    }
}

/// What a publisher sends to an auction: a full lead, or a PII-free ping whose lead comes with its post.
#[derive(Clone, Copy)]
enum Sent<'a> {
    Lead(&'a Lead),
    Ping(&'a LeadPing),
}

/// What the auction holds of its consumer once the input passed validation.
enum Held {
    Lead(ValidLead),
    Ping(ValidLeadPing),
}

impl Held {
    fn publisher_id(&self) -> &str {
        match self {
            Held::Lead(valid) => &valid.lead.publisher_id,
            Held::Ping(valid) => &valid.request.publisher_id,
        }
    }

    /// Where the lead comes from.
    fn origin(&self) -> Origin<'_> {
        match self {
            Held::Lead(valid) => Origin::of_lead(&valid.lead),
            Held::Ping(valid) => Origin {
                publisher_id: &valid.request.publisher_id,
                source_id: &valid.request.source_id,
                sub_id: &valid.request.sub_id,
            },
        }
    }

    /// The consumer's keys, when known (a PII-free ping may carry none).
    fn keys(&self) -> Option<&ConsumerKeys> {
        match self {
            Held::Lead(valid) => Some(&valid.keys),
            Held::Ping(valid) => valid.pinged.keys.as_ref(),
        }
    }
}

/// What the bid steps hand to the post: the lead's publisher, what is held of the consumer, and the bids in the
/// order they are tried.
struct Bids<'a> {
    publisher: &'a Publisher,
    held: Held,
    ranked: Vec<Candidate>,
    max_buyers: u32,
}

/// What the post phase tries: the bids in order, the holds a quote took for some of them, and how many buyers may
/// buy.
#[derive(Clone, Copy)]
struct Posting<'a> {
    ranked: &'a [Candidate],
    holds: &'a [Reservation],
    max_buyers: u32,
}

/// The bid phase of one lead: its id, its bids, and its trace so far.
struct BidPhase<'a> {
    ping_id: String,
    bids: Bids<'a>,
    trace: Trace,
    started: Instant,
}

/// A lead whose auction ended in the bid phase, with its trace.
struct Stopped {
    ping_id: String,
    end: EarlyEnd,
    trace: Trace,
}

/// Whether campaigns were pinged and every answer is a timeout.
fn nobody_answered_in_time(trace: &Trace) -> bool {
    let mut answers = trace.campaigns.iter().filter_map(|c| c.answer.as_ref()).peekable();
    answers.peek().is_some() && answers.all(|answer| matches!(answer, Answer::Timeout))
}

impl Exchange {
    /// The store the exchange records into.
    pub fn store(&self) -> &Arc<dyn AuctionStore> {
        &self.store
    }

    /// A publisher's configuration.
    pub fn publisher(&self, id: &str) -> Option<&Publisher> {
        self.publishers.get(id).map(|p| &p.config)
    }

    /// A buyer's configuration.
    pub fn buyer(&self, id: &str) -> Option<&Buyer> {
        self.buyers.get(id)
    }

    /// Every campaign, in configuration order.
    pub fn campaigns(&self) -> impl Iterator<Item = &Campaign> {
        self.campaigns.iter().map(|c| &c.config)
    }

    /// The plugin slot of a Wasm campaign, for hot swap and rollback.
    pub fn campaign_slot(&self, campaign_id: &str) -> Option<Arc<PluginSlot<BuyerPlugin>>> {
        match &self.campaigns.get(campaign_id)?.runner {
            Runner::Wasm { slot, .. } => Some(slot.clone()),
            Runner::Http(_) | Runner::Disabled { .. } => None,
        }
    }

    /// The redactor slot of a publisher, for hot swap and rollback.
    pub fn redactor_slot(&self, publisher_id: &str) -> Option<Arc<PluginSlot<RedactorPlugin>>> {
        self.publishers.get(publisher_id).map(|p| p.redactor.clone())
    }

    /// A fresh lead id, for a caller that must know it before the auction runs (an idempotent request names its lead
    /// before running it); pass it in [`LeadOptions::lead_id`].
    pub fn new_lead_id(&self) -> String {
        self.ids.next_id(self.clock.now_unix_ms())
    }

    /// Runs one lead through the whole auction and sells it (one-shot).
    pub async fn run_lead(&self, lead: Lead) -> Outcome {
        self.run_lead_with(lead, LeadOptions::default()).await
    }

    /// [`Exchange::run_lead`] with per-lead options.
    pub async fn run_lead_with(&self, lead: Lead, options: LeadOptions) -> Outcome {
        let BidPhase { ping_id, bids, trace, started } = match self.bid_phase(Sent::Lead(&lead), options).await {
            Ok(phase) => phase,
            Err(Stopped { ping_id, end, trace }) => return end.into_outcome(ping_id, trace),
        };
        if bids.ranked.is_empty() {
            self.forget_if_nobody_answered(bids.publisher, &bids.held, &trace).await;
        }
        let Held::Lead(valid) = &bids.held else {
            return EarlyEnd::error("a one-shot auction without its lead").into_outcome(ping_id, trace);
        };
        let posting = Posting { ranked: &bids.ranked, holds: &[], max_buyers: bids.max_buyers };
        self.sell(&ping_id, valid, bids.publisher, posting, (trace, started)).await
    }

    /// Two-step, first half: runs the auction up to selection and keeps the best bids for a later [`Exchange::post`].
    pub async fn ping(&self, lead: Lead) -> PingOutcome {
        self.ping_with(lead, LeadOptions::default()).await
    }

    /// [`Exchange::ping`] with per-lead options.
    pub async fn ping_with(&self, lead: Lead, options: LeadOptions) -> PingOutcome {
        self.two_step_ping(Sent::Lead(&lead), options).await
    }

    /// Two-step, first half, without PII: runs the auction up to selection on a PII-free ping and keeps the best
    /// bids for the [`Exchange::post_lead`] that brings the lead.
    pub async fn ping_without_pii(&self, ping: LeadPing, options: LeadOptions) -> PingOutcome {
        self.two_step_ping(Sent::Ping(&ping), options).await
    }

    /// The first half of a two-step sale, on a full lead or a PII-free ping.
    async fn two_step_ping(&self, sent: Sent<'_>, options: LeadOptions) -> PingOutcome {
        let BidPhase { ping_id, bids, mut trace, started } = match self.bid_phase(sent, options).await {
            Ok(phase) => phase,
            Err(Stopped { ping_id, end, trace }) => return PingOutcome::ended(ping_id, end, trace),
        };
        let mut outcome = PingOutcome::no_bid(ping_id.clone());
        let had_bids = !bids.ranked.is_empty();
        let keys = bids.held.keys().cloned();
        let now = self.clock.now_unix_ms();
        let terms = QuoteTerms {
            max_buyers: bids.max_buyers,
            post_deadline_ms: bids.publisher.post_deadline_ms,
            now_unix_ms: now,
        };
        let held =
            quote::hold(&*self.store, &self.campaigns, bids.ranked, keys.as_ref(), terms, &mut trace.campaigns).await;
        let Quote { ranked, holds } = match held {
            Ok(quote) => quote,
            Err(error) => {
                trace.step("hold", started.elapsed(), "failed");
                outcome.status = PingStatus::Error;
                outcome.reason = Some(format!("could not hold the quote: {error}"));
                trace.total_us = micros(started.elapsed());
                outcome.trace = trace;
                return outcome;
            }
        };
        if had_bids {
            trace.step("hold", started.elapsed(), format!("{} held", holds.len()));
        }
        match ranked.first().cloned() {
            None => {
                self.forget_if_nobody_answered(bids.publisher, &bids.held, &trace).await;
                outcome.reason = Some(no_sale_reason(&trace));
            }
            Some(best) => {
                let margin_bps = bids.publisher.margin_bps;
                let publisher_id = bids.held.publisher_id().to_owned();
                let (lead, age, keys, pinged) = match bids.held {
                    Held::Lead(valid) => (Some(valid.lead), valid.age, Some(valid.keys), None),
                    Held::Ping(valid) => (None, valid.pinged.age, valid.pinged.keys.clone(), Some(valid.pinged)),
                };
                let record = PingRecord {
                    ping_id: ping_id.clone(),
                    publisher_id,
                    lead,
                    age,
                    keys,
                    pinged,
                    ranked,
                    holds: holds.clone(),
                    max_buyers: bids.max_buyers,
                    created_at_unix_ms: trace.started_at_unix_ms,
                    expires_at_unix_ms: best.expires_at_unix_ms,
                };
                match self.store.save_ping(record).await {
                    Ok(()) => {
                        outcome.status = PingStatus::Bid;
                        outcome.best_bid_cents = Some(best.price_cents);
                        outcome.payout_cents = Some(Sale::new("", "", best.price_cents, margin_bps, None).payout_cents);
                        outcome.expires_at_unix_ms = Some(best.expires_at_unix_ms);
                    }
                    Err(error) => {
                        quote::release(&*self.store, &holds).await;
                        outcome.status = PingStatus::Error;
                        outcome.reason = Some(format!("could not keep the ping for its post: {error}"));
                    }
                }
            }
        }
        trace.total_us = micros(started.elapsed());
        outcome.trace = trace;
        outcome
    }

    /// Two-step, second half: sells a pinged lead at the bid it got, re-checking caps and schedules.
    pub async fn post(&self, ping_id: &str) -> Result<Outcome, PostError> {
        self.post_lead(ping_id, None).await
    }

    /// [`Exchange::post`] bringing the lead of a PII-free ping: the lead is validated and must be the consumer the
    /// ping described (else [`PostError::LeadRefused`], nothing sold and the ping left open for a corrected post),
    /// its duplicate check runs on the real phone and email when the ping carried no hashes, and then it is posted to
    /// the standing bidders in rank order with fallback.
    pub async fn post_lead(&self, ping_id: &str, lead: Option<Lead>) -> Result<Outcome, PostError> {
        let started = Instant::now();
        let now = self.clock.now_unix_ms();
        // Checked before the claim, which closes the ping: a refused lead leaves it open.
        let posted = match self.store.open_ping(ping_id).await? {
            Some(open) if now < open.expires_at_unix_ms => self.check_posted_lead(ping_id, &open, lead, now)?,
            // Unknown, closed or expired: the claim says which.
            _ => None,
        };
        let record = match self.store.claim_ping(ping_id, now).await? {
            PingClaim::Claimed(record) => *record,
            PingClaim::Unknown => return Err(PostError::UnknownPingId(ping_id.to_owned())),
            PingClaim::Expired { expired_at_unix_ms } => {
                return Err(PostError::Expired { ping_id: ping_id.to_owned(), expired_at_unix_ms });
            }
            PingClaim::AlreadyPosted => return Err(PostError::AlreadyPosted(ping_id.to_owned())),
        };
        // The ping was kept by an earlier configuration of the exchange, which may have had this publisher.
        let Some(publisher) = self.publishers.get(&record.publisher_id) else {
            quote::release(&*self.store, &record.holds).await;
            self.finish_post(ping_id).await;
            return Err(PostError::UnknownPublisher(ping_id.to_owned()));
        };
        let mut trace = Trace {
            publisher_id: record.publisher_id.clone(),
            mode: Some(publisher.config.selection),
            started_at_unix_ms: now,
            ..Trace::default()
        };
        trace.step("claim", started.elapsed(), format!("{} bids kept", record.ranked.len()));
        let valid = match (record.lead, record.keys, posted) {
            (Some(lead), Some(keys), _) => ValidLead { lead, age: record.age, keys },
            (None, keys, Some(posted)) => {
                // A ping that carried no hashes had no duplicate check: it runs now, on the real phone and email.
                let publisher = &publisher.config;
                if keys.is_none() && publisher.dedupe_window_days > 0 {
                    let checked = dedupe::check(&*self.store, publisher, &posted.keys, now).await;
                    trace.step("dedupe", started.elapsed(), if checked.is_err() { "duplicate or failed" } else { "" });
                    if let Err(end) = checked {
                        // A duplicate ends the ping; a failed look-up leaves it claimed, for the next start to reopen
                        // (nothing was sold), as a crash would; its holds expire with it.
                        if end.status == OutcomeStatus::Duplicate {
                            quote::release(&*self.store, &record.holds).await;
                            self.finish_post(ping_id).await;
                        }
                        trace.total_us = micros(started.elapsed());
                        return Ok(end.into_outcome(ping_id.to_owned(), trace));
                    }
                }
                posted
            }
            _ => {
                // The record changed between the check and the claim: only a store fault does that.
                quote::release(&*self.store, &record.holds).await;
                self.finish_post(ping_id).await;
                return Err(PostError::Store(StoreError::corrupt(
                    "posting a ping",
                    "its record changed under the post",
                )));
            }
        };
        let bids = Posting { ranked: &record.ranked, holds: &record.holds, max_buyers: record.max_buyers };
        let outcome = self.sell(ping_id, &valid, &publisher.config, bids, (trace, started)).await;
        self.finish_post(ping_id).await;
        Ok(outcome)
    }

    /// Checks the lead a post brings against its open ping: a full-lead ping takes none, a PII-free one needs one that
    /// is valid and is the consumer pinged. Returns the validated lead of a PII-free ping.
    fn check_posted_lead(
        &self,
        ping_id: &str,
        open: &PingRecord,
        lead: Option<Lead>,
        now: i64,
    ) -> Result<Option<ValidLead>, PostError> {
        let (pinged, lead) = match (&open.pinged, lead) {
            (None, None) => return Ok(None),
            (None, Some(_)) => return Err(PostError::LeadNotExpected(ping_id.to_owned())),
            (Some(_), None) => return Err(PostError::LeadRequired(ping_id.to_owned())),
            (Some(pinged), Some(lead)) => (pinged, lead),
        };
        let prefixed = |errors: Vec<FieldError>| {
            errors.into_iter().map(|e| FieldError { field: format!("lead.{}", e.field), reason: e.reason }).collect()
        };
        if lead.publisher_id != open.publisher_id {
            let reason = format!("is not the publisher that pinged ({:?})", open.publisher_id);
            return Err(PostError::LeadRefused(vec![FieldError::new("lead.publisher_id", reason)]));
        }
        // A publisher removed since the ping is answered after the claim, as for any post (`UnknownPublisher`).
        let valid =
            validate_lead(&lead, now, true, &self.verticals).map_err(|e| PostError::LeadRefused(prefixed(e)))?;
        let mismatches = pinged.mismatches(&valid);
        if mismatches.is_empty() { Ok(Some(valid)) } else { Err(PostError::LeadRefused(mismatches)) }
    }

    /// The bid phase, traced: its id, and either its bids or how it ended.
    async fn bid_phase(&self, sent: Sent<'_>, options: LeadOptions) -> Result<BidPhase<'_>, Stopped> {
        let started = Instant::now();
        let now = self.clock.now_unix_ms();
        let ping_id = options.lead_id.clone().unwrap_or_else(|| self.ids.next_id(now));
        let publisher_id = match sent {
            Sent::Lead(lead) => lead.publisher_id.clone(),
            Sent::Ping(ping) => ping.publisher_id.clone(),
        };
        let mut trace = Trace { publisher_id, started_at_unix_ms: now, ..Trace::default() };
        match self.bid_steps(sent, &options, &ping_id, now, started, &mut trace).await {
            Ok(bids) => Ok(BidPhase { ping_id, bids, trace, started }),
            Err(end) => {
                trace.total_us = micros(started.elapsed());
                Err(Stopped { ping_id, end, trace })
            }
        }
    }

    /// validate → redact → PII guard → dedupe → eligibility → fan-out → select, each step in the trace.
    async fn bid_steps(
        &self,
        sent: Sent<'_>,
        options: &LeadOptions,
        ping_id: &str,
        now: i64,
        started: Instant,
        trace: &mut Trace,
    ) -> Result<Bids<'_>, EarlyEnd> {
        let publisher_id = match sent {
            Sent::Lead(lead) => &lead.publisher_id,
            Sent::Ping(ping) => &ping.publisher_id,
        };
        let entry = self.publishers.get(publisher_id);
        let held = match sent {
            Sent::Lead(lead) => validate_lead(lead, now, entry.is_some(), &self.verticals).map(Held::Lead),
            Sent::Ping(ping) => validate_lead_ping(ping, now, entry.is_some(), &self.verticals).map(Held::Ping),
        };
        let held = held.map_err(|errors| {
            trace.step("validate", started.elapsed(), format!("{} field errors", errors.len()));
            EarlyEnd::invalid(errors)
        })?;
        let entry = entry.ok_or_else(|| EarlyEnd::new(OutcomeStatus::Rejected, "unknown publisher"))?;
        let publisher = &entry.config;
        if publisher.status == CampaignStatus::Paused {
            return Err(EarlyEnd::new(OutcomeStatus::Rejected, "publisher paused"));
        }
        trace.mode = Some(publisher.selection);
        trace.step("validate", started.elapsed(), "");

        let (pii, redacted, vertical) = match &held {
            Held::Lead(valid) => {
                let pii = PiiGuard::for_lead(&valid.lead, valid.age);
                let redacted = redact(&entry.redactor, &valid.lead, now, &pii).await;
                (pii, redacted, &valid.lead.vertical)
            }
            Held::Ping(valid) => {
                let pii = PiiGuard::for_ping_request(&valid.request, &valid.pinged.zip3, valid.pinged.age);
                let redacted = redact_ping(&entry.redactor, &valid.request, now, &pii).await;
                (pii, redacted, &valid.request.vertical)
            }
        };
        let ping = redacted.inspect_err(|_| {
            trace.step("redact", started.elapsed(), "failed");
        })?;
        trace.step("redact", started.elapsed(), "");

        guard::check_ping(&pii, &ping, self.verticals.get(vertical)).inspect_err(|_| {
            trace.step("pii_guard", started.elapsed(), "refused");
        })?;
        trace.step("pii_guard", started.elapsed(), "");

        // A PII-free ping without hashes is checked for duplicates when its lead is posted.
        if let (true, Some(keys)) = (publisher.dedupe_window_days > 0, held.keys()) {
            dedupe::check(&*self.store, publisher, keys, now).await.inspect_err(|end| {
                let detail = if end.status == OutcomeStatus::Duplicate { "duplicate" } else { "failed" };
                trace.step("dedupe", started.elapsed(), detail);
            })?;
            trace.step("dedupe", started.elapsed(), "");
        }

        let mode = publisher.selection;
        let max_bid_cents = self.settings.max_bid_cents;
        let lead = LeadAt { mode, now, keys: held.keys(), origin: held.origin() };
        let pingable = pingable::campaigns(&self.campaigns, &self.buyers, &*self.store, max_bid_cents, lead).await;
        trace.campaigns = pingable.traces;
        let eligible = format!("{} of {} eligible", pingable.jobs.len(), self.campaigns.len());
        trace.step("eligibility", started.elapsed(), eligible);

        let max_buyers = select::max_buyers(mode, publisher.shared_max_buyers, options.shared_max_buyers);
        let deadline = started + Duration::from_millis(publisher.ping_deadline_ms);
        let fan_out = FanOut {
            http: &self.http,
            ping: Arc::new(ping),
            ping_id,
            now_unix_ms: now,
            answer_by: deadline.checked_sub(self.settings.overhead_reserve).unwrap_or(deadline).max(Instant::now()),
            floor_cents: publisher.floor_cents,
            sale: select::sale_kind(max_buyers),
        };
        let answers = fan_out.run(pingable.jobs).await;
        let candidates = answers::into_candidates(answers, &mut trace.campaigns, publisher.default_bid_ttl_ms, now);
        trace.step("ping", started.elapsed(), format!("{} bids", candidates.len()));

        let ranked = select::rank(mode, candidates);
        trace.step("select", started.elapsed(), format!("{mode:?}, up to {max_buyers} buyers"));
        Ok(Bids { publisher, held, ranked, max_buyers })
    }

    /// The post phase and the outcome. Holds the post did not take are given back.
    async fn sell(
        &self,
        ping_id: &str,
        valid: &ValidLead,
        publisher: &Publisher,
        Posting { ranked, holds, max_buyers }: Posting<'_>,
        (mut trace, started): (Trace, Instant),
    ) -> Outcome {
        let post_started = Instant::now();
        // Built only if a buyer that saw the lead answers text (most sales never need it).
        let guard = std::sync::OnceLock::new();
        let taken = std::sync::Mutex::new(HashSet::new());
        let job = PostJob {
            ping_id,
            lead: &valid.lead,
            age: valid.age,
            keys: &valid.keys,
            publisher,
            ranked,
            holds,
            taken: &taken,
            max_buyers,
            guard: &guard,
        };
        let poster = Poster { campaigns: &self.campaigns, store: &*self.store, clock: &self.clock, http: &self.http };
        let (sales, posts) = poster.run(job).await;
        if !holds.is_empty() {
            let taken = taken.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
            let left: Vec<Reservation> = holds.iter().filter(|h| !taken.contains(&h.id)).cloned().collect();
            quote::release(&*self.store, &left).await;
        }
        trace.step("post", post_started.elapsed(), format!("{} posts, {} sold", posts.len(), sales.len()));
        trace.posts = posts;
        let (status, reason) = if !sales.is_empty() {
            (OutcomeStatus::Sold, None)
        } else if ranked.is_empty() {
            (OutcomeStatus::Unsold, Some(no_sale_reason(&trace)))
        } else {
            (
                OutcomeStatus::Unsold,
                Some(format!("no buyer took the lead: {} posts tried, none accepted", trace.posts.len())),
            )
        };
        trace.total_us = micros(started.elapsed());
        Outcome { ping_id: ping_id.to_owned(), status, reason, sales, field_errors: vec![], pii_leaks: vec![], trace }
    }

    /// When no pinged campaign answered in time (every answer a timeout), the lead went unsold because no answer could
    /// arrive within the deadline — an exchange too busy to run its auction, or a network down — not because the
    /// buyers passed: its duplicate record is forgotten so the publisher may send it again.
    async fn forget_if_nobody_answered(&self, publisher: &Publisher, held: &Held, trace: &Trace) {
        let Some(keys) = held.keys() else { return };
        if !nobody_answered_in_time(trace) {
            return;
        }
        if let Err(error) = self.store.forget_lead(publisher.dedupe_pool(), keys, trace.started_at_unix_ms).await {
            tracing::error!(publisher = %publisher.id, %error, "could not forget a lead nobody answered in time");
        }
    }

    /// Clears a claimed ping's record once its post is over.
    async fn finish_post(&self, ping_id: &str) {
        if let Err(error) = self.store.finish_post(ping_id).await {
            // The ping stays claimed; the next start settles it from its sale (or reopens it when there is none).
            tracing::error!(%error, ping_id, "could not finish a two-step post");
        }
    }
}

/// Why nothing could be posted, from the ping-phase trace.
fn no_sale_reason(trace: &Trace) -> String {
    let pinged: Vec<&Answer> = trace.campaigns.iter().filter_map(|c| c.answer.as_ref()).collect();
    if pinged.is_empty() {
        return format!("no eligible campaign ({} configured)", trace.campaigns.len());
    }
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for answer in pinged.iter() {
        match counts.iter_mut().find(|(kind, _)| *kind == answer.kind()) {
            Some((_, n)) => *n += 1,
            None => counts.push((answer.kind(), 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    format!("no usable bid from {} pinged campaigns: {}", pinged.len(), summary.join(", "))
}

//! The exchange: runs a lead through validate → redact → PII guard → duplicate check → eligibility → ping fan-out → select →
//! post with fallback → outcome, one-shot ([`Exchange::run_lead`]) or in two steps ([`Exchange::ping`] then
//! [`Exchange::post`]). Time, ids, storage and the HTTP client are injected through [`ExchangeParts`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Serialize;
use tokio::time::Instant;

use super::config::{Buyer, Campaign, CampaignStatus, CampaignTarget, Delivery, ExchangeConfig, Publisher};
use super::eligibility::{self, EligibilityInput, Ineligible, cap_windows};
use super::fanout::{FanOut, PingJob};
use super::http_buyer::{HttpBuyerClient, HttpEndpoints};
use super::ids::IdSource;
use super::pii::{PiiGuard, PiiLeak, Scan};
use super::post::PostJob;
use super::select::{self, Candidate};
use super::store::{AuctionStore, PingClaim, PingRecord, StoreError};
use super::trace::{Answer, CampaignTrace, Outcome, OutcomeStatus, Sale, TargetKind, Trace, micros};
use super::validate::{FieldError, ValidLead, validate_lead};
use super::vertical::{VerticalError, Verticals};
use pingpost_model::clock::SharedClock;
use pingpost_model::{Lead, Ping};
use pingpost_runtime::{BuyerPlugin, LoadError, Plugin, PluginSlot, RedactorPlugin, Runtime, World};

/// One day in milliseconds.
pub(super) const DAY_MS: i64 = 86_400_000;

/// The longest ping deadline a publisher may set, and the longest ping timeout an HTTP buyer may ask for, in ms.
pub const MAX_PING_DEADLINE_MS: u64 = 30_000;

/// The longest post phase (fallbacks included) a publisher may set, in ms.
pub const MAX_POST_DEADLINE_MS: u64 = 120_000;

/// Why `url` cannot be a buyer's endpoint: only `http` and `https` URLs with a host.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("must be an http or https URL, not {}:", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    Ok(())
}

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

/// Why an exchange could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{kind} id {id:?} is defined twice")]
    DuplicateId { kind: &'static str, id: String },
    #[error("campaign {campaign:?} names unknown buyer {buyer:?}")]
    UnknownBuyer { campaign: String, buyer: String },
    #[error("{used_by} names plugin {reference:?}, which was not supplied to the builder")]
    UnknownPlugin { reference: String, used_by: String },
    #[error("{used_by} needs a {expected:?} plugin but {reference:?} is a {found:?} plugin")]
    WrongWorld { reference: String, used_by: String, expected: World, found: World },
    #[error("{used_by}: {detail}")]
    Invalid { used_by: String, detail: String },
    /// One field of a publisher or campaign is out of its range.
    #[error("{used_by}: {field} {detail}")]
    Field { used_by: String, field: &'static str, detail: String },
    /// A vertical's definition is refused.
    #[error(transparent)]
    Vertical(#[from] VerticalError),
    #[error("{used_by}: the plugin could not be set up: {source}")]
    Plugin {
        used_by: String,
        #[source]
        source: LoadError,
    },
}

/// A publisher with its redactor.
pub(super) struct PublisherEntry {
    pub config: Publisher,
    pub redactor: Arc<PluginSlot<RedactorPlugin>>,
}

/// How a campaign is reached.
pub(super) enum Runner {
    Wasm { slot: Arc<PluginSlot<BuyerPlugin>>, delivery: Delivery },
    Http(HttpEndpoints),
}

/// A campaign ready to be pinged.
pub(super) struct CampaignEntry {
    pub config: Campaign,
    pub time_zone: Tz,
    pub runner: Runner,
}

/// Builds an [`Exchange`] from an [`ExchangeConfig`] and the plugins it names. The exchange file loader parses the
/// file, loads each of [`ExchangeConfig::plugin_refs`] with the runtime, hands them over with
/// [`ExchangeBuilder::plugin`], and calls [`ExchangeBuilder::build`].
pub struct ExchangeBuilder {
    config: ExchangeConfig,
    plugins: HashMap<String, Arc<Plugin>>,
}

impl ExchangeBuilder {
    /// A builder for `config`.
    pub fn new(config: ExchangeConfig) -> Self {
        ExchangeBuilder { config, plugins: HashMap::new() }
    }

    /// Supplies the loaded plugin a config reference names.
    pub fn plugin(mut self, reference: impl Into<String>, plugin: Arc<Plugin>) -> Self {
        self.plugins.insert(reference.into(), plugin);
        self
    }

    /// Checks the config and sets up every redactor and buyer on `runtime`.
    pub fn build(self, runtime: &Runtime, parts: ExchangeParts) -> Result<Exchange, BuildError> {
        let find = |reference: &str, used_by: &str, expected: World| -> Result<Arc<Plugin>, BuildError> {
            let plugin = self.plugins.get(reference).ok_or_else(|| BuildError::UnknownPlugin {
                reference: reference.to_owned(),
                used_by: used_by.to_owned(),
            })?;
            if plugin.world() != expected {
                return Err(BuildError::WrongWorld {
                    reference: reference.to_owned(),
                    used_by: used_by.to_owned(),
                    expected,
                    found: plugin.world(),
                });
            }
            Ok(plugin.clone())
        };

        let verticals = Verticals::new(&self.config.verticals)?;
        let mut publishers = HashMap::new();
        for publisher in self.config.publishers {
            let used_by = format!("publisher {:?}", publisher.id);
            let plugin = find(&publisher.redactor, &used_by, World::Redactor)?;
            let redactor = runtime
                .redactor(plugin, publisher.id.clone(), publisher.redactor_config.clone())
                .map_err(|source| BuildError::Plugin { used_by: used_by.clone(), source })?;
            if !(1..=MAX_PING_DEADLINE_MS).contains(&publisher.ping_deadline_ms) {
                let detail = format!("must be 1 to {MAX_PING_DEADLINE_MS} ms");
                return Err(BuildError::Field { used_by, field: "ping_deadline_ms", detail });
            }
            if !(1..=MAX_POST_DEADLINE_MS).contains(&publisher.post_deadline_ms) {
                let detail = format!("must be 1 to {MAX_POST_DEADLINE_MS} ms");
                return Err(BuildError::Field { used_by, field: "post_deadline_ms", detail });
            }
            if publisher.margin_bps > 10_000 {
                return Err(BuildError::Invalid { used_by, detail: "margin_bps must be at most 10000 (100 %)".into() });
            }
            let id = publisher.id.clone();
            let entry = PublisherEntry { config: publisher, redactor: Arc::new(PluginSlot::new(redactor)) };
            if publishers.insert(id.clone(), entry).is_some() {
                return Err(BuildError::DuplicateId { kind: "publisher", id });
            }
        }

        let mut buyers = HashMap::new();
        for buyer in self.config.buyers {
            if let Some(previous) = buyers.insert(buyer.id.clone(), buyer) {
                return Err(BuildError::DuplicateId { kind: "buyer", id: previous.id });
            }
        }

        let mut campaigns = Vec::new();
        let mut campaign_index = HashMap::new();
        for campaign in self.config.campaigns {
            let used_by = format!("campaign {:?}", campaign.id);
            let buyer = buyers.get(&campaign.buyer_id).ok_or_else(|| BuildError::UnknownBuyer {
                campaign: campaign.id.clone(),
                buyer: campaign.buyer_id.clone(),
            })?;
            let schedule = &campaign.schedule;
            if schedule.from_hour > 23 || schedule.to_hour > 24 || schedule.to_hour == 0 {
                return Err(BuildError::Invalid {
                    used_by,
                    detail: "schedule hours: from_hour 0–23, to_hour 1–24".into(),
                });
            }
            let field_error =
                |field: &'static str, detail: String| BuildError::Field { used_by: used_by.clone(), field, detail };
            match &campaign.target {
                CampaignTarget::Wasm { delivery: Delivery::Webhook { url }, .. } => {
                    check_url(url).map_err(|detail| field_error("target.delivery.url", detail))?;
                }
                CampaignTarget::Wasm { delivery: Delivery::Pickup, .. } => {}
                CampaignTarget::Http(endpoints) => {
                    check_url(&endpoints.ping_url).map_err(|detail| field_error("target.ping_url", detail))?;
                    check_url(&endpoints.post_url).map_err(|detail| field_error("target.post_url", detail))?;
                    if !(1..=MAX_PING_DEADLINE_MS).contains(&endpoints.timeout_ms) {
                        let detail = format!("must be 1 to {MAX_PING_DEADLINE_MS} ms (the longest ping deadline)");
                        return Err(field_error("target.timeout_ms", detail));
                    }
                }
            }
            let runner = match &campaign.target {
                CampaignTarget::Wasm { plugin, config, delivery } => {
                    let plugin = find(plugin, &used_by, World::Buyer)?;
                    let buyer_plugin = runtime
                        .buyer(plugin, campaign.id.clone(), CampaignTarget::plugin_config(config))
                        .map_err(|source| BuildError::Plugin { used_by: used_by.clone(), source })?;
                    Runner::Wasm { slot: Arc::new(PluginSlot::new(buyer_plugin)), delivery: delivery.clone() }
                }
                CampaignTarget::Http(endpoints) => Runner::Http(endpoints.clone()),
            };
            let time_zone = buyer.time_zone;
            if campaign_index.insert(campaign.id.clone(), campaigns.len()).is_some() {
                return Err(BuildError::DuplicateId { kind: "campaign", id: campaign.id });
            }
            campaigns.push(Arc::new(CampaignEntry { config: campaign, time_zone, runner }));
        }

        Ok(Exchange {
            verticals,
            publishers,
            buyers,
            campaigns,
            campaign_index,
            clock: parts.clock,
            ids: parts.ids,
            store: parts.store,
            http: parts.http,
            settings: parts.settings,
        })
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The running exchange: configuration, plugins and injected parts. Cheap to share behind an `Arc`; every entry
/// point takes `&self` and may run concurrently with others.
pub struct Exchange {
    pub(super) verticals: Verticals,
    pub(super) publishers: HashMap<String, PublisherEntry>,
    pub(super) buyers: HashMap<String, Buyer>,
    pub(super) campaigns: Vec<Arc<CampaignEntry>>,
    pub(super) campaign_index: HashMap<String, usize>,
    pub(super) clock: SharedClock,
    pub(super) ids: Arc<dyn IdSource>,
    pub(super) store: Arc<dyn AuctionStore>,
    pub(super) http: HttpBuyerClient,
    pub(super) settings: EngineSettings,
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

/// Everything the bid phase produced for the post phase.
struct BidPhase {
    ping_id: String,
    valid: ValidLead,
    ranked: Vec<Candidate>,
    max_buyers: u32,
    trace: Trace,
    started: Instant,
}

/// Whether campaigns were pinged and every answer is a timeout.
fn nobody_answered_in_time(trace: &Trace) -> bool {
    let mut answers = trace.campaigns.iter().filter_map(|c| c.answer.as_ref()).peekable();
    answers.peek().is_some() && answers.all(|answer| matches!(answer, Answer::Timeout))
}

/// An auction that ended before posting.
struct Early {
    status: OutcomeStatus,
    reason: String,
    field_errors: Vec<FieldError>,
    pii_leaks: Vec<PiiLeak>,
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
        match &self.campaign_entry(campaign_id)?.runner {
            Runner::Wasm { slot, .. } => Some(slot.clone()),
            Runner::Http(_) => None,
        }
    }

    /// The redactor slot of a publisher, for hot swap and rollback.
    pub fn redactor_slot(&self, publisher_id: &str) -> Option<Arc<PluginSlot<RedactorPlugin>>> {
        self.publishers.get(publisher_id).map(|p| p.redactor.clone())
    }

    pub(super) fn campaign_entry(&self, campaign_id: &str) -> Option<Arc<CampaignEntry>> {
        self.campaign_index.get(campaign_id).and_then(|i| self.campaigns.get(*i)).cloned()
    }

    /// When no pinged campaign answered in time (every answer a timeout), the lead went unsold because no answer could
    /// arrive within the deadline — an exchange too busy to run its auction, or a network down — not because the
    /// buyers passed: its duplicate record is forgotten so the publisher may send it again.
    async fn forget_if_nobody_answered(&self, valid: &ValidLead, trace: &Trace) {
        if !nobody_answered_in_time(trace) {
            return;
        }
        let publisher_id = &valid.lead.publisher_id;
        if let Err(error) = self.store.forget_lead(publisher_id, &valid.keys, trace.started_at_unix_ms).await {
            tracing::error!(publisher = %publisher_id, %error, "could not forget a lead nobody answered in time");
        }
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
        let phase = match self.bid_phase(&lead, options).await {
            Ok(phase) => phase,
            Err((ping_id, early, trace)) => return early_outcome(ping_id, early, trace),
        };
        let BidPhase { ping_id, valid, ranked, max_buyers, trace, started } = phase;
        if ranked.is_empty() {
            self.forget_if_nobody_answered(&valid, &trace).await;
        }
        let Some(publisher) = self.publishers.get(&valid.lead.publisher_id) else {
            let early = Early {
                status: OutcomeStatus::Error,
                reason: "publisher vanished".into(),
                field_errors: vec![],
                pii_leaks: vec![],
            };
            return early_outcome(ping_id, early, trace);
        };
        self.sell(&ping_id, &valid, &publisher.config, &ranked, max_buyers, (trace, started)).await
    }

    /// Two-step, first half: runs the auction up to selection and keeps the best bids for a later [`Exchange::post`].
    pub async fn ping(&self, lead: Lead) -> PingOutcome {
        self.ping_with(lead, LeadOptions::default()).await
    }

    /// [`Exchange::ping`] with per-lead options.
    pub async fn ping_with(&self, lead: Lead, options: LeadOptions) -> PingOutcome {
        let phase = match self.bid_phase(&lead, options).await {
            Ok(phase) => phase,
            Err((ping_id, early, trace)) => {
                let status = match early.status {
                    OutcomeStatus::Duplicate => PingStatus::Duplicate,
                    OutcomeStatus::Rejected => PingStatus::Rejected,
                    OutcomeStatus::Unsold | OutcomeStatus::Sold => PingStatus::NoBid,
                    OutcomeStatus::Error => PingStatus::Error,
                };
                return PingOutcome {
                    ping_id,
                    status,
                    best_bid_cents: None,
                    payout_cents: None,
                    expires_at_unix_ms: None,
                    reason: Some(early.reason),
                    field_errors: early.field_errors,
                    pii_leaks: early.pii_leaks,
                    trace,
                };
            }
        };
        let BidPhase { ping_id, valid, ranked, max_buyers, mut trace, started } = phase;
        let margin_bps = self.publishers.get(&valid.lead.publisher_id).map_or(0, |p| p.config.margin_bps);
        let best = ranked.first().cloned();
        let mut outcome = PingOutcome {
            ping_id: ping_id.clone(),
            status: PingStatus::NoBid,
            best_bid_cents: None,
            payout_cents: None,
            expires_at_unix_ms: None,
            reason: None,
            field_errors: vec![],
            pii_leaks: vec![],
            trace: Trace::default(),
        };
        match best {
            None => {
                self.forget_if_nobody_answered(&valid, &trace).await;
                outcome.reason = Some(no_sale_reason(&trace));
            }
            Some(best) => {
                let record = PingRecord {
                    ping_id: ping_id.clone(),
                    publisher_id: valid.lead.publisher_id.clone(),
                    lead: valid.lead,
                    age: valid.age,
                    keys: valid.keys,
                    ranked,
                    max_buyers,
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
        let started = Instant::now();
        let now = self.clock.now_unix_ms();
        let record = match self.store.claim_ping(ping_id, now).await? {
            PingClaim::Claimed(record) => *record,
            PingClaim::Unknown => return Err(PostError::UnknownPingId(ping_id.to_owned())),
            PingClaim::Expired { expired_at_unix_ms } => {
                return Err(PostError::Expired { ping_id: ping_id.to_owned(), expired_at_unix_ms });
            }
            PingClaim::AlreadyPosted => return Err(PostError::AlreadyPosted(ping_id.to_owned())),
        };
        let Some(publisher) = self.publishers.get(&record.publisher_id) else {
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
        let valid = ValidLead { lead: record.lead, age: record.age, keys: record.keys };
        let outcome =
            self.sell(ping_id, &valid, &publisher.config, &record.ranked, record.max_buyers, (trace, started)).await;
        self.finish_post(ping_id).await;
        Ok(outcome)
    }

    /// Clears a claimed ping's record once its post is over.
    async fn finish_post(&self, ping_id: &str) {
        if let Err(error) = self.store.finish_post(ping_id).await {
            // The ping stays claimed; the next start settles it from its sale (or reopens it when there is none).
            tracing::error!(%error, ping_id, "could not finish a two-step post");
        }
    }

    /// The post phase and the outcome.
    async fn sell(
        &self,
        ping_id: &str,
        valid: &ValidLead,
        publisher: &Publisher,
        ranked: &[Candidate],
        max_buyers: u32,
        (mut trace, started): (Trace, Instant),
    ) -> Outcome {
        let post_started = Instant::now();
        // Built only if a buyer that saw the lead answers text (most sales never need it).
        let guard = std::sync::OnceLock::new();
        let job = PostJob {
            ping_id,
            lead: &valid.lead,
            age: valid.age,
            keys: &valid.keys,
            publisher,
            ranked,
            max_buyers,
            guard: &guard,
        };
        let (sales, posts) = self.post_phase(job).await;
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

    /// Validate, dedupe, redact, guard, check eligibility, fan out and rank.
    async fn bid_phase(&self, lead: &Lead, options: LeadOptions) -> Result<BidPhase, (String, Early, Trace)> {
        let started = Instant::now();
        let now = self.clock.now_unix_ms();
        let ping_id = options.lead_id.clone().unwrap_or_else(|| self.ids.next_id(now));
        let mut trace = Trace { publisher_id: lead.publisher_id.clone(), started_at_unix_ms: now, ..Trace::default() };
        macro_rules! stop {
            ($status:expr, $reason:expr) => {
                stop!($status, $reason, vec![], vec![])
            };
            ($status:expr, $reason:expr, $fields:expr, $leaks:expr) => {{
                trace.total_us = micros(started.elapsed());
                let early = Early { status: $status, reason: $reason, field_errors: $fields, pii_leaks: $leaks };
                return Err((ping_id, early, trace));
            }};
        }

        let publisher = self.publishers.get(&lead.publisher_id);
        let valid = match validate_lead(lead, now, publisher.is_some(), &self.verticals) {
            Ok(valid) => valid,
            Err(errors) => {
                trace.step("validate", started.elapsed(), format!("{} field errors", errors.len()));
                let reason =
                    format!("invalid lead: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                stop!(OutcomeStatus::Rejected, reason, errors, vec![]);
            }
        };
        let Some(publisher) = publisher else {
            stop!(OutcomeStatus::Rejected, "unknown publisher".to_owned());
        };
        let publisher_config = &publisher.config;
        if publisher_config.status == CampaignStatus::Paused {
            stop!(OutcomeStatus::Rejected, "publisher paused".to_owned());
        }
        trace.mode = Some(publisher_config.selection);
        trace.step("validate", started.elapsed(), "");
        let deadline = started + Duration::from_millis(publisher_config.ping_deadline_ms);

        let guard = PiiGuard::for_lead(&valid.lead, valid.age);
        let ping = match self.redact(publisher, &valid.lead, now).await {
            Ok(ping) => ping,
            Err(reason) => {
                // The redactor saw the whole lead: what it says is kept only when it holds none of it.
                let reason = super::text::stored(&guard, reason);
                trace.step("redact", started.elapsed(), "failed");
                stop!(OutcomeStatus::Error, reason);
            }
        };
        trace.step("redact", started.elapsed(), "");
        // The lead passed validation, so its vertical is one of the exchange's; the ping's is checked to be the same.
        let schema = self.verticals.get(&valid.lead.vertical);
        let mut leaks = schema.map(|rules| rules.check_ping_extras(&ping.extra)).unwrap_or_default();
        if leaks.is_empty() {
            leaks = guard.check_where(&ping, |key| schema.map_or(Scan::KeyAndValue, |rules| rules.scan(key)));
        }
        if !leaks.is_empty() {
            trace.step("pii_guard", started.elapsed(), "refused");
            let named: Vec<String> = leaks.iter().map(ToString::to_string).collect();
            let reason = format!("PII guard refused to ping: {}", named.join("; "));
            stop!(OutcomeStatus::Error, reason, vec![], leaks);
        }
        trace.step("pii_guard", started.elapsed(), "");

        // Checked (and recorded) only once the exchange is able to auction the lead, so a lead refused for the
        // exchange's own reasons (redactor failure, PII guard) can be sent again.
        if publisher_config.dedupe_window_days > 0 {
            let since = now - i64::from(publisher_config.dedupe_window_days) * DAY_MS;
            match self.store.check_and_record_lead(&publisher_config.id, &valid.keys, since, now).await {
                Ok(None) => trace.step("dedupe", started.elapsed(), ""),
                Ok(Some(seen_at)) => {
                    trace.step("dedupe", started.elapsed(), "duplicate");
                    let seen = chrono::DateTime::from_timestamp_millis(seen_at)
                        .map_or(seen_at.to_string(), |t| t.to_rfc3339());
                    let reason = format!(
                        "duplicate: this consumer's phone or email was seen from publisher {:?} at {seen}, within its {}-day window",
                        publisher_config.id, publisher_config.dedupe_window_days
                    );
                    stop!(OutcomeStatus::Duplicate, reason);
                }
                Err(error) => stop!(OutcomeStatus::Error, format!("dedupe look-up failed: {error}")),
            }
        }

        let mode = publisher_config.selection;
        let mut jobs = Vec::new();
        for entry in &self.campaigns {
            let trace_index = trace.campaigns.len();
            trace.campaigns.push(CampaignTrace {
                campaign_id: entry.config.id.clone(),
                buyer_id: entry.config.buyer_id.clone(),
                kind: match entry.runner {
                    Runner::Wasm { .. } => TargetKind::Wasm,
                    Runner::Http(_) => TargetKind::Http,
                },
                tier: entry.config.tier,
                ineligible: None,
                answer: None,
                answer_us: None,
                plugin_wall_us: None,
                plugin_fuel: None,
                logs: vec![],
            });
            match self.eligibility(entry, mode, now, &valid).await {
                Ok(caps_left) => {
                    let max_bid_cents = entry.config.max_bid_cents.unwrap_or(self.settings.max_bid_cents);
                    jobs.push(PingJob { trace_index, entry: entry.clone(), caps_left, max_bid_cents })
                }
                Err(reason) => trace.campaigns[trace_index].ineligible = Some(reason),
            }
        }
        trace.step("eligibility", started.elapsed(), format!("{} of {} eligible", jobs.len(), self.campaigns.len()));

        let fan_out = FanOut {
            http: &self.http,
            ping: Arc::new(ping),
            ping_id: &ping_id,
            now_unix_ms: now,
            answer_by: deadline.checked_sub(self.settings.overhead_reserve).unwrap_or(deadline).max(Instant::now()),
            floor_cents: publisher_config.floor_cents,
        };
        let results = fan_out.run(jobs).await;
        let mut candidates = Vec::new();
        for result in results {
            let campaign = &mut trace.campaigns[result.trace_index];
            if let Answer::Bid { price_cents, buyer_ref, ttl_ms } = &result.answer {
                let ttl = ttl_ms.map_or(publisher_config.default_bid_ttl_ms, u64::from);
                candidates.push(Candidate {
                    campaign_id: campaign.campaign_id.clone(),
                    buyer_id: campaign.buyer_id.clone(),
                    tier: campaign.tier,
                    price_cents: *price_cents,
                    answer_order: result.order,
                    buyer_ref: buyer_ref.clone(),
                    expires_at_unix_ms: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
                });
            }
            campaign.answer = Some(result.answer);
            campaign.answer_us = Some(result.answer_us);
            campaign.plugin_wall_us = result.plugin_wall_us;
            campaign.plugin_fuel = result.plugin_fuel;
            campaign.logs = result.logs;
        }
        trace.step("ping", started.elapsed(), format!("{} bids", candidates.len()));
        let ranked = select::rank(mode, candidates);
        let max_buyers = select::max_buyers(mode, publisher_config.shared_max_buyers, options.shared_max_buyers);
        trace.step("select", started.elapsed(), format!("{mode:?}, up to {max_buyers} buyers"));
        Ok(BidPhase { ping_id, valid, ranked, max_buyers, trace, started })
    }

    /// Runs the publisher's redactor: inline when its record earned it (a warm call costs microseconds, a hand-off
    /// tens of them), else on the blocking pool so a new, slow or failing redactor cannot stall a worker thread.
    async fn redact(&self, publisher: &PublisherEntry, lead: &Lead, now: i64) -> Result<Ping, String> {
        let redactor = publisher.redactor.current();
        let outcome = if redactor.inline_trusted() {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| redactor.redact(lead, now)))
                .map_err(|_| "the call panicked".to_string())
        } else {
            let lead = lead.clone();
            tokio::task::spawn_blocking(move || redactor.redact(&lead, now)).await.map_err(|e| e.to_string())
        };
        match outcome {
            Err(join_error) => Err(format!("the redactor panicked: {join_error}")),
            Ok(Err(error)) => Err(format!("the redactor failed: {error}")),
            Ok(Ok(report)) => report.value.map_err(|refusal| format!("the redactor refused the lead: {refusal}")),
        }
    }

    /// Whether a campaign may be pinged for this lead now.
    async fn eligibility(
        &self,
        entry: &CampaignEntry,
        mode: super::config::SelectionMode,
        now: i64,
        valid: &ValidLead,
    ) -> Result<pingpost_model::CapsLeft, Ineligible> {
        let campaign = &entry.config;
        let unavailable = |error: StoreError| Ineligible::Unavailable { detail: error.to_string() };
        let usage = if campaign.caps.is_unlimited() {
            Default::default()
        } else {
            self.store.usage(&campaign.id, &cap_windows(entry.time_zone, now)).await.map_err(unavailable)?
        };
        let suppressed = campaign.suppression_days > 0
            && self
                .store
                .bought_since(&campaign.buyer_id, &valid.keys, now - i64::from(campaign.suppression_days) * DAY_MS)
                .await
                .map_err(unavailable)?;
        eligibility::check(
            campaign,
            EligibilityInput {
                mode,
                time_zone: entry.time_zone,
                now_unix_ms: now,
                usage: &usage,
                suppressed,
                buyer_paused: self.buyers.get(&campaign.buyer_id).is_some_and(|b| b.status == CampaignStatus::Paused),
            },
        )
    }
}

fn early_outcome(ping_id: String, early: Early, trace: Trace) -> Outcome {
    Outcome {
        ping_id,
        status: early.status,
        reason: Some(early.reason),
        sales: vec![],
        field_errors: early.field_errors,
        pii_leaks: early.pii_leaks,
        trace,
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

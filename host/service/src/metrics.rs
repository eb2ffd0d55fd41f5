//! Prometheus metrics of the exchange: leads by outcome, auction and request latency, every campaign's answers and
//! sales, plugin failures and fuel, cap usage and outbox deliveries, rendered for `GET /metrics`.
//!
//! Every label value is either a closed set (an enum below, so an unknown kind can never reach a scrape) or comes
//! from configuration (campaign ids, route templates): never a lead id, never text a publisher or buyer sent. A
//! plugin error kind the runtime adds later is counted as `other` until it is given a label here.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use pingpost_engine::config::Caps;
use pingpost_engine::engine::{PingOutcome, PingStatus};
use pingpost_engine::store::{CapKind, Usage};
use pingpost_engine::trace::{Answer, CampaignTrace, ErrorKind, Outcome, OutcomeStatus, TargetKind, Trace};
use pingpost_sqlite::WriterStats;

/// The content type of [`Metrics::render`]'s text (OpenMetrics, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route label of a request that matched no route, so unknown paths cannot add label values.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Every metric's name starts with this.
const PREFIX: &str = "pingpost";

/// Latency buckets in seconds, 50 µs to 1 s: a warm Wasm auction takes well under a millisecond, an HTTP buyer's
/// ping deadline is around 150 ms, a post may take a second.
const LATENCY_BUCKETS: [f64; 14] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The publisher endpoint an auction ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/leads`: one-shot ping and post.
    Leads,
    /// `POST /v1/ping`: the first half of a two-step sale.
    Ping,
    /// `POST /v1/post`: the second half.
    Post,
}

impl Endpoint {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How an outbox delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryResult {
    /// The buyer's webhook took the lead.
    Delivered,
    /// The attempt failed; another one is scheduled.
    Retry,
    /// The last attempt failed; the delivery is kept for operators.
    GaveUp,
}

impl DeliveryResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a lead request ended: an auction's [`OutcomeStatus`], or for a two-step ping whether a bid stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum LeadResult {
    Sold,
    Unsold,
    Duplicate,
    Rejected,
    Error,
    Bid,
    NoBid,
}

impl LeadResult {
    fn as_str(self) -> &'static str {
        self.into()
    }

    fn of_outcome(status: OutcomeStatus) -> Self {
        match status {
            OutcomeStatus::Sold => LeadResult::Sold,
            OutcomeStatus::Unsold => LeadResult::Unsold,
            OutcomeStatus::Duplicate => LeadResult::Duplicate,
            OutcomeStatus::Rejected => LeadResult::Rejected,
            OutcomeStatus::Error => LeadResult::Error,
        }
    }

    fn of_ping(status: PingStatus) -> Self {
        match status {
            PingStatus::Bid => LeadResult::Bid,
            PingStatus::NoBid => LeadResult::NoBid,
            PingStatus::Duplicate => LeadResult::Duplicate,
            PingStatus::Rejected => LeadResult::Rejected,
            PingStatus::Error => LeadResult::Error,
        }
    }
}

/// What one campaign did in one auction's ping phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum CampaignAnswer {
    Bid,
    BelowFloor,
    CapWouldExceed,
    FundsWouldExceed,
    NoBid,
    Reject,
    Timeout,
    Suspended,
    Error,
    /// Not pinged: paused, out of schedule, capped, suppressed, exclusive-only, out of funds or unavailable.
    Ineligible,
}

impl CampaignAnswer {
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// The campaign's answer, `None` for a campaign the trace holds no answer for.
    fn of(campaign: &CampaignTrace) -> Option<Self> {
        if campaign.ineligible.is_some() {
            return Some(CampaignAnswer::Ineligible);
        }
        Some(match campaign.answer.as_ref()? {
            Answer::Bid { .. } => CampaignAnswer::Bid,
            Answer::BelowFloor { .. } => CampaignAnswer::BelowFloor,
            Answer::CapWouldExceed { .. } => CampaignAnswer::CapWouldExceed,
            Answer::FundsWouldExceed { .. } => CampaignAnswer::FundsWouldExceed,
            Answer::NoBid => CampaignAnswer::NoBid,
            Answer::Reject { .. } => CampaignAnswer::Reject,
            Answer::Timeout => CampaignAnswer::Timeout,
            Answer::Suspended { .. } => CampaignAnswer::Suspended,
            Answer::Error { .. } => CampaignAnswer::Error,
        })
    }
}

/// Why a Wasm campaign's plugin produced no answer: the runtime's failures by name, plus `breaker_open` (a
/// suspended plugin), `panic` (the host side of the call panicked) and `other` (an answer the exchange refused, an
/// invalid input or output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum PluginFailure {
    Timeout,
    OutOfFuel,
    MemoryLimit,
    StackOverflow,
    Trap,
    OutputTooLarge,
    Instantiate,
    Config,
    BreakerOpen,
    Panic,
    Other,
}

impl PluginFailure {
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// The failure an error answer's kind is.
    fn of_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Timeout => PluginFailure::Timeout,
            ErrorKind::OutOfFuel => PluginFailure::OutOfFuel,
            ErrorKind::MemoryLimit => PluginFailure::MemoryLimit,
            ErrorKind::StackOverflow => PluginFailure::StackOverflow,
            ErrorKind::Trap => PluginFailure::Trap,
            ErrorKind::OutputTooLarge => PluginFailure::OutputTooLarge,
            ErrorKind::Instantiate => PluginFailure::Instantiate,
            ErrorKind::Config => PluginFailure::Config,
            ErrorKind::Suspended => PluginFailure::BreakerOpen,
            ErrorKind::Panic => PluginFailure::Panic,
            ErrorKind::InvalidOutput
            | ErrorKind::InvalidInput
            | ErrorKind::Unsupported
            | ErrorKind::BidTooHigh
            | ErrorKind::InvalidAnswer
            | ErrorKind::Internal
            | ErrorKind::Status
            | ErrorKind::Malformed
            | ErrorKind::Transport => PluginFailure::Other,
        }
    }

    /// The failure a Wasm campaign's answer records, if it is one.
    fn of(answer: &Answer) -> Option<Self> {
        match answer {
            Answer::Timeout => Some(PluginFailure::Timeout),
            Answer::Suspended { .. } => Some(PluginFailure::BreakerOpen),
            Answer::Error { kind, .. } => Some(Self::of_kind(*kind)),
            Answer::Bid { .. }
            | Answer::BelowFloor { .. }
            | Answer::CapWouldExceed { .. }
            | Answer::FundsWouldExceed { .. }
            | Answer::NoBid
            | Answer::Reject { .. } => None,
        }
    }
}

/// Encodes a closed-set label as its `as_str` name.
macro_rules! label_value {
    ($($ty:ty),*) => {$(
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    )*};
}
label_value!(Endpoint, DeliveryResult, LeadResult, CampaignAnswer, PluginFailure);

/// A label value from configuration (a campaign id, a route template), escaped for the text format: the encoder
/// writes label values as they are, so a quote or a backslash in an id would otherwise break the scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Text(String);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        for ch in self.0.chars() {
            match ch {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                other => encoder.write_char(other)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LeadLabels {
    endpoint: Endpoint,
    outcome: LeadResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnswerLabels {
    campaign: Text,
    answer: CampaignAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CampaignLabels {
    campaign: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    campaign: Text,
    kind: PluginFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CapLabels {
    campaign: Text,
    cap: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Text,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    result: DeliveryResult,
}

type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The exchange's metrics: counters updated as auctions, requests and deliveries end, cap gauges read at scrape
/// time. Shared as `Arc<Metrics>`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    leads: Family<LeadLabels, Counter>,
    auction_duration: Latency<EndpointLabels>,
    answers: Family<AnswerLabels, Counter>,
    sales: Family<CampaignLabels, Counter>,
    spend: Family<CampaignLabels, Counter>,
    plugin_failures: Family<FailureLabels, Counter>,
    plugin_fuel: Family<CampaignLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Latency<RouteLabels>,
    deliveries: Family<DeliveryLabels, Counter>,
    store_write_batches: Gauge,
    store_writes: Gauge,
    store_largest_write_batch: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics; lead outcomes and delivery results start at zero so rates exist before the first event.
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::with_prefix(PREFIX),
            leads: Family::default(),
            auction_duration: Family::new_with_constructor(latency_histogram),
            answers: Family::default(),
            sales: Family::default(),
            spend: Family::default(),
            plugin_failures: Family::default(),
            plugin_fuel: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            deliveries: Family::default(),
            store_write_batches: Gauge::default(),
            store_writes: Gauge::default(),
            store_largest_write_batch: Gauge::default(),
        };
        let statuses = [
            OutcomeStatus::Sold,
            OutcomeStatus::Unsold,
            OutcomeStatus::Duplicate,
            OutcomeStatus::Rejected,
            OutcomeStatus::Error,
        ];
        let pings =
            [PingStatus::Bid, PingStatus::NoBid, PingStatus::Duplicate, PingStatus::Rejected, PingStatus::Error];
        let known = statuses
            .into_iter()
            .map(|s| (Endpoint::Leads, LeadResult::of_outcome(s)))
            .chain(pings.into_iter().map(|s| (Endpoint::Ping, LeadResult::of_ping(s))))
            .chain([(Endpoint::Post, LeadResult::Sold), (Endpoint::Post, LeadResult::Unsold)]);
        // Creating a series is enough: it starts at zero.
        for (endpoint, outcome) in known {
            let _ = metrics.leads.get_or_create(&LeadLabels { endpoint, outcome });
        }
        for result in [DeliveryResult::Delivered, DeliveryResult::Retry, DeliveryResult::GaveUp] {
            let _ = metrics.deliveries.get_or_create(&DeliveryLabels { result });
        }
        metrics.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register("leads", "Lead requests by publisher endpoint and outcome", self.leads.clone());
        r.register_with_unit(
            "auction_duration",
            "Wall time of an auction request by publisher endpoint",
            Unit::Seconds,
            self.auction_duration.clone(),
        );
        r.register(
            "campaign_answers",
            "Each campaign's answer to a ping, or ineligible when it was not pinged",
            self.answers.clone(),
        );
        r.register("campaign_sales", "Leads sold to each campaign", self.sales.clone());
        r.register("campaign_spend_cents", "What each campaign paid for its leads, in cents", self.spend.clone());
        r.register(
            "plugin_failures",
            "Wasm campaign calls that produced no answer, by kind (trap, limit, timeout, open breaker)",
            self.plugin_failures.clone(),
        );
        r.register(
            "plugin_fuel_consumed",
            "Fuel used by each Wasm campaign's bids (only when the runtime meters fuel)",
            self.plugin_fuel.clone(),
        );
        r.register("http_requests", "HTTP requests by route template and status", self.requests.clone());
        r.register_with_unit(
            "http_request_duration",
            "Wall time of an HTTP request by route template",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        r.register("outbox_deliveries", "Webhook delivery attempts by result", self.deliveries.clone());
        r.register(
            "store_write_batches",
            "Transactions the store's writer committed (or tried to) since start: group commits",
            self.store_write_batches.clone(),
        );
        r.register("store_writes", "Writes the store's writer ran since start", self.store_writes.clone());
        r.register(
            "store_largest_write_batch",
            "The most writes one of the store's transactions held since start",
            self.store_largest_write_batch.clone(),
        );
        self
    }

    /// Takes the store writer's counters, read at scrape time (writes / batches is the mean group-commit size).
    pub fn observe_writer(&self, stats: WriterStats) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.store_write_batches.set(gauge(stats.batches));
        self.store_writes.set(gauge(stats.jobs));
        self.store_largest_write_batch.set(gauge(stats.largest_batch));
    }

    /// Counts a finished auction of a one-shot lead ([`Endpoint::Leads`]) or a two-step post ([`Endpoint::Post`]):
    /// its outcome, its latency, every campaign's answer and every sale.
    pub fn observe_outcome(&self, endpoint: Endpoint, outcome: &Outcome, elapsed: Duration) {
        self.leads.get_or_create(&LeadLabels { endpoint, outcome: LeadResult::of_outcome(outcome.status) }).inc();
        self.auction_duration.get_or_create(&EndpointLabels { endpoint }).observe(elapsed.as_secs_f64());
        self.observe_trace(&outcome.trace);
        for sale in &outcome.sales {
            let labels = CampaignLabels { campaign: Text(sale.campaign_id.clone()) };
            self.sales.get_or_create(&labels).inc();
            self.spend.get_or_create(&labels).inc_by(u64::from(sale.price_cents));
        }
    }

    /// Counts a finished two-step ping: whether a bid stands, its latency and every campaign's answer.
    pub fn observe_ping(&self, ping: &PingOutcome, elapsed: Duration) {
        let endpoint = Endpoint::Ping;
        self.leads.get_or_create(&LeadLabels { endpoint, outcome: LeadResult::of_ping(ping.status) }).inc();
        self.auction_duration.get_or_create(&EndpointLabels { endpoint }).observe(elapsed.as_secs_f64());
        self.observe_trace(&ping.trace);
    }

    /// Counts one HTTP request. `route` must be the matched route template (axum's `MatchedPath`, e.g.
    /// `/v1/leads/{id}`), never the raw path, or [`UNMATCHED_ROUTE`].
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route: Text(route.to_owned()), status }).inc();
        self.request_duration
            .get_or_create(&RouteLabels { route: Text(route.to_owned()) })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one outbox delivery attempt.
    pub fn observe_delivery(&self, result: DeliveryResult) {
        self.deliveries.get_or_create(&DeliveryLabels { result }).inc();
    }

    /// Every metric in the text format ([`CONTENT_TYPE`]), with each campaign's cap usage and limits as they are
    /// now: `caps` yields (campaign id, its caps, its usage in the current windows). Only the caps a campaign sets
    /// are shown; spend caps are in cents.
    pub fn render<'a>(&self, caps: impl IntoIterator<Item = (&'a str, Caps, Usage)>) -> String {
        let mut scrape = Registry::with_prefix(PREFIX);
        let used = Family::<CapLabels, Gauge>::default();
        let limits = Family::<CapLabels, Gauge>::default();
        for (campaign, caps, usage) in caps {
            for (cap, limit, now) in cap_rows(&caps, &usage) {
                let labels = CapLabels { campaign: Text(campaign.to_owned()), cap: cap.as_str() };
                used.get_or_create(&labels).set(now);
                limits.get_or_create(&labels).set(limit);
            }
        }
        scrape.register("campaign_cap_used", "What each campaign bought in its current cap window", used);
        scrape.register("campaign_cap_limit", "Each campaign's cap for that window", limits);

        let mut text = String::new();
        // The encoder fails only when its writer does, and writing to a String cannot fail.
        encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &scrape))
            .and_then(|()| encode_eof(&mut text))
            .expect("encoding metrics into a String cannot fail");
        text
    }

    fn observe_trace(&self, trace: &Trace) {
        for campaign in &trace.campaigns {
            let Some(answer) = CampaignAnswer::of(campaign) else { continue };
            let id = Text(campaign.campaign_id.clone());
            if campaign.kind == TargetKind::Wasm
                && let Some(kind) = campaign.answer.as_ref().and_then(PluginFailure::of)
            {
                self.plugin_failures.get_or_create(&FailureLabels { campaign: id.clone(), kind }).inc();
            }
            if let Some(fuel) = campaign.plugin_fuel {
                self.plugin_fuel.get_or_create(&CampaignLabels { campaign: id.clone() }).inc_by(fuel);
            }
            self.answers.get_or_create(&AnswerLabels { campaign: id, answer }).inc();
        }
    }
}

/// (cap, limit, used) for every cap `caps` sets.
fn cap_rows(caps: &Caps, usage: &Usage) -> Vec<(CapKind, i64, i64)> {
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    [
        (CapKind::LeadsPerHour, caps.leads_per_hour.map(u64::from), u64::from(usage.leads_hour)),
        (CapKind::LeadsPerDay, caps.leads_per_day.map(u64::from), u64::from(usage.leads_day)),
        (CapKind::LeadsPerMonth, caps.leads_per_month.map(u64::from), u64::from(usage.leads_month)),
        (CapKind::SpendPerDay, caps.spend_per_day_cents, usage.spend_day_cents),
        (CapKind::SpendPerMonth, caps.spend_per_month_cents, usage.spend_month_cents),
    ]
    .into_iter()
    .filter_map(|(cap, limit, used)| limit.map(|limit| (cap, gauge(limit), gauge(used))))
    .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use pingpost_engine::{
        Buyer, Campaign, CampaignStatus, CampaignTarget, Delivery, EngineSettings, ExchangeBuilder, ExchangeConfig,
        ExchangeParts, Exclusivity, HttpBuyerClient, HttpEndpoints, MemoryStore, Publisher, STANDARD_REDACTOR, Sale,
        Schedule, SeededIds, SelectionMode,
    };
    use pingpost_model::clock::ManualClock;
    use pingpost_model::{Consent, Consumer, Lead};
    use pingpost_runtime::{CallError, Limits, Runtime, RuntimeConfig};

    /// 2026-11-25 15:00 UTC, a Wednesday.
    const NOW: i64 = 1_795_618_800_000;

    fn campaign(id: &str, target: CampaignTarget) -> Campaign {
        Campaign {
            id: id.into(),
            buyer_id: "buyer-1".into(),
            status: CampaignStatus::Active,
            tier: 1,
            exclusivity: Exclusivity::SharedAllowed,
            caps: Caps::default(),
            schedule: Schedule::default(),
            sources: Default::default(),
            paused_by_buyer: false,
            suppression_days: 0,
            max_bid_cents: None,
            target,
        }
    }

    fn wasm(plugin: &str, config: serde_json::Value) -> CampaignTarget {
        CampaignTarget::Wasm { plugin: plugin.into(), config, delivery: Delivery::Pickup }
    }

    fn lead() -> Lead {
        Lead {
            vertical: "health-insurance".into(),
            publisher_id: "pub-1".into(),
            consumer: Consumer {
                first_name: "Ada".into(),
                last_name: "Byron".into(),
                phone: "3055550142".into(),
                email: "ada@example.com".into(),
                state: "FL".into(),
                zip5: "33131".into(),
                date_of_birth: "1960-01-01".into(),
                ..Consumer::default()
            },
            consent: Consent {
                tcpa_text: Some("yes".into()),
                jornaya_leadid: Some("J-1".into()),
                ..Consent::default()
            },
            ..Lead::default()
        }
    }

    /// A real auction over real plugins, fuel metered: a winner, a losing bid, a refusal, a trapping plugin, a
    /// paused campaign and an HTTP buyer nobody listens for.
    async fn real_outcome() -> Outcome {
        let limits = Limits { deadline: Duration::from_secs(5), fuel: Some(1 << 40), ..Limits::default() };
        let runtime = Runtime::new(RuntimeConfig { limits, ..RuntimeConfig::default() }).expect("the runtime starts");
        let load = |name: &str| {
            let bytes = pingpost_plugins::wasm_bytes(name).unwrap_or_else(|e| panic!("building {name}: {e:#}"));
            runtime.load(&bytes).unwrap_or_else(|e| panic!("loading {name}: {e}"))
        };
        let paused = Campaign {
            status: CampaignStatus::Paused,
            ..campaign("c-paused", wasm("config-buyer", json!({ "base_price_cents": 9000 })))
        };
        let config = ExchangeConfig {
            verticals: vec![],
            publishers: vec![Publisher {
                id: "pub-1".into(),
                redactor: STANDARD_REDACTOR.into(),
                redactor_config: String::new(),
                ping_deadline_ms: 3_000,
                post_deadline_ms: 5_000,
                floor_cents: 0,
                margin_bps: 1_000,
                selection: SelectionMode::Exclusive,
                shared_max_buyers: 3,
                dedupe_window_days: 0,
                dedupe_scope: Default::default(),
                default_bid_ttl_ms: 60_000,
                status: Default::default(),
            }],
            buyers: vec![Buyer {
                id: "buyer-1".into(),
                name: String::new(),
                time_zone: chrono_tz::America::New_York,
                status: Default::default(),
                credit_limit_cents: None,
            }],
            campaigns: vec![
                campaign("c-win", wasm("config-buyer", json!({ "base_price_cents": 2500 }))),
                campaign("c-lose", wasm("config-buyer", json!({ "base_price_cents": 1000 }))),
                campaign("c-refuse", wasm("config-buyer", json!({ "base_price_cents": 5000, "states": ["TX"] }))),
                campaign("c-trap", wasm("hostile-buyer", json!("panic"))),
                paused,
                campaign(
                    "c-http",
                    CampaignTarget::Http(HttpEndpoints {
                        ping_url: "http://127.0.0.1:9/ping".into(),
                        post_url: "http://127.0.0.1:9/post".into(),
                        timeout_ms: 1_000,
                    }),
                ),
            ],
        };
        let parts = ExchangeParts {
            clock: Arc::new(ManualClock::new(NOW)),
            ids: Arc::new(SeededIds::new(7)),
            store: Arc::new(MemoryStore::new()),
            http: HttpBuyerClient::with_default_client().expect("an HTTP client"),
            settings: EngineSettings::default(),
        };
        let exchange = ExchangeBuilder::new(config)
            .plugin(STANDARD_REDACTOR, load("standard-redactor"))
            .plugin("config-buyer", load("config-buyer"))
            .plugin("hostile-buyer", load("hostile-buyer"))
            .build(&runtime, parts)
            .expect("the exchange builds");
        exchange.run_lead(lead()).await
    }

    /// An outcome with no trace, sold or not.
    fn bare_outcome(status: OutcomeStatus, sales: Vec<Sale>) -> Outcome {
        Outcome {
            ping_id: "p-1".into(),
            status,
            reason: None,
            sales,
            field_errors: vec![],
            pii_leaks: vec![],
            trace: Trace::default(),
        }
    }

    /// A ping-phase trace of one campaign that answered `answer`.
    fn one_answer(kind: TargetKind, answer: Answer) -> Trace {
        Trace {
            campaigns: vec![CampaignTrace {
                campaign_id: "c-1".into(),
                buyer_id: "buyer-1".into(),
                kind,
                tier: 1,
                ineligible: None,
                answer: Some(answer),
                answer_us: Some(10),
                plugin_wall_us: None,
                plugin_fuel: None,
                logs: vec![],
                plugin_sha: None,
            }],
            ..Trace::default()
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    /// The value of the sample named exactly `series` (name and labels as rendered).
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn metrics_are_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Arc<Metrics>>();
    }

    #[tokio::test]
    async fn a_real_auction_counts_its_outcome_every_answer_the_sale_and_the_trap() {
        let outcome = real_outcome().await;
        assert_eq!(outcome.status, OutcomeStatus::Sold, "{outcome:#?}");
        let metrics = Metrics::new();
        metrics.observe_outcome(Endpoint::Leads, &outcome, Duration::from_micros(300));
        let text = metrics.render([]);
        let text = lines(&text);
        for expected in [
            r#"pingpost_leads_total{endpoint="leads",outcome="sold"} 1"#,
            r#"pingpost_leads_total{endpoint="leads",outcome="unsold"} 0"#,
            r#"pingpost_campaign_answers_total{campaign="c-win",answer="bid"} 1"#,
            r#"pingpost_campaign_answers_total{campaign="c-lose",answer="bid"} 1"#,
            r#"pingpost_campaign_answers_total{campaign="c-refuse",answer="reject"} 1"#,
            r#"pingpost_campaign_answers_total{campaign="c-trap",answer="error"} 1"#,
            r#"pingpost_campaign_answers_total{campaign="c-paused",answer="ineligible"} 1"#,
            r#"pingpost_campaign_answers_total{campaign="c-http",answer="error"} 1"#,
            r#"pingpost_plugin_failures_total{campaign="c-trap",kind="trap"} 1"#,
            r#"pingpost_campaign_sales_total{campaign="c-win"} 1"#,
            r#"pingpost_campaign_spend_cents_total{campaign="c-win"} 2500"#,
            r#"pingpost_auction_duration_seconds_count{endpoint="leads"} 1"#,
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in\n{}", text.join("\n"));
        }
        // An HTTP buyer's transport error is an answer, not a plugin failure; nobody else failed or bought.
        let failures: Vec<_> = text.iter().filter(|l| l.starts_with("pingpost_plugin_failures_total{")).collect();
        assert_eq!(failures.len(), 1, "{failures:?}");
        let sales: Vec<_> = text.iter().filter(|l| l.starts_with("pingpost_campaign_sales_total{")).collect();
        assert_eq!(sales.len(), 1, "{sales:?}");
        // Every Wasm campaign that answered used some fuel; the paused and the HTTP campaigns none.
        let fuel = |campaign: &str| {
            let series = format!(r#"pingpost_plugin_fuel_consumed_total{{campaign="{campaign}"}} "#);
            text.iter().find_map(|l| l.strip_prefix(series.as_str())).and_then(|v| v.parse::<u64>().ok())
        };
        assert!(fuel("c-win").is_some_and(|f| f > 0), "{}", text.join("\n"));
        assert!(fuel("c-lose").is_some_and(|f| f > 0) && fuel("c-refuse").is_some_and(|f| f > 0));
        assert_eq!((fuel("c-paused"), fuel("c-http")), (None, None));
        assert_eq!(text.last(), Some(&"# EOF"));
    }

    #[test]
    fn the_latency_histogram_puts_each_auction_in_its_bucket() {
        let metrics = Metrics::new();
        let unsold = bare_outcome(OutcomeStatus::Unsold, vec![]);
        for micros in [40, 300, 300, 7_000, 2_000_000] {
            metrics.observe_outcome(Endpoint::Leads, &unsold, Duration::from_micros(micros));
        }
        let text = metrics.render([]);
        let bucket = |le: &str| {
            sample(&text, &format!(r#"pingpost_auction_duration_seconds_bucket{{le="{le}",endpoint="leads"}}"#))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"))
        };
        assert_eq!(
            [bucket("0.00005"), bucket("0.00025"), bucket("0.0005"), bucket("0.005"), bucket("0.01"), bucket("1.0")],
            ["1", "1", "3", "3", "4", "4"].map(String::from)
        );
        assert_eq!(bucket("+Inf"), "5");
        assert_eq!(sample(&text, r#"pingpost_auction_duration_seconds_count{endpoint="leads"}"#).as_deref(), Some("5"));
        let sum: f64 = sample(&text, r#"pingpost_auction_duration_seconds_sum{endpoint="leads"}"#)
            .and_then(|v| v.parse().ok())
            .expect("a sum");
        assert!((sum - 2.00764).abs() < 1e-9, "{sum}");
        assert_eq!(sample(&text, r#"pingpost_leads_total{endpoint="leads",outcome="unsold"}"#).as_deref(), Some("5"));
        assert!(!text.contains(r#"pingpost_auction_duration_seconds_count{endpoint="ping"}"#), "{text}");
    }

    #[test]
    fn a_two_step_ping_and_its_post_are_counted_on_their_own_endpoints() {
        let metrics = Metrics::new();
        let ping = PingOutcome {
            ping_id: "p-1".into(),
            status: PingStatus::Bid,
            best_bid_cents: Some(900),
            payout_cents: Some(810),
            expires_at_unix_ms: Some(NOW + 60_000),
            reason: None,
            field_errors: vec![],
            pii_leaks: vec![],
            trace: one_answer(TargetKind::Http, Answer::Bid { price_cents: 900, buyer_ref: None, ttl_ms: None }),
        };
        metrics.observe_ping(&ping, Duration::from_millis(2));
        let sold = bare_outcome(OutcomeStatus::Sold, vec![Sale::new("c-1", "buyer-1", 900, 1_000, None)]);
        metrics.observe_outcome(Endpoint::Post, &sold, Duration::from_millis(20));
        let text = metrics.render([]);
        for (series, value) in [
            (r#"pingpost_leads_total{endpoint="ping",outcome="bid"}"#, "1"),
            (r#"pingpost_leads_total{endpoint="post",outcome="sold"}"#, "1"),
            (r#"pingpost_leads_total{endpoint="leads",outcome="sold"}"#, "0"),
            (r#"pingpost_campaign_answers_total{campaign="c-1",answer="bid"}"#, "1"),
            (r#"pingpost_campaign_spend_cents_total{campaign="c-1"}"#, "900"),
            (r#"pingpost_auction_duration_seconds_count{endpoint="ping"}"#, "1"),
            (r#"pingpost_auction_duration_seconds_count{endpoint="post"}"#, "1"),
        ] {
            assert_eq!(sample(&text, series).as_deref(), Some(value), "{series} in\n{text}");
        }
    }

    #[test]
    fn every_plugin_failure_of_a_wasm_campaign_is_counted_by_its_kind() {
        let metrics = Metrics::new();
        let error = |kind: ErrorKind| Answer::Error { kind, message: "lead 8d1e-… said: \"boom\"".into() };
        let answers = [
            Answer::Timeout,
            Answer::Suspended { until_unix_ms: NOW, reason: "5 failures".into() },
            error(ErrorKind::OutOfFuel),
            error(ErrorKind::MemoryLimit),
            error(ErrorKind::Trap),
            error(ErrorKind::InvalidOutput),
        ];
        for answer in answers {
            let outcome =
                Outcome { trace: one_answer(TargetKind::Wasm, answer), ..bare_outcome(OutcomeStatus::Unsold, vec![]) };
            metrics.observe_outcome(Endpoint::Leads, &outcome, Duration::from_micros(100));
        }
        let http = Outcome {
            trace: one_answer(TargetKind::Http, Answer::Timeout),
            ..bare_outcome(OutcomeStatus::Unsold, vec![])
        };
        metrics.observe_outcome(Endpoint::Leads, &http, Duration::from_micros(100));
        let text = metrics.render([]);
        for (kind, count) in [
            ("timeout", "1"),
            ("breaker_open", "1"),
            ("out_of_fuel", "1"),
            ("memory_limit", "1"),
            ("trap", "1"),
            ("other", "1"),
        ] {
            let series = format!(r#"pingpost_plugin_failures_total{{campaign="c-1",kind="{kind}"}}"#);
            assert_eq!(sample(&text, &series).as_deref(), Some(count), "{series} in\n{text}");
        }
        assert_eq!(
            sample(&text, r#"pingpost_campaign_answers_total{campaign="c-1",answer="timeout"}"#).as_deref(),
            Some("2")
        );
        assert!(!text.contains("8d1e") && !text.contains("boom"), "free text leaked into\n{text}");
    }

    #[test]
    fn every_runtime_call_error_kind_has_its_own_failure_label() {
        let errors = [
            CallError::Timeout { deadline_ms: 50 },
            CallError::OutOfFuel { budget: 1 },
            CallError::MemoryLimit { limit_bytes: 1 },
            CallError::StackOverflow,
            CallError::Trap { message: String::new() },
            CallError::OutputTooLarge { bytes: 2, limit: 1 },
            CallError::Suspended { until_unix_ms: 0, reason: String::new() },
            CallError::Instantiate { reason: String::new() },
            CallError::Config { reason: String::new() },
        ];
        for error in errors {
            let answer = Answer::Error { kind: ErrorKind::from(&error), message: error.to_string() };
            let failure = PluginFailure::of(&answer);
            assert!(failure.is_some_and(|f| f != PluginFailure::Other), "{error} has no label: {failure:?}");
        }
    }

    #[test]
    fn an_answer_s_free_text_can_never_reach_a_label() {
        let metrics = Metrics::new();
        let strange = Answer::Error { kind: ErrorKind::Malformed, message: "x\"} 1\nevil_total 9".into() };
        for status in [OutcomeStatus::Sold, OutcomeStatus::Error, OutcomeStatus::Rejected] {
            let outcome =
                Outcome { trace: one_answer(TargetKind::Wasm, strange.clone()), ..bare_outcome(status, vec![]) };
            metrics.observe_outcome(Endpoint::Post, &outcome, Duration::from_micros(100));
        }
        let text = metrics.render([]);
        let values = |label: &str| -> Vec<String> {
            let key = format!("{label}=\"");
            text.lines()
                .filter_map(|line| {
                    line.split_once(&key).and_then(|(_, rest)| rest.split_once('"')).map(|v| v.0.to_owned())
                })
                .collect()
        };
        let closed = [
            ("outcome", &["sold", "unsold", "duplicate", "rejected", "error", "bid", "no_bid"][..]),
            ("endpoint", &["leads", "ping", "post"][..]),
            ("answer", &["bid", "below_floor", "no_bid", "reject", "timeout", "suspended", "error", "ineligible"][..]),
            (
                "kind",
                &[
                    "timeout",
                    "out_of_fuel",
                    "memory_limit",
                    "stack_overflow",
                    "trap",
                    "output_too_large",
                    "instantiate",
                    "config",
                    "breaker_open",
                    "panic",
                    "other",
                ][..],
            ),
            ("result", &["delivered", "retry", "gave_up"][..]),
        ];
        for (label, allowed) in closed {
            let found = values(label);
            assert!(!found.is_empty(), "no {label} label in\n{text}");
            assert!(found.iter().all(|v| allowed.contains(&v.as_str())), "{label}: {found:?}");
        }
        assert!(!text.contains("evil"), "{text}");
    }

    #[test]
    fn a_campaign_id_is_escaped_so_it_cannot_break_the_scrape() {
        let metrics = Metrics::new();
        let sale = Sale::new("c\"1\\\n", "buyer-1", 100, 0, None);
        metrics.observe_outcome(Endpoint::Leads, &bare_outcome(OutcomeStatus::Sold, vec![sale]), Duration::ZERO);
        let text = metrics.render([]);
        assert!(text.contains(r#"pingpost_campaign_sales_total{campaign="c\"1\\\n"} 1"#), "{text}");
    }

    #[test]
    fn cap_gauges_show_the_usage_and_limits_passed_at_scrape_time() {
        let metrics = Metrics::new();
        let caps = Caps { leads_per_hour: Some(10), spend_per_day_cents: Some(50_000), ..Caps::default() };
        let usage = Usage { leads_hour: 3, leads_day: 7, spend_day_cents: 12_500, ..Usage::default() };
        let text = metrics.render([("c-1", caps, usage), ("c-free", Caps::default(), usage)]);
        for (series, value) in [
            (r#"pingpost_campaign_cap_used{campaign="c-1",cap="leads_per_hour"}"#, "3"),
            (r#"pingpost_campaign_cap_limit{campaign="c-1",cap="leads_per_hour"}"#, "10"),
            (r#"pingpost_campaign_cap_used{campaign="c-1",cap="spend_per_day"}"#, "12500"),
            (r#"pingpost_campaign_cap_limit{campaign="c-1",cap="spend_per_day"}"#, "50000"),
        ] {
            assert_eq!(sample(&text, series).as_deref(), Some(value), "{series} in\n{text}");
        }
        assert!(!text.contains("leads_per_day") && !text.contains("c-free"), "unset caps shown:\n{text}");
        // The next scrape shows the values of then, not those of before.
        let later = Usage { leads_hour: 4, ..usage };
        let text = metrics.render([("c-1", caps, later)]);
        assert_eq!(
            sample(&text, r#"pingpost_campaign_cap_used{campaign="c-1",cap="leads_per_hour"}"#).as_deref(),
            Some("4")
        );
    }

    #[test]
    fn requests_and_deliveries_are_counted_by_route_status_and_result() {
        let metrics = Metrics::new();
        metrics.observe_request("/v1/leads", 200, Duration::from_micros(800));
        metrics.observe_request("/v1/leads", 200, Duration::from_micros(900));
        metrics.observe_request("/v1/leads", 422, Duration::from_micros(80));
        metrics.observe_request(UNMATCHED_ROUTE, 404, Duration::from_micros(10));
        metrics.observe_delivery(DeliveryResult::Retry);
        metrics.observe_delivery(DeliveryResult::Delivered);
        metrics.observe_delivery(DeliveryResult::Retry);
        let text = metrics.render([]);
        for (series, value) in [
            (r#"pingpost_http_requests_total{route="/v1/leads",status="200"}"#, "2"),
            (r#"pingpost_http_requests_total{route="/v1/leads",status="422"}"#, "1"),
            (r#"pingpost_http_requests_total{route="unmatched",status="404"}"#, "1"),
            (r#"pingpost_http_request_duration_seconds_count{route="/v1/leads"}"#, "3"),
            (r#"pingpost_outbox_deliveries_total{result="delivered"}"#, "1"),
            (r#"pingpost_outbox_deliveries_total{result="retry"}"#, "2"),
            (r#"pingpost_outbox_deliveries_total{result="gave_up"}"#, "0"),
        ] {
            assert_eq!(sample(&text, series).as_deref(), Some(value), "{series} in\n{text}");
        }
    }
}

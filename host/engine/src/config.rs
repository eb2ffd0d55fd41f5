//! The exchange's configuration: verticals, publishers, buyers and their campaigns, as the exchange file describes
//! them.
//!
//! These are plain serde types (`deny_unknown_fields`, so a typo in an exchange file is an error, not a silent
//! default). [`super::ExchangeBuilder`] turns them, plus the loaded plugins, into a running [`super::Exchange`].

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::http_buyer::HttpEndpoints;
pub use super::schedule::{Day, Schedule};
use super::vertical::Vertical;

/// The plugin reference that names the standard redactor (the exchange file loader maps it to the built-in plugin).
pub const STANDARD_REDACTOR: &str = "standard";

/// How a publisher's leads are sold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMode {
    /// One buyer: the highest bid wins.
    #[default]
    Exclusive,
    /// One buyer: the best priority tier wins, then the highest bid within it.
    Waterfall,
    /// Up to `shared_max_buyers` distinct buyers, each paying its own bid.
    Shared,
}

/// A source of leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Its id; the API takes it from the path (a body may repeat it).
    #[schema(read_only)]
    pub id: String,
    /// Plugin reference of the publisher's redactor; [`STANDARD_REDACTOR`] for the standard one.
    #[serde(default = "default_redactor")]
    pub redactor: String,
    /// The redactor's config (JSON by convention; passed to the plugin as it is).
    #[serde(default)]
    pub redactor_config: String,
    /// How long buyers have to answer a ping, from the start of the auction, in milliseconds.
    #[serde(default = "default_ping_deadline_ms")]
    pub ping_deadline_ms: u64,
    /// How long the post phase (including fallbacks) may take, in milliseconds.
    #[serde(default = "default_post_deadline_ms")]
    pub post_deadline_ms: u64,
    /// Bids below this price are dropped, in cents.
    #[serde(default)]
    pub floor_cents: u32,
    /// The exchange's margin in basis points of the sale price (250 = 2.5 %); the publisher is paid the rest.
    #[serde(default)]
    pub margin_bps: u32,
    #[serde(default)]
    pub selection: SelectionMode,
    /// How many distinct buyers a lead is sold to in shared mode (a lead may lower it, never raise it).
    #[serde(default = "default_shared_max_buyers")]
    pub shared_max_buyers: u32,
    /// A lead whose phone or email was seen from this publisher within this many days is a duplicate; 0 turns it off.
    #[serde(default)]
    pub dedupe_window_days: u32,
    /// Whose leads the duplicate check compares with: this publisher's own (the default), or those of every publisher
    /// whose scope is `exchange` (the same consumer sold once across them).
    #[serde(default, skip_serializing_if = "DedupeScope::is_publisher")]
    pub dedupe_scope: DedupeScope,
    /// How long a two-step ping's best bid stands when the bid itself names no ttl, in milliseconds.
    #[serde(default = "default_bid_ttl_ms")]
    pub default_bid_ttl_ms: u64,
    /// A paused publisher's leads are refused (outcome `rejected`, reason "publisher paused") before any buyer sees
    /// them.
    #[serde(default)]
    pub status: CampaignStatus,
}

fn default_redactor() -> String {
    STANDARD_REDACTOR.to_owned()
}
fn default_ping_deadline_ms() -> u64 {
    150
}
fn default_post_deadline_ms() -> u64 {
    3_000
}
fn default_shared_max_buyers() -> u32 {
    3
}
fn default_bid_ttl_ms() -> u64 {
    60_000
}

/// A company that buys leads through one or more campaigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Buyer {
    /// Its id; the API takes it from the path (a body may repeat it).
    #[schema(read_only)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The buyer's time zone (IANA name): schedules run and cap windows reset in it.
    #[schema(value_type = String, example = "America/New_York")]
    pub time_zone: Tz,
    /// A paused buyer's campaigns are not pinged (ineligible, "buyer paused"), whatever their own status.
    #[serde(default)]
    pub status: CampaignStatus,
    /// Set, the exchange manages the buyer's funds: it buys only while its balance (payments and credits less
    /// purchases) plus this limit, less what its pending sales hold, covers the price (0: prepaid only). Its
    /// campaigns are not pinged once nothing is available (`insufficient_funds`), a bid over what is available is
    /// dropped, and the sale checks it again atomically. Absent: its spending is not limited (it is invoiced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit_cents: Option<u64>,
}

/// Whose leads a publisher's duplicate check compares with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DedupeScope {
    /// The publisher's own leads.
    #[default]
    Publisher,
    /// The leads of every publisher with this scope: one pool across them.
    Exchange,
}

impl DedupeScope {
    /// True for the default, per-publisher scope.
    pub fn is_publisher(&self) -> bool {
        *self == DedupeScope::Publisher
    }
}

/// The key the exchange-wide dedupe pool is kept under in the store (no publisher id can be it: ids are letters,
/// digits, `.`, `_`, `-` and `:`).
pub const EXCHANGE_DEDUPE_POOL: &str = "*exchange*";

impl Publisher {
    /// The key its leads are checked and recorded under for duplicates: its id, or the exchange-wide pool.
    pub fn dedupe_pool(&self) -> &str {
        match self.dedupe_scope {
            DedupeScope::Publisher => &self.id,
            DedupeScope::Exchange => EXCHANGE_DEDUPE_POOL,
        }
    }
}

/// Whether a campaign takes part in auctions (also used for publishers and buyers: see their `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Active,
    Paused,
}

/// Which kinds of sale a campaign accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exclusivity {
    /// Only leads sold to this buyer alone (exclusive and waterfall auctions).
    ExclusiveOnly,
    /// Exclusive leads and shared leads alike.
    #[default]
    SharedAllowed,
}

/// Limits on what a campaign buys, counted on sold leads; `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    pub leads_per_hour: Option<u32>,
    pub leads_per_day: Option<u32>,
    pub leads_per_month: Option<u32>,
    pub spend_per_day_cents: Option<u64>,
    pub spend_per_month_cents: Option<u64>,
}

impl Caps {
    /// True when no cap is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Caps::default()
    }
}

/// Which publishers and sources a campaign buys from. A rule is `publisher`, `publisher/source` or
/// `publisher/source/sub` (the lead's publisher id, `source_id` and `sub_id`) and matches every lead under it:
/// `pub-2` matches all of pub-2's leads, `pub-2/google` those of its source `google`, whatever their sub id. A lead is
/// bought when `allow` is empty or one of its rules matches, and no `deny` rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["pub-1", "pub-2/google-search"]))]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["pub-2/google-search/ad-group-7"]))]
    pub deny: Vec<String>,
}

/// The most rules a campaign's `allow` or `deny` list may hold.
pub const MAX_SOURCE_RULES: usize = 1_000;

/// The longest part of a source rule, in bytes (a publisher, source or sub id).
pub const MAX_SOURCE_RULE_PART: usize = 128;

/// Where a lead comes from, as source rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub publisher_id: &'a str,
    pub source_id: &'a str,
    pub sub_id: &'a str,
}

impl<'a> Origin<'a> {
    /// Where `lead` comes from.
    pub fn of_lead(lead: &'a pingpost_model::Lead) -> Self {
        Origin { publisher_id: &lead.publisher_id, source_id: &lead.source_id, sub_id: &lead.sub_id }
    }
}

impl Sources {
    /// True when every lead is bought (no rule).
    pub fn is_all(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Why a lead from `origin` is not bought, if it is not: the `deny` rule that matches it, or `None` inside the
    /// `Err` when no `allow` rule does.
    pub fn refuses(&self, origin: Origin<'_>) -> Result<(), Option<&str>> {
        if let Some(rule) = self.deny.iter().find(|rule| rule_matches(rule, origin)) {
            return Err(Some(rule));
        }
        if self.allow.is_empty() || self.allow.iter().any(|rule| rule_matches(rule, origin)) {
            Ok(())
        } else {
            Err(None)
        }
    }

    /// Why the rules are malformed, naming the list (`allow` or `deny`) and the rule.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (list, rules) in [("sources.allow", &self.allow), ("sources.deny", &self.deny)] {
            if rules.len() > MAX_SOURCE_RULES {
                return Err((list, format!("holds {} rules; at most {MAX_SOURCE_RULES}", rules.len())));
            }
            for rule in rules {
                let parts: Vec<&str> = rule.split('/').collect();
                let bad_part = parts.iter().find(|part| {
                    part.is_empty() || part.len() > MAX_SOURCE_RULE_PART || part.chars().any(char::is_whitespace)
                });
                if parts.len() > 3 || bad_part.is_some() {
                    let detail = format!(
                        "rule {rule:?}: expected publisher, publisher/source or publisher/source/sub, each part 1 to \
                         {MAX_SOURCE_RULE_PART} bytes without spaces"
                    );
                    return Err((list, detail));
                }
            }
        }
        Ok(())
    }
}

/// Whether `rule` (`publisher[/source[/sub]]`) matches a lead from `origin`.
fn rule_matches(rule: &str, origin: Origin<'_>) -> bool {
    let mut parts = rule.split('/');
    [origin.publisher_id, origin.source_id, origin.sub_id]
        .iter()
        .zip(parts.by_ref())
        .all(|(actual, wanted)| *actual == wanted)
        && parts.next().is_none()
}

/// Where a Wasm campaign's sold leads go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Delivery {
    /// POSTed to the buyer's URL, as an HTTP buyer's post.
    Webhook { url: String },
    /// Kept in the store for the buyer to pick up.
    Pickup,
}

/// How a campaign is asked for bids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CampaignTarget {
    /// A Wasm buyer plugin run in the exchange's sandbox.
    Wasm {
        /// Plugin reference (a path or id the exchange file loader resolves).
        plugin: String,
        /// The campaign's plugin config: a JSON value, or a string passed as it is.
        #[serde(default)]
        config: serde_json::Value,
        delivery: Delivery,
    },
    /// A classic buyer reached over HTTP.
    Http(#[schema(inline)] HttpEndpoints),
}

/// One way a buyer buys: its plugin or endpoints plus the exchange-side rules around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Its id; the API takes it from the path (a body may repeat it).
    #[schema(read_only)]
    pub id: String,
    pub buyer_id: String,
    /// The operator's pause.
    #[serde(default)]
    pub status: CampaignStatus,
    /// The buyer's own pause (its buyer routes): a campaign buys only when neither the operator nor the buyer
    /// paused it, so neither can undo the other's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused_by_buyer: bool,
    /// Priority tier for waterfall selection: 1 is asked first.
    #[serde(default = "default_tier")]
    pub tier: u32,
    #[serde(default)]
    pub exclusivity: Exclusivity,
    #[serde(default)]
    pub caps: Caps,
    #[serde(default)]
    pub schedule: Schedule,
    /// Which publishers and sources it buys from; by default all.
    #[serde(default, skip_serializing_if = "Sources::is_all")]
    pub sources: Sources,
    /// The buyer never buys the same consumer twice within this many days; 0 turns it off.
    #[serde(default)]
    pub suppression_days: u32,
    /// The highest bid this campaign may make, in cents; a higher bid is an error answer, never a sale. Unset: the
    /// exchange-wide maximum (`EngineSettings::max_bid_cents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bid_cents: Option<u32>,
    pub target: CampaignTarget,
}

fn default_tier() -> u32 {
    1
}

impl CampaignTarget {
    /// The config string handed to the plugin: a JSON string value is passed as it is, other values as JSON text.
    pub fn plugin_config(config: &serde_json::Value) -> String {
        match config {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// Everything an exchange file describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The products the exchange trades and the schema of each one's ping extras; none means the built-in set
    /// ([`Vertical::builtin`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verticals: Vec<Vertical>,
    #[serde(default)]
    pub publishers: Vec<Publisher>,
    #[serde(default)]
    pub buyers: Vec<Buyer>,
    #[serde(default)]
    pub campaigns: Vec<Campaign>,
}

impl ExchangeConfig {
    /// Every plugin reference the config names (redactors and Wasm campaigns), sorted and deduplicated, so a loader
    /// knows what to read before calling the builder.
    pub fn plugin_refs(&self) -> Vec<String> {
        let mut refs: Vec<String> = self.publishers.iter().map(|p| p.redactor.clone()).collect();
        for campaign in &self.campaigns {
            if let CampaignTarget::Wasm { plugin, .. } = &campaign.target {
                refs.push(plugin.clone());
            }
        }
        refs.sort();
        refs.dedup();
        refs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_of_both_kinds_deserialize_with_defaults() {
        let config: ExchangeConfig = serde_json::from_value(serde_json::json!({
            "publishers": [{ "id": "pub-1" }],
            "buyers": [{ "id": "b1", "time_zone": "America/New_York" }],
            "campaigns": [
                { "id": "w", "buyer_id": "b1", "target": { "kind": "wasm", "plugin": "config-buyer",
                  "config": { "base_price_cents": 100 }, "delivery": { "kind": "pickup" } } },
                { "id": "h", "buyer_id": "b1", "tier": 2, "caps": { "leads_per_day": 5 },
                  "schedule": { "days": ["mon", "fri"], "from_hour": 8, "to_hour": 20 },
                  "target": { "kind": "http", "ping_url": "http://127.0.0.1:1/ping", "post_url": "http://127.0.0.1:1/post", "timeout_ms": 100 } }
            ]
        }))
        .expect("a valid exchange config");
        assert_eq!(config.publishers[0].redactor, STANDARD_REDACTOR);
        assert_eq!(config.publishers[0].selection, SelectionMode::Exclusive);
        assert_eq!(config.buyers[0].time_zone, chrono_tz::America::New_York);
        assert!(matches!(&config.campaigns[1].target, CampaignTarget::Http(e) if e.timeout_ms == 100));
        assert_eq!(config.campaigns[1].caps.leads_per_day, Some(5));
        assert_eq!(config.plugin_refs(), ["config-buyer", "standard"]);
        assert_eq!(CampaignTarget::plugin_config(&serde_json::json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(CampaignTarget::plugin_config(&serde_json::json!("raw text")), "raw text");
    }

    #[test]
    fn a_typo_in_a_campaign_is_an_error() {
        let result: Result<Campaign, _> = serde_json::from_value(serde_json::json!({
            "id": "w", "buyer_id": "b1", "teir": 2,
            "target": { "kind": "wasm", "plugin": "p", "delivery": { "kind": "pickup" } }
        }));
        assert!(result.is_err_and(|e| e.to_string().contains("teir")));
    }
}

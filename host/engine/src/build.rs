//! Building an exchange: an [`ExchangeConfig`] and the plugins it names are checked (every id once, every reference
//! known, every deadline and URL in range) and set up on the runtime — each redactor and Wasm buyer instantiated and
//! configured once — before the exchange serves a lead. A config that fails any check builds nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::{CampaignTarget, Delivery, EXCHANGE_DEDUPE_POOL, ExchangeConfig};
use super::engine::{Exchange, ExchangeParts};
use super::entries::{CampaignEntry, Campaigns, PublisherEntry, Runner};
use super::vertical::{VerticalError, Verticals};
use pingpost_runtime::{LoadError, Plugin, PluginSlot, Runtime, World};

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

/// Builds an [`Exchange`] from an [`ExchangeConfig`] and the plugins it names. The exchange file loader parses the
/// file, loads each of [`ExchangeConfig::plugin_refs`] with the runtime, hands them over with
/// [`ExchangeBuilder::plugin`], and calls [`ExchangeBuilder::build`].
pub struct ExchangeBuilder {
    config: ExchangeConfig,
    plugins: HashMap<String, Arc<Plugin>>,
    disabled: HashSet<String>,
}

impl ExchangeBuilder {
    /// A builder for `config`.
    pub fn new(config: ExchangeConfig) -> Self {
        ExchangeBuilder { config, plugins: HashMap::new(), disabled: HashSet::new() }
    }

    /// Marks a buyer plugin reference disabled: its campaigns are checked against it as usual (supply it) but never
    /// pinged, their traces saying `plugin_disabled`.
    pub fn disabled(mut self, reference: impl Into<String>) -> Self {
        self.disabled.insert(reference.into());
        self
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
            if publisher.id == EXCHANGE_DEDUPE_POOL {
                let detail = format!("{EXCHANGE_DEDUPE_POOL:?} is the exchange-wide dedupe pool, not a publisher id");
                return Err(BuildError::Field { used_by, field: "id", detail });
            }
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

        let mut campaigns = Campaigns::default();
        for campaign in self.config.campaigns {
            let used_by = format!("campaign {:?}", campaign.id);
            let buyer = buyers.get(&campaign.buyer_id).ok_or_else(|| BuildError::UnknownBuyer {
                campaign: campaign.id.clone(),
                buyer: campaign.buyer_id.clone(),
            })?;
            let field_error =
                |field: &'static str, detail: String| BuildError::Field { used_by: used_by.clone(), field, detail };
            campaign.sources.check().map_err(|(field, detail)| field_error(field, detail))?;
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
                CampaignTarget::Wasm { plugin: reference, config, delivery } => {
                    let plugin = find(reference, &used_by, World::Buyer)?;
                    // Configured even when disabled: the campaign's config is checked against the version that
                    // would run it, so enabling the plugin again cannot fail on a config saved meanwhile.
                    let buyer_plugin = runtime
                        .buyer(plugin, campaign.id.clone(), CampaignTarget::plugin_config(config))
                        .map_err(|source| BuildError::Plugin { used_by: used_by.clone(), source })?;
                    if self.disabled.contains(reference) {
                        Runner::Disabled { plugin: reference.clone() }
                    } else {
                        Runner::Wasm { slot: Arc::new(PluginSlot::new(buyer_plugin)), delivery: delivery.clone() }
                    }
                }
                CampaignTarget::Http(endpoints) => Runner::Http(endpoints.clone()),
            };
            let id = campaign.id.clone();
            if !campaigns.push(CampaignEntry {
                time_zone: buyer.time_zone,
                credit_limit_cents: buyer.credit_limit_cents,
                config: campaign,
                runner,
            }) {
                return Err(BuildError::DuplicateId { kind: "campaign", id });
            }
        }

        Ok(Exchange {
            verticals,
            publishers,
            buyers,
            campaigns,
            clock: parts.clock,
            ids: parts.ids,
            store: parts.store,
            http: parts.http,
            settings: parts.settings,
        })
    }
}

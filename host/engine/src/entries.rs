//! What an exchange is built into: each publisher with its redactor, each campaign with its buyer's time zone and how
//! it is reached. Every step of the auction reads these; once the exchange is built only their plugin slots change
//! (a hot swap replaces the version a slot runs), never the entries themselves.

use std::collections::HashMap;
use std::sync::Arc;

use chrono_tz::Tz;

use super::config::{Campaign, Delivery, Publisher};
use super::eligibility::DAY_MS;
use super::http_buyer::HttpEndpoints;
use super::identity::ConsumerKeys;
use super::store::Purchase;
use pingpost_runtime::{BuyerPlugin, PluginSlot, RedactorPlugin};

/// A publisher with its redactor.
pub(crate) struct PublisherEntry {
    pub config: Publisher,
    pub redactor: Arc<PluginSlot<RedactorPlugin>>,
}

/// How a campaign is reached.
pub(crate) enum Runner {
    Wasm {
        slot: Arc<PluginSlot<BuyerPlugin>>,
        delivery: Delivery,
    },
    Http(HttpEndpoints),
    /// Its plugin is disabled by the operator: the campaign is kept (and traced as such) but never pinged.
    Disabled {
        plugin: String,
    },
}

/// A campaign ready to be pinged.
pub(crate) struct CampaignEntry {
    pub config: Campaign,
    pub time_zone: Tz,
    /// The buyer's credit limit, when the exchange manages its funds (see [`Buyer`](super::config::Buyer)).
    pub credit_limit_cents: Option<u64>,
    pub runner: Runner,
}

impl CampaignEntry {
    /// A sale of consumer `keys` (when known) to this campaign's buyer at `now_unix_ms`, checked against its
    /// suppression window and its buyer's funds.
    pub fn purchase(&self, keys: Option<&ConsumerKeys>, now_unix_ms: i64) -> Purchase {
        let days = self.config.suppression_days;
        Purchase {
            buyer_id: self.config.buyer_id.clone(),
            keys: keys.cloned(),
            at_unix_ms: now_unix_ms,
            suppress_since_unix_ms: (days > 0).then(|| now_unix_ms - i64::from(days) * DAY_MS),
            credit_limit_cents: self.credit_limit_cents,
        }
    }
}

/// Every campaign, in configuration order (the order they are pinged and traced in), and by id.
#[derive(Default)]
pub(crate) struct Campaigns {
    entries: Vec<Arc<CampaignEntry>>,
    index: HashMap<String, usize>,
}

impl Campaigns {
    /// Adds a campaign; `false` (and nothing added) when its id is taken.
    pub fn push(&mut self, entry: CampaignEntry) -> bool {
        if self.index.contains_key(&entry.config.id) {
            return false;
        }
        self.index.insert(entry.config.id.clone(), self.entries.len());
        self.entries.push(Arc::new(entry));
        true
    }

    /// The campaign with `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<CampaignEntry>> {
        self.index.get(id).and_then(|i| self.entries.get(*i))
    }

    /// Every campaign, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CampaignEntry>> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

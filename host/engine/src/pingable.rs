//! Which campaigns are pinged for a lead: each campaign's cap usage, the buyer's suppression window and (when the
//! exchange manages them) the buyer's funds read from the store, then the [`eligibility`](super::eligibility) rules. Every campaign gets a trace entry, saying why when it is
//! not pinged.

use std::collections::HashMap;

use super::config::{Buyer, CampaignStatus, Origin, SelectionMode};
use super::eligibility::{self, DAY_MS, EligibilityInput, Ineligible, cap_windows};
use super::entries::{CampaignEntry, Campaigns, Runner};
use super::fanout::PingJob;
use super::identity::ConsumerKeys;
use super::ledger::Funds;
use super::store::{AuctionStore, StoreError};
use super::trace::{CampaignTrace, TargetKind};
use pingpost_model::CapsLeft;

/// One trace entry per campaign, in configuration order, and a job for each campaign to ping.
pub(crate) struct Pingable {
    pub traces: Vec<CampaignTrace>,
    pub jobs: Vec<PingJob>,
}

/// What eligibility knows of the lead and its auction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeadAt<'a> {
    pub mode: SelectionMode,
    pub now: i64,
    /// The consumer's keys, when known.
    pub keys: Option<&'a ConsumerKeys>,
    pub origin: Origin<'a>,
}

/// Checks every campaign for a lead of consumer `lead.keys` from `lead.origin` in a `lead.mode` auction at
/// `lead.now`. A campaign may bid at most its own `max_bid_cents`, else the exchange's `max_bid_cents`. Without keys
/// (a PII-free ping that carried no hashes) buyers' suppression is checked only when the lead is posted (the sale's
/// reservation checks it either way).
pub(crate) async fn campaigns(
    campaigns: &Campaigns,
    buyers: &HashMap<String, Buyer>,
    store: &dyn AuctionStore,
    max_bid_cents: u32,
    lead: LeadAt<'_>,
) -> Pingable {
    let mut pingable = Pingable { traces: Vec::with_capacity(campaigns.len()), jobs: Vec::new() };
    // Each funds-managed buyer's funds, read once per lead.
    let mut funds: HashMap<&str, Result<Funds, StoreError>> = HashMap::new();
    for entry in campaigns.iter() {
        let trace_index = pingable.traces.len();
        let buyer_paused = buyers.get(&entry.config.buyer_id).is_some_and(|b| b.status == CampaignStatus::Paused);
        let available = match entry.credit_limit_cents {
            None => Ok(None),
            Some(limit) => {
                let buyer_id = entry.config.buyer_id.as_str();
                if !funds.contains_key(buyer_id) {
                    funds.insert(buyer_id, store.funds(buyer_id).await);
                }
                match &funds[buyer_id] {
                    Ok(funds) => Ok(Some(funds.available_cents(limit))),
                    Err(error) => Err(Ineligible::Unavailable { detail: error.to_string() }),
                }
            }
        };
        let checked = match available {
            Ok(available_cents) => check(store, entry, lead, buyer_paused, available_cents)
                .await
                .map(|caps_left| (caps_left, available_cents)),
            Err(unavailable) => Err(unavailable),
        };
        let ineligible = match checked {
            Ok((caps_left, funds_left)) => {
                let max_bid_cents = entry.config.max_bid_cents.unwrap_or(max_bid_cents);
                pingable.jobs.push(PingJob { trace_index, entry: entry.clone(), caps_left, funds_left, max_bid_cents });
                None
            }
            Err(reason) => Some(reason),
        };
        pingable.traces.push(CampaignTrace {
            campaign_id: entry.config.id.clone(),
            buyer_id: entry.config.buyer_id.clone(),
            kind: match entry.runner {
                Runner::Wasm { .. } | Runner::Disabled { .. } => TargetKind::Wasm,
                Runner::Http(_) => TargetKind::Http,
            },
            tier: entry.config.tier,
            ineligible,
            answer: None,
            answer_us: None,
            plugin_wall_us: None,
            plugin_fuel: None,
            logs: vec![],
            plugin_sha: None,
        });
    }
    pingable
}

/// Whether one campaign may be pinged for this lead now, and what is left of its caps. Its two reads run on the
/// auction's task: each is an indexed look-up on an open read connection (microseconds), cheaper than a hand-off.
async fn check(
    store: &dyn AuctionStore,
    entry: &CampaignEntry,
    LeadAt { mode, now, keys, origin }: LeadAt<'_>,
    buyer_paused: bool,
    available_cents: Option<i64>,
) -> Result<CapsLeft, Ineligible> {
    let campaign = &entry.config;
    if let Runner::Disabled { plugin } = &entry.runner {
        return Err(Ineligible::PluginDisabled { plugin: plugin.clone() });
    }
    let unavailable = |error: StoreError| Ineligible::Unavailable { detail: error.to_string() };
    let usage = if campaign.caps.is_unlimited() {
        Default::default()
    } else {
        store.usage(&campaign.id, &cap_windows(entry.time_zone, now)).await.map_err(unavailable)?
    };
    let suppressed = match keys {
        Some(keys) if campaign.suppression_days > 0 => store
            .bought_since(&campaign.buyer_id, keys, now - i64::from(campaign.suppression_days) * DAY_MS)
            .await
            .map_err(unavailable)?,
        _ => false,
    };
    eligibility::check(
        campaign,
        EligibilityInput {
            mode,
            time_zone: entry.time_zone,
            now_unix_ms: now,
            usage: &usage,
            suppressed,
            buyer_paused,
            origin,
            available_cents,
        },
    )
}

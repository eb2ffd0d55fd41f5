//! A two-step quote is a promise. Before a ping answers with its best bid, each bid it quotes (the best one, or in a
//! shared sale the best of each of up to N buyers) holds what its sale will spend — a lead against every lead cap,
//! its price against every spend cap and the buyer's funds, and the consumer against the buyer's suppression window —
//! until the post takes
//! the hold or the quote expires. A bid its campaign can no longer hold is dropped (`cap_would_exceed`) and the next
//! is tried, so concurrent pings never promise one campaign's last unit twice and a post pays what was quoted.

use std::collections::HashSet;

use super::eligibility::{Ineligible, cap_windows};
use super::entries::Campaigns;
use super::identity::ConsumerKeys;
use super::select::Candidate;
use super::store::{AuctionStore, Reservation, ReserveError, StoreError};
use super::trace::{Answer, CampaignTrace};

/// The bids a ping keeps, best first, and the holds of those it quotes.
pub(crate) struct Quote {
    pub ranked: Vec<Candidate>,
    pub holds: Vec<Reservation>,
}

/// What a quote is held for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuoteTerms {
    /// How many buyers the lead may be sold to: one hold per buyer, up to this many.
    pub max_buyers: u32,
    /// The publisher's post deadline: a hold outlives its bid by this much, so a post that started before the bid
    /// expired still finds its hold.
    pub post_deadline_ms: u64,
    pub now_unix_ms: i64,
}

/// Holds the quoted bids of `ranked`: in rank order, one per buyer, until `max_buyers` are held. A bid whose hold is
/// refused (a cap, or the buyer's suppression window: it bought or is buying this consumer) is dropped and its trace
/// entry says why. Bids after the held ones stay as unheld fallbacks. A hold expires with its bid, no later than the
/// quote (the first held bid), plus the post deadline. On a store failure every hold made is released.
pub(crate) async fn hold(
    store: &dyn AuctionStore,
    campaigns: &Campaigns,
    ranked: Vec<Candidate>,
    keys: Option<&ConsumerKeys>,
    terms: QuoteTerms,
    traces: &mut [CampaignTrace],
) -> Result<Quote, StoreError> {
    let QuoteTerms { max_buyers, post_deadline_ms, now_unix_ms } = terms;
    let grace = i64::try_from(post_deadline_ms).unwrap_or(i64::MAX);
    let mut quote = Quote { ranked: Vec::with_capacity(ranked.len()), holds: Vec::new() };
    let mut held_buyers: HashSet<String> = HashSet::new();
    let mut quote_expires: Option<i64> = None;
    for candidate in ranked {
        let holdable = quote.holds.len() < max_buyers as usize && !held_buyers.contains(&candidate.buyer_id);
        let Some(entry) = campaigns.get(&candidate.campaign_id).filter(|_| holdable) else {
            quote.ranked.push(candidate);
            continue;
        };
        let windows = cap_windows(entry.time_zone, now_unix_ms);
        let purchase = entry.purchase(keys, now_unix_ms);
        let bid_expires = quote_expires.map_or(candidate.expires_at_unix_ms, |q| q.min(candidate.expires_at_unix_ms));
        let expires = bid_expires.saturating_add(grace);
        let held = store
            .hold(&entry.config.id, &entry.config.caps, &windows, candidate.price_cents, Some(&purchase), expires)
            .await;
        match held {
            Ok(hold) => {
                quote_expires.get_or_insert(candidate.expires_at_unix_ms);
                held_buyers.insert(candidate.buyer_id.clone());
                quote.holds.push(hold);
                quote.ranked.push(candidate);
            }
            Err(ReserveError::CapReached(cap)) => {
                if let Some(trace) = entry_of(traces, &candidate.campaign_id) {
                    trace.answer =
                        Some(Answer::CapWouldExceed { price_cents: candidate.price_cents, cap, left_cents: None });
                }
            }
            Err(ReserveError::InsufficientFunds { available_cents }) => {
                // Other auctions spent or hold what the buyer had since its bid.
                if let Some(trace) = entry_of(traces, &candidate.campaign_id) {
                    trace.answer =
                        Some(Answer::FundsWouldExceed { price_cents: candidate.price_cents, available_cents });
                }
            }
            Err(ReserveError::Suppressed { .. }) => {
                // Another auction sold (or is selling) this consumer to this buyer since eligibility was checked.
                if let Some(trace) = entry_of(traces, &candidate.campaign_id) {
                    trace.ineligible = Some(Ineligible::Suppressed { days: entry.config.suppression_days });
                }
            }
            Err(ReserveError::Store(error)) => {
                release(store, &quote.holds).await;
                return Err(error);
            }
        }
    }
    Ok(quote)
}

/// The trace entry of `campaign_id`.
fn entry_of<'a>(traces: &'a mut [CampaignTrace], campaign_id: &str) -> Option<&'a mut CampaignTrace> {
    traces.iter_mut().find(|t| t.campaign_id == campaign_id)
}

/// Gives holds back, logging a failure (an unreleased hold is released once it expires). A hold already gone (its
/// expiry released it) is not a failure.
pub(crate) async fn release(store: &dyn AuctionStore, holds: &[Reservation]) {
    for hold in holds {
        match store.release(hold).await {
            Ok(()) | Err(StoreError::UnknownReservation(_)) => {}
            Err(error) => tracing::error!(campaign = %hold.campaign_id, %error, "could not release a quote's hold"),
        }
    }
}

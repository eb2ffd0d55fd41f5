//! The fan-out's answers, filed: each campaign's answer goes into its trace entry, and each bid becomes a
//! [`Candidate`] for selection, standing until its TTL runs out.

use super::fanout::PingResult;
use super::select::Candidate;
use super::trace::{Answer, CampaignTrace};

/// Files each answer in its campaign's trace entry and makes a candidate of each bid. A bid that names no TTL stands
/// for `default_ttl_ms` from `now_unix_ms`.
pub(crate) fn into_candidates(
    answers: Vec<PingResult>,
    traces: &mut [CampaignTrace],
    default_ttl_ms: u64,
    now_unix_ms: i64,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for result in answers {
        let campaign = &mut traces[result.trace_index];
        if let Answer::Bid { price_cents, buyer_ref, ttl_ms } = &result.answer {
            let ttl = ttl_ms.map_or(default_ttl_ms, u64::from);
            candidates.push(Candidate {
                campaign_id: campaign.campaign_id.clone(),
                buyer_id: campaign.buyer_id.clone(),
                tier: campaign.tier,
                price_cents: *price_cents,
                answer_order: result.order,
                buyer_ref: buyer_ref.clone(),
                expires_at_unix_ms: now_unix_ms.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            });
        }
        campaign.answer = Some(result.answer);
        campaign.answer_us = Some(result.answer_us);
        campaign.plugin_wall_us = result.plugin_wall_us;
        campaign.plugin_fuel = result.plugin_fuel;
        campaign.logs = result.logs;
        campaign.plugin_sha = result.plugin_sha;
    }
    candidates
}

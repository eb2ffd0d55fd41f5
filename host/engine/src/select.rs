//! Selection: which bids the lead is posted to, in what order. Pure functions over the bids that survived the floor.
//!
//! Ranking per mode (the deterministic tie-break is the tail of each key):
//! - exclusive and shared: higher price, then lower tier number, then earlier answer, then campaign id (byte order);
//! - waterfall: lower tier number, then higher price, then earlier answer, then campaign id.
//!
//! Exclusive and waterfall sell to one buyer: the first ranked bid, and on a failed post the next one. Shared sells to
//! up to N distinct buyers: the first N ranked bids of distinct buyers, each paying its own bid; a failed post is
//! replaced by the next ranked bid of a buyer not yet sold to or being posted to.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::config::SelectionMode;
use pingpost_model::SaleKind;

/// A bid that can be posted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub campaign_id: String,
    pub buyer_id: String,
    pub tier: u32,
    pub price_cents: u32,
    /// The position of this answer in arrival order (0 = first).
    pub answer_order: u32,
    /// The buyer's own reference for the bid, passed back on the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_ref: Option<String>,
    /// When the bid stops standing (two-step), unix ms.
    pub expires_at_unix_ms: i64,
}

/// Compares two candidates in the order `mode` tries them (less = tried first).
pub fn compare(mode: SelectionMode, a: &Candidate, b: &Candidate) -> Ordering {
    let by_price = b.price_cents.cmp(&a.price_cents);
    let by_tier = a.tier.cmp(&b.tier);
    let primary = match mode {
        SelectionMode::Exclusive | SelectionMode::Shared => by_price.then(by_tier),
        SelectionMode::Waterfall => by_tier.then(by_price),
    };
    primary.then(a.answer_order.cmp(&b.answer_order)).then_with(|| a.campaign_id.cmp(&b.campaign_id))
}

/// The candidates in the order `mode` tries them.
pub fn rank(mode: SelectionMode, mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| compare(mode, a, b));
    candidates
}

/// How many buyers a lead may be sold to: 1 unless shared; in shared mode the publisher's N, lowered by the
/// lead's own N when it names one (never below 1).
pub fn max_buyers(mode: SelectionMode, publisher_n: u32, lead_n: Option<u32>) -> u32 {
    match mode {
        SelectionMode::Exclusive | SelectionMode::Waterfall => 1,
        SelectionMode::Shared => lead_n.map_or(publisher_n, |n| n.min(publisher_n)).max(1),
    }
}

/// The sale an auction makes, as buyers are told it: shared when the lead may go to more than one buyer.
pub fn sale_kind(max_buyers: u32) -> SaleKind {
    if max_buyers > 1 { SaleKind::Shared } else { SaleKind::Exclusive }
}

/// The next candidates to post to: up to `want`, in ranked order, skipping campaigns already tried and buyers
/// already sold to or being posted to; each chosen buyer appears once.
pub fn next_batch<'a>(
    ranked: &'a [Candidate],
    tried: &HashSet<String>,
    busy_buyers: &HashSet<String>,
    want: usize,
) -> Vec<&'a Candidate> {
    let mut buyers: HashSet<&str> = HashSet::new();
    ranked
        .iter()
        .filter(|c| !tried.contains(&c.campaign_id) && !busy_buyers.contains(&c.buyer_id))
        .filter(|c| buyers.insert(c.buyer_id.as_str()))
        .take(want)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(campaign: &str, buyer: &str, tier: u32, price: u32, order: u32) -> Candidate {
        Candidate {
            campaign_id: campaign.into(),
            buyer_id: buyer.into(),
            tier,
            price_cents: price,
            answer_order: order,
            buyer_ref: None,
            expires_at_unix_ms: 0,
        }
    }

    fn ids(ranked: &[Candidate]) -> Vec<&str> {
        ranked.iter().map(|c| c.campaign_id.as_str()).collect()
    }

    #[test]
    fn ranking_table() {
        let bids =
            || vec![c("a", "A", 2, 900, 0), c("b", "B", 1, 700, 1), c("c", "C", 1, 900, 2), c("d", "D", 3, 2600, 3)];
        let table: [(SelectionMode, [&str; 4]); 3] = [
            (SelectionMode::Exclusive, ["d", "c", "a", "b"]),
            (SelectionMode::Shared, ["d", "c", "a", "b"]),
            (SelectionMode::Waterfall, ["c", "b", "a", "d"]),
        ];
        for (mode, expected) in table {
            assert_eq!(ids(&rank(mode, bids())), expected, "{mode:?}");
        }
    }

    #[test]
    fn ties_break_on_earlier_answer_then_campaign_id() {
        let ranked = rank(
            SelectionMode::Exclusive,
            vec![c("z", "Z", 1, 500, 1), c("y", "Y", 1, 500, 0), c("x", "X", 1, 500, 1)],
        );
        assert_eq!(ids(&ranked), ["y", "x", "z"]);
    }

    #[test]
    fn shared_takes_n_distinct_buyers_and_skips_the_busy_and_the_tried() {
        let ranked = rank(
            SelectionMode::Shared,
            vec![c("a1", "A", 1, 1000, 0), c("a2", "A", 1, 900, 1), c("b1", "B", 1, 800, 2), c("c1", "C", 1, 700, 3)],
        );
        let none = HashSet::new();
        assert_eq!(
            next_batch(&ranked, &none, &none, 2).iter().map(|c| c.campaign_id.as_str()).collect::<Vec<_>>(),
            ["a1", "b1"]
        );
        let tried: HashSet<String> = ["a1".to_owned()].into();
        assert_eq!(
            next_batch(&ranked, &tried, &none, 2).iter().map(|c| c.campaign_id.as_str()).collect::<Vec<_>>(),
            ["a2", "b1"]
        );
        let busy: HashSet<String> = ["B".to_owned()].into();
        assert_eq!(
            next_batch(&ranked, &tried, &busy, 5).iter().map(|c| c.campaign_id.as_str()).collect::<Vec<_>>(),
            ["a2", "c1"]
        );
    }

    #[test]
    fn max_buyers_is_one_unless_shared_and_a_lead_can_only_lower_it() {
        assert_eq!(max_buyers(SelectionMode::Exclusive, 3, Some(5)), 1);
        assert_eq!(max_buyers(SelectionMode::Waterfall, 3, None), 1);
        assert_eq!(max_buyers(SelectionMode::Shared, 3, None), 3);
        assert_eq!(max_buyers(SelectionMode::Shared, 3, Some(2)), 2);
        assert_eq!(max_buyers(SelectionMode::Shared, 3, Some(9)), 3);
        assert_eq!(max_buyers(SelectionMode::Shared, 3, Some(0)), 1);
    }
}

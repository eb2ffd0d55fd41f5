//! A buyer with custom logic: it scores each ping on a weighted scorecard (age band, consent evidence, state tier,
//! extra key/values such as `coverage_type` and `household_size`) and bids the score times a price per point, capped,
//! passing on pings that score under a floor. The weights come from the campaign's config JSON; `{}` uses the
//! defaults documented in the README. With `"log_score": true` it also logs how each score was made.

mod scorecard;

use pingpost_sdk::{Bid, BidContext, Buyer, Decision, LogLevel, Ping, RejectCode};

use crate::scorecard::Scorecard;

/// The buyer for one campaign: its scorecard.
pub struct ScorecardBuyer {
    card: Scorecard,
}

impl Buyer for ScorecardBuyer {
    fn new(config: &str) -> Result<Self, String> {
        Scorecard::parse(config).map(|card| ScorecardBuyer { card })
    }

    fn bid(&self, ping: &Ping, _context: &BidContext) -> Decision {
        let card = &self.card;
        if let Some(verticals) = &card.verticals
            && !verticals.contains(&ping.vertical)
        {
            return Decision::reject(RejectCode::Vertical, format!("vertical {:?} is not bought", ping.vertical));
        }
        if ping.age < card.min_age {
            return Decision::reject(RejectCode::Age, format!("age {} is under {}", ping.age, card.min_age));
        }
        let score = if card.log_score {
            let (score, parts) = card.explain(ping);
            pingpost_sdk::log(LogLevel::Debug, &format!("score {score}: {}", parts.join(", ")));
            score
        } else {
            card.score(ping)
        };
        if score < card.min_score {
            return Decision::reject(
                RejectCode::Price,
                format!("score {score} is under the floor of {}", card.min_score),
            );
        }
        let price = score.saturating_mul(i64::from(card.cents_per_point));
        let price = u32::try_from(price.max(0)).unwrap_or(u32::MAX).min(card.max_price_cents.unwrap_or(u32::MAX));
        if price == 0 {
            return Decision::reject(RejectCode::Price, format!("score {score} is worth nothing"));
        }
        Decision::Bid(Bid { price_cents: price, buyer_ref: Some(buyer_ref(score)), ttl_ms: None })
    }
}

/// The bid's reference: `score-121`.
fn buyer_ref(score: i64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(score);
    let mut reference = String::with_capacity("score-".len() + digits.len());
    reference.push_str("score-");
    reference.push_str(digits);
    reference
}

pingpost_sdk::register_buyer!(ScorecardBuyer);

#[cfg(test)]
mod tests;

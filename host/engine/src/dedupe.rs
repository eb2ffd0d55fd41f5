//! The duplicate check: a publisher does not sell the same consumer twice within its dedupe window — or, with
//! `dedupe_scope = "exchange"`, publishers of that scope do not sell one consumer twice between them. Keyed by the
//! SHA-256 of the normalised phone and email ([`ConsumerKeys`]), never the raw values.

use super::config::{DedupeScope, Publisher};
use super::eligibility::DAY_MS;
use super::identity::ConsumerKeys;
use super::store::AuctionStore;
use super::trace::{EarlyEnd, OutcomeStatus};

/// Records the lead's consumer for its publisher and ends the auction when the publisher saw it within its window.
/// Run only once the exchange is able to auction the lead, so a lead refused for the exchange's own reasons
/// (redactor failure, PII guard) can be sent again.
pub(crate) async fn check(
    store: &dyn AuctionStore,
    publisher: &Publisher,
    keys: &ConsumerKeys,
    now: i64,
) -> Result<(), EarlyEnd> {
    let since = now - i64::from(publisher.dedupe_window_days) * DAY_MS;
    match store.check_and_record_lead(publisher.dedupe_pool(), keys, since, now).await {
        Ok(None) => Ok(()),
        Ok(Some(seen_at)) => {
            let seen = chrono::DateTime::from_timestamp_millis(seen_at).map_or(seen_at.to_string(), |t| t.to_rfc3339());
            let from = match publisher.dedupe_scope {
                DedupeScope::Publisher => format!("from publisher {:?}", publisher.id),
                DedupeScope::Exchange => "from a publisher of the exchange-wide dedupe".to_owned(),
            };
            let reason = format!(
                "duplicate: this consumer's phone or email was seen {from} at {seen}, within the {}-day window",
                publisher.dedupe_window_days
            );
            Err(EarlyEnd::new(OutcomeStatus::Duplicate, reason))
        }
        Err(error) => Err(EarlyEnd::error(format!("dedupe look-up failed: {error}"))),
    }
}

//! One record per auction: its status and the outcome + trace JSON the service serialised, so operators (and the
//! publisher that sent the lead) can read why a lead sold or did not. The trace holds the redacted ping only, no PII.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::connection::backend;
use super::sqlite::SqliteStore;
use pingpost_engine::store::StoreError;

/// A recorded auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuctionRecord {
    pub lead_id: String,
    pub publisher_id: String,
    /// The outcome's status as the service names it (`sold`, `unsold`, ...).
    pub status: String,
    pub received_at_unix_ms: i64,
    /// The outcome and trace, as given to [`SqliteStore::record_auctions`].
    pub outcome_json: String,
}

impl SqliteStore {
    /// Records many auctions in one atomic step and waits until they are written, in order: a later record of the
    /// same lead replaces an earlier one.
    pub fn record_auctions(&self, records: Vec<AuctionRecord>) -> Result<(), StoreError> {
        self.write("recording auctions", move |tx| {
            for record in &records {
                insert(tx, record)?;
            }
            Ok(())
        })
    }

    /// Queues one auction's record for the store's writer without waiting for it to be written (the service's
    /// recorder); `guard` is dropped once the record has been written or has failed. Records keep the order they
    /// were queued in, with each other and with every other write: a later record of a lead replaces an earlier one.
    pub fn queue_auction<G: Send + 'static>(&self, record: AuctionRecord, guard: G) {
        self.submit("recording an auction", move |tx| {
            let written = insert(tx, &record);
            drop(guard);
            written
        });
    }

    /// The auction of `lead_id`, if recorded.
    pub fn auction(&self, lead_id: &str) -> Result<Option<AuctionRecord>, StoreError> {
        let what = "reading an auction";
        self.read(what, |tx| {
            tx.prepare_cached(
                "SELECT lead_id, publisher_id, status, received_at_unix_ms, outcome_json FROM auction
                 WHERE lead_id = ?1",
            )
            .map_err(backend(what))?
            .query_row([lead_id], |row| {
                Ok(AuctionRecord {
                    lead_id: row.get(0)?,
                    publisher_id: row.get(1)?,
                    status: row.get(2)?,
                    received_at_unix_ms: row.get(3)?,
                    outcome_json: row.get(4)?,
                })
            })
            .optional()
            .map_err(backend(what))
        })
    }

    /// The auction of `lead_id` if `publisher_id` sent it; `None` otherwise (so ids of others' leads do not leak).
    pub fn auction_for_publisher(
        &self,
        publisher_id: &str,
        lead_id: &str,
    ) -> Result<Option<AuctionRecord>, StoreError> {
        Ok(self.auction(lead_id)?.filter(|record| record.publisher_id == publisher_id))
    }
}

fn insert(tx: &rusqlite::Transaction<'_>, r: &AuctionRecord) -> Result<(), StoreError> {
    let what = "recording an auction";
    tx.prepare_cached(
        "INSERT INTO auction (lead_id, publisher_id, status, received_at_unix_ms, outcome_json)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (lead_id) DO UPDATE SET publisher_id = excluded.publisher_id, status = excluded.status,
            received_at_unix_ms = excluded.received_at_unix_ms, outcome_json = excluded.outcome_json",
    )
    .map_err(backend(what))?
    .execute(params![r.lead_id, r.publisher_id, r.status, r.received_at_unix_ms, r.outcome_json])
    .map_err(backend(what))?;
    Ok(())
}

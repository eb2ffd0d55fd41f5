//! Sales as the service reads them: a buyer's bought leads (with PII), a publisher's sold leads (without), returns
//! within the return window, the PII audit (who received which lead's PII, and how) and the retention purge that
//! clears old leads while keeping the sale rows.
//!
//! The sale rows themselves are written by [`AuctionStore::commit`](pingpost_engine::AuctionStore::commit) through
//! `insert_sale`, in the transaction that commits the cap reservation.

use rusqlite::params;
use serde::Serialize;

use super::connection::backend;
use super::ledger::reverse_sale;
use super::sale_rows::{PiiAccess, PiiAuditEntry, audit, sales_where};
use super::sqlite::SqliteStore;
use pingpost_engine::store::{SaleReturn, StoreError, StoredSale};

/// Which sale a return names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleRef<'a> {
    /// The store's sale id.
    Id(u64),
    /// The lead id (the auction's ping id): the returning buyer's sale of that lead.
    Lead(&'a str),
}

/// A [`SaleRef`] the writer thread can take.
enum OwnedSaleRef {
    Id(u64),
    Lead(String),
}

/// Why a return was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnError {
    #[error("no such sale")]
    UnknownSale,
    /// The sale exists but was sold to another buyer (the service answers it like an unknown sale).
    #[error("the sale is not this buyer's")]
    NotYours,
    #[error("a return needs a reason")]
    MissingReason,
    #[error("the return window closed at {window_closed_at_unix_ms} (unix ms)")]
    WindowPassed { window_closed_at_unix_ms: i64 },
    #[error("the lead was already returned at {returned_at_unix_ms} (unix ms)")]
    AlreadyReturned { returned_at_unix_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a retention purge cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    /// Sales whose lead was cleared.
    pub sales: usize,
    /// Open two-step pings whose lead was cleared (they are closed as expired).
    pub pings: usize,
    /// Webhook deliveries still pending whose lead was cleared: given up, since there is nothing left to deliver.
    pub deliveries_abandoned: usize,
}

/// A page size SQLite takes, from the caller's `limit`.
fn page(limit: u32) -> i64 {
    i64::from(limit)
}

/// An `after` cursor SQLite takes (0: from the start).
fn cursor(after_sale_id: Option<u64>) -> i64 {
    after_sale_id.map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX))
}

impl SqliteStore {
    /// The leads `buyer_id` bought, with their lead (until purged), in sale order after `after_sale_id`, at most
    /// `limit`.
    pub fn sales_for_buyer(
        &self,
        buyer_id: &str,
        after_sale_id: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredSale>, StoreError> {
        let what = "listing a buyer's sales";
        self.read(what, |tx| {
            sales_where(
                tx,
                what,
                "buyer_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![buyer_id, cursor(after_sale_id), page(limit)],
                true,
            )
        })
    }

    /// `buyer_id`'s sale of the lead `lead_id`, with the lead (until purged); `None` when it bought no such lead
    /// (whether or not someone else did).
    pub fn sale_for_buyer(&self, buyer_id: &str, lead_id: &str) -> Result<Option<StoredSale>, StoreError> {
        let what = "reading a buyer's sale";
        self.read(what, |tx| {
            let sales = sales_where(
                tx,
                what,
                "buyer_id = ?1 AND lead_id = ?2 ORDER BY id LIMIT 1",
                params![buyer_id, lead_id],
                true,
            )?;
            Ok(sales.into_iter().next())
        })
    }

    /// The sales of `publisher_id`'s leads in sale order after `after_sale_id`, at most `limit`; without the lead
    /// (a publisher sees whom it sold to and for how much, not the PII again).
    pub fn sales_for_publisher(
        &self,
        publisher_id: &str,
        after_sale_id: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredSale>, StoreError> {
        let what = "listing a publisher's sales";
        self.read(what, |tx| {
            sales_where(
                tx,
                what,
                "publisher_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![publisher_id, cursor(after_sale_id), page(limit)],
                false,
            )
        })
    }

    /// Every sale of the lead `lead_id` (several when shared), without the lead: for operators.
    pub fn sales_of_lead(&self, lead_id: &str) -> Result<Vec<StoredSale>, StoreError> {
        let what = "listing a lead's sales";
        self.read(what, |tx| sales_where(tx, what, "lead_id = ?1 ORDER BY id", params![lead_id], false))
    }

    /// Marks `buyer_id`'s sale returned with `reason` at `now_unix_ms`, if within `return_window_ms` of the sale, and
    /// reverses its postings in the same step; returns the sale as it now stands (without the lead).
    pub fn return_sale(
        &self,
        buyer_id: &str,
        sale: SaleRef<'_>,
        reason: &str,
        now_unix_ms: i64,
        return_window_ms: i64,
    ) -> Result<StoredSale, ReturnError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReturnError::MissingReason);
        }
        let what = "returning a sale";
        let (buyer_id, reason) = (buyer_id.to_owned(), reason.to_owned());
        let sale = match sale {
            SaleRef::Id(id) => OwnedSaleRef::Id(id),
            SaleRef::Lead(lead_id) => OwnedSaleRef::Lead(lead_id.to_owned()),
        };
        self.write(what, move |tx| {
            let found = match sale {
                OwnedSaleRef::Id(id) => {
                    let id = i64::try_from(id).map_err(|_| ReturnError::UnknownSale)?;
                    sales_where(tx, what, "id = ?1", params![id], false)?
                }
                // The returning buyer's own sale of the lead first, so a shared lead finds the right one.
                OwnedSaleRef::Lead(lead_id) => sales_where(
                    tx,
                    what,
                    "lead_id = ?1 ORDER BY buyer_id = ?2 DESC, id LIMIT 1",
                    params![lead_id, buyer_id],
                    false,
                )?,
            };
            let mut found = found.into_iter().next().ok_or(ReturnError::UnknownSale)?;
            if found.buyer_id != buyer_id {
                return Err(ReturnError::NotYours);
            }
            if let Some(returned) = &found.returned {
                return Err(ReturnError::AlreadyReturned { returned_at_unix_ms: returned.returned_at_unix_ms });
            }
            let window_closed_at_unix_ms = found.sold_at_unix_ms.saturating_add(return_window_ms);
            if now_unix_ms > window_closed_at_unix_ms {
                return Err(ReturnError::WindowPassed { window_closed_at_unix_ms });
            }
            let id = i64::try_from(found.sale_id).map_err(|_| ReturnError::UnknownSale)?;
            tx.prepare_cached(
                "UPDATE sale SET returned_at_unix_ms = ?2, return_reason = ?3
                 WHERE id = ?1 AND returned_at_unix_ms IS NULL",
            )
            .map_err(backend(what))?
            .execute(params![id, now_unix_ms, reason])
            .map_err(backend(what))?;
            // The money moves back in the same step: the buyer is credited, payout and margin reversed.
            reverse_sale(tx, found.sale_id, &buyer_id, &reason, now_unix_ms)?;
            found.returned = Some(SaleReturn { reason, returned_at_unix_ms: now_unix_ms });
            Ok(found)
        })
    }

    /// Records that `principal_id` read the PII of `lead_id` (sold by `campaign_id`, if known) through the API.
    pub fn record_pii_access(
        &self,
        principal_id: &str,
        lead_id: &str,
        campaign_id: Option<&str>,
        how: PiiAccess,
        now_unix_ms: i64,
    ) -> Result<(), StoreError> {
        let (principal_id, lead_id) = (principal_id.to_owned(), lead_id.to_owned());
        let campaign_id = campaign_id.map(str::to_owned);
        self.write("auditing a PII hand-over", move |tx| {
            audit(tx, &principal_id, &lead_id, campaign_id.as_deref(), how, now_unix_ms)
        })
    }

    /// Every recorded hand-over of `lead_id`'s PII, oldest first.
    pub fn pii_audit(&self, lead_id: &str) -> Result<Vec<PiiAuditEntry>, StoreError> {
        let what = "reading the PII audit";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT principal_id, campaign_id, how, at_unix_ms FROM pii_audit WHERE lead_id = ?1 ORDER BY id",
                )
                .map_err(backend(what))?;
            let rows = stmt
                .query_map([lead_id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, String>(2)?, row.get(3)?))
                })
                .map_err(backend(what))?;
            let mut entries = Vec::new();
            for row in rows {
                let (principal_id, campaign_id, how, at_unix_ms) = row.map_err(backend(what))?;
                let how = PiiAccess::parse(&how)
                    .ok_or_else(|| StoreError::corrupt(what, format!("unknown access {how:?}")))?;
                entries.push(PiiAuditEntry { principal_id, lead_id: lead_id.to_owned(), campaign_id, how, at_unix_ms });
            }
            Ok(entries)
        })
    }

    /// Clears the lead (PII) of every sale made, and every open two-step ping created, before `older_than_unix_ms`;
    /// the rows stay (ids, prices, times, audit). A pending webhook delivery of a cleared sale is given up. The
    /// write-ahead log is then checkpointed and truncated so the cleared leads do not linger in it either (with
    /// `secure_delete`, the database pages that held them are overwritten).
    pub fn purge_pii(&self, older_than_unix_ms: i64) -> Result<PurgeCounts, StoreError> {
        let what = "purging PII past retention";
        let counts = self.purge_pii_rows(older_than_unix_ms)?;
        if counts != PurgeCounts::default() {
            self.truncate_log(what)?;
        }
        Ok(counts)
    }

    /// Closes every open two-step ping that expired at or before `now_unix_ms` and clears its lead (PII), and releases
    /// every expired hold (what a standing quote kept of the caps) in the same step: a ping nobody posted keeps the
    /// consumer's data, and its quote the caps, no longer than its expiry plus the sweep's interval. The write-ahead
    /// log is then truncated, as by [`SqliteStore::purge_pii`]. Returns how many pings were closed.
    pub fn expire_pings(&self, now_unix_ms: i64) -> Result<usize, StoreError> {
        let what = "expiring two-step pings";
        let expired = self.write(what, move |tx| {
            // A quote's holds expire with it (no hold outlives its ping's expiry).
            super::sqlite::release_expired_holds(tx, now_unix_ms)?;
            tx.prepare_cached(
                "UPDATE ping SET state = 'expired', record_json = NULL
                 WHERE state = 'open' AND expires_at_unix_ms <= ?1",
            )
            .map_err(backend(what))?
            .execute([now_unix_ms])
            .map_err(backend(what))
        })?;
        if expired > 0 {
            self.truncate_log(what)?;
        }
        Ok(expired)
    }

    /// Checkpoints the write-ahead log and truncates it, so rows just cleared do not linger in its frames. Best
    /// effort: a reader holding an old snapshot can keep part of the log until the next call.
    fn truncate_log(&self, what: &'static str) -> Result<(), StoreError> {
        self.with_reader(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(backend(what))
        })
    }

    fn purge_pii_rows(&self, older_than_unix_ms: i64) -> Result<PurgeCounts, StoreError> {
        let what = "purging PII past retention";
        self.write(what, move |tx| {
            let deliveries_abandoned = tx
                .prepare_cached(
                    "UPDATE delivery SET status = 'failed',
                        last_error = 'the lead was purged by the PII retention before it could be delivered'
                     WHERE status = 'pending' AND sale_id IN
                        (SELECT id FROM sale WHERE sold_at_unix_ms < ?1 AND lead_json IS NOT NULL)",
                )
                .map_err(backend(what))?
                .execute([older_than_unix_ms])
                .map_err(backend(what))?;
            let sales = tx
                .prepare_cached("UPDATE sale SET lead_json = NULL WHERE sold_at_unix_ms < ?1 AND lead_json IS NOT NULL")
                .map_err(backend(what))?
                .execute([older_than_unix_ms])
                .map_err(backend(what))?;
            let pings = tx
                .prepare_cached(
                    "UPDATE ping SET state = 'expired', record_json = NULL
                     WHERE state = 'open' AND created_at_unix_ms < ?1",
                )
                .map_err(backend(what))?
                .execute([older_than_unix_ms])
                .map_err(backend(what))?;
            Ok(PurgeCounts { sales, pings, deliveries_abandoned })
        })
    }
}

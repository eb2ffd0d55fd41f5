//! The webhook delivery outbox: one row per webhook sale, inserted in the sale's own transaction (see
//! `sales.rs`' `insert_sale`), so a sold lead is never lost between the sale and its delivery. The
//! worker (the service's `outbox.rs`) reads what is due, POSTs it to the row's URL and marks the outcome here.

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::connection::{backend, unreadable_json};
use super::sale_rows::{PiiAccess, audit};
use super::sqlite::SqliteStore;
use pingpost_engine::store::StoreError;
use pingpost_model::Lead;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The buyer's webhook answered 2xx.
    Delivered,
    /// Given up (after the last attempt, or because the lead was purged); kept for operators.
    Failed,
}

impl DeliveryStatus {
    /// The snake_case name stored in the table.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// One webhook delivery and the sale it delivers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxDelivery {
    pub id: u64,
    pub sale_id: u64,
    /// The auction's ping id, sent as the post's `ping_id`.
    pub lead_id: String,
    pub campaign_id: String,
    pub buyer_id: String,
    /// The campaign's webhook when the lead was sold: the only URL this delivery ever goes to.
    pub url: String,
    pub price_cents: u32,
    pub buyer_ref: Option<String>,
    /// The full lead: present in [`SqliteStore::due_deliveries`] (what the worker sends), `None` in listings.
    #[serde(skip)]
    pub lead: Option<Lead>,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at_unix_ms: i64,
    pub next_attempt_at_unix_ms: i64,
    pub last_error: Option<String>,
    pub delivered_at_unix_ms: Option<i64>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try again at this time (unix ms).
    At(i64),
    /// Stop: the delivery is marked failed.
    GiveUp,
}

/// Why a delivery could not be marked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error("delivery {0} is not pending (unknown, delivered or given up)")]
    NotPending(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const DELIVERY_COLUMNS: &str = "d.id, d.sale_id, s.lead_id, s.campaign_id, s.buyer_id, d.url, s.price_cents, \
                                s.buyer_ref, s.lead_json, d.status, d.attempts, d.created_at_unix_ms, \
                                d.next_attempt_at_unix_ms, d.last_error, d.delivered_at_unix_ms";

/// The deliveries matching `clause` (over `d` the delivery and `s` its sale), with the lead when `with_lead`.
fn deliveries_where(
    tx: &Transaction<'_>,
    what: &'static str,
    clause: &str,
    params: impl rusqlite::Params,
    with_lead: bool,
) -> Result<Vec<OutboxDelivery>, StoreError> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM delivery d JOIN sale s ON s.id = d.sale_id WHERE {clause}");
    let mut stmt = tx.prepare_cached(&sql).map_err(backend(what))?;
    let mut rows = stmt.query(params).map_err(backend(what))?;
    let mut deliveries = Vec::new();
    let get_error = backend(what);
    let id_of = |id: i64| u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative id {id}")));
    while let Some(row) = rows.next().map_err(&get_error)? {
        let lead = match row.get::<_, Option<String>>(8).map_err(&get_error)? {
            Some(json) if with_lead => Some(serde_json::from_str::<Lead>(&json).map_err(unreadable_json(what))?),
            _ => None,
        };
        let status: String = row.get(9).map_err(&get_error)?;
        deliveries.push(OutboxDelivery {
            id: id_of(row.get(0).map_err(&get_error)?)?,
            sale_id: id_of(row.get(1).map_err(&get_error)?)?,
            lead_id: row.get(2).map_err(&get_error)?,
            campaign_id: row.get(3).map_err(&get_error)?,
            buyer_id: row.get(4).map_err(&get_error)?,
            url: row.get(5).map_err(&get_error)?,
            price_cents: row.get(6).map_err(&get_error)?,
            buyer_ref: row.get(7).map_err(&get_error)?,
            lead,
            status: DeliveryStatus::parse(&status)
                .ok_or_else(|| StoreError::corrupt(what, format!("bad delivery status {status:?}")))?,
            attempts: row.get(10).map_err(&get_error)?,
            created_at_unix_ms: row.get(11).map_err(&get_error)?,
            next_attempt_at_unix_ms: row.get(12).map_err(&get_error)?,
            last_error: row.get(13).map_err(&get_error)?,
            delivered_at_unix_ms: row.get(14).map_err(&get_error)?,
        });
    }
    Ok(deliveries)
}

/// A delivery id as SQLite stores it (an id too large to exist is simply not pending).
fn key(id: u64) -> Result<i64, MarkError> {
    i64::try_from(id).map_err(|_| MarkError::NotPending(id))
}

impl SqliteStore {
    /// Up to `limit` pending deliveries due at `now_unix_ms` (oldest due first), with their lead.
    pub fn due_deliveries(&self, now_unix_ms: i64, limit: u32) -> Result<Vec<OutboxDelivery>, StoreError> {
        let what = "reading due deliveries";
        self.read(what, |tx| {
            deliveries_where(
                tx,
                what,
                "d.status = 'pending' AND d.next_attempt_at_unix_ms <= ?1 ORDER BY d.next_attempt_at_unix_ms, d.id
                 LIMIT ?2",
                params![now_unix_ms, i64::from(limit)],
                true,
            )
        })
    }

    /// When the earliest pending delivery is due, if any is pending.
    pub fn next_delivery_due_at(&self) -> Result<Option<i64>, StoreError> {
        let what = "reading the next due delivery";
        self.read(what, |tx| {
            tx.prepare_cached("SELECT MIN(next_attempt_at_unix_ms) FROM delivery WHERE status = 'pending'")
                .map_err(backend(what))?
                .query_row([], |row| row.get(0))
                .map_err(backend(what))
        })
    }

    /// Audits, before they are sent, the hand-over of each of `deliveries`' leads to its buyer's webhook: one row per
    /// attempt, whatever the webhook then answers (a delivery without its lead hands nothing over: no row).
    pub fn audit_delivery_attempts(&self, deliveries: &[OutboxDelivery], now_unix_ms: i64) -> Result<(), StoreError> {
        let rows: Vec<(String, String, String)> = deliveries
            .iter()
            .filter(|d| d.lead.is_some())
            .map(|d| (d.buyer_id.clone(), d.lead_id.clone(), d.campaign_id.clone()))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.write("auditing webhook deliveries", move |tx| {
            for (buyer_id, lead_id, campaign_id) in &rows {
                audit(tx, buyer_id, lead_id, Some(campaign_id), PiiAccess::Webhook, now_unix_ms)?;
            }
            Ok(())
        })
    }

    /// Marks a pending delivery delivered at `now_unix_ms`.
    pub fn mark_delivered(&self, id: u64, now_unix_ms: i64) -> Result<(), MarkError> {
        let what = "marking a delivery delivered";
        self.write(what, move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE delivery SET status = 'delivered', attempts = attempts + 1, delivered_at_unix_ms = ?2,
                        last_error = NULL
                     WHERE id = ?1 AND status = 'pending'",
                )
                .map_err(backend(what))?
                .execute(params![key(id)?, now_unix_ms])
                .map_err(backend(what))?;
            if changed == 0 {
                return Err(MarkError::NotPending(id));
            }
            Ok(())
        })
    }

    /// Records a failed attempt of a pending delivery with its `error`: due again at `next`, or given up.
    pub fn mark_failed(&self, id: u64, error: &str, next: NextAttempt) -> Result<(), MarkError> {
        let what = "marking a delivery attempt failed";
        let (status, next_at) = match next {
            NextAttempt::At(at) => (DeliveryStatus::Pending, Some(at)),
            NextAttempt::GiveUp => (DeliveryStatus::Failed, None),
        };
        let error = error.to_owned();
        self.write(what, move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE delivery SET status = ?2, attempts = attempts + 1, last_error = ?3,
                        next_attempt_at_unix_ms = COALESCE(?4, next_attempt_at_unix_ms)
                     WHERE id = ?1 AND status = 'pending'",
                )
                .map_err(backend(what))?
                .execute(params![key(id)?, status.as_str(), error, next_at])
                .map_err(backend(what))?;
            if changed == 0 {
                return Err(MarkError::NotPending(id));
            }
            Ok(())
        })
    }

    /// Every delivery (with `status`, or all), oldest first, without the lead: for operators.
    pub fn deliveries(&self, status: Option<DeliveryStatus>) -> Result<Vec<OutboxDelivery>, StoreError> {
        let what = "listing deliveries";
        self.read(what, |tx| {
            deliveries_where(
                tx,
                what,
                "?1 IS NULL OR d.status = ?1 ORDER BY d.id",
                params![status.map(DeliveryStatus::as_str)],
                false,
            )
        })
    }
}

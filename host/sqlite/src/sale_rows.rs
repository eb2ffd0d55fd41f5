//! A sale's rows: the sale itself (with the full lead, for its buyer) and the audit of every hand-over of its PII.
//! Written in the auction's own step (`sqlite.rs`) and read by the service's queries (`sales.rs`).

use rusqlite::{Params, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use super::connection::{backend, unreadable_json};
use pingpost_engine::store::{SaleDelivery, SaleRecord, SaleReturn, StoreError, StoredSale};
use pingpost_model::Lead;

/// How a principal received a lead's PII.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PiiAccess {
    /// The full lead was posted to an HTTP buyer (whatever it answered, or if it never did).
    Post,
    /// The outbox sent the lead to the buyer's webhook (one row per attempt, whatever came back).
    Webhook,
    /// Read through the service's API.
    Api,
}

impl PiiAccess {
    /// The snake_case name stored in the audit.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// One hand-over of a lead's PII.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PiiAuditEntry {
    /// Who received it: the buyer for `post` and `webhook`, the API principal for `api`.
    pub principal_id: String,
    pub lead_id: String,
    pub campaign_id: Option<String>,
    pub how: PiiAccess,
    pub at_unix_ms: i64,
}

/// The columns [`sale_from_row`] reads, in order.
pub(crate) const SALE_COLUMNS: &str = "id, lead_id, campaign_id, buyer_id, publisher_id, price_cents, sold_at_unix_ms, buyer_ref, \
                            delivery, webhook_url, lead_json, returned_at_unix_ms, return_reason";

/// Records `sale` at `price_cents` (its lead serialised as `lead_json`) inside the committing transaction: a webhook
/// sale queues its delivery, due at once. Returns the id.
pub(crate) fn insert_sale(
    tx: &Transaction<'_>,
    sale: &SaleRecord,
    price_cents: u32,
    lead_json: &str,
) -> Result<u64, StoreError> {
    let what = "recording a sale";
    let url = match &sale.delivery {
        SaleDelivery::Webhook { url } => Some(url.as_str()),
        SaleDelivery::Posted | SaleDelivery::Pickup => None,
    };
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO sale (lead_id, campaign_id, buyer_id, publisher_id, price_cents, sold_at_unix_ms, buyer_ref,
                delivery, webhook_url, lead_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )
        .map_err(backend(what))?
        .query_row(
            params![
                sale.lead_id,
                sale.campaign_id,
                sale.buyer_id,
                sale.publisher_id,
                price_cents,
                sale.sold_at_unix_ms,
                sale.buyer_ref,
                sale.delivery.kind(),
                url,
                lead_json
            ],
            |row| row.get(0),
        )
        .map_err(backend(what))?;
    match &sale.delivery {
        SaleDelivery::Webhook { url } => {
            tx.prepare_cached(
                "INSERT INTO delivery (sale_id, url, status, created_at_unix_ms, next_attempt_at_unix_ms)
                 VALUES (?1, ?2, 'pending', ?3, ?3)",
            )
            .map_err(backend(what))?
            .execute(params![id, url, sale.sold_at_unix_ms])
            .map_err(backend(what))?;
        }
        // A posted lead was audited with the reservation that preceded its post.
        SaleDelivery::Posted | SaleDelivery::Pickup => {}
    }
    u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative id {id}")))
}

/// Appends one row to the PII audit.
pub(crate) fn audit(
    tx: &Transaction<'_>,
    principal_id: &str,
    lead_id: &str,
    campaign_id: Option<&str>,
    how: PiiAccess,
    at_unix_ms: i64,
) -> Result<(), StoreError> {
    let what = "auditing a PII hand-over";
    tx.prepare_cached(
        "INSERT INTO pii_audit (principal_id, lead_id, campaign_id, how, at_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(backend(what))?
    .execute(params![principal_id, lead_id, campaign_id, how.as_str(), at_unix_ms])
    .map_err(backend(what))?;
    Ok(())
}

/// The sales matching `clause` (a SQL `WHERE` body, with its `ORDER BY`/`LIMIT`, over [`SALE_COLUMNS`]), with their
/// lead when `with_lead`.
pub(crate) fn sales_where(
    tx: &Transaction<'_>,
    what: &'static str,
    clause: &str,
    params: impl Params,
    with_lead: bool,
) -> Result<Vec<StoredSale>, StoreError> {
    let mut stmt =
        tx.prepare_cached(&format!("SELECT {SALE_COLUMNS} FROM sale WHERE {clause}")).map_err(backend(what))?;
    let mut rows = stmt.query(params).map_err(backend(what))?;
    let mut sales = Vec::new();
    while let Some(row) = rows.next().map_err(backend(what))? {
        sales.push(sale_from_row(row, what, with_lead)?);
    }
    Ok(sales)
}

/// One sale row of [`SALE_COLUMNS`].
pub(crate) fn sale_from_row(row: &Row<'_>, what: &'static str, with_lead: bool) -> Result<StoredSale, StoreError> {
    let get_error = backend(what);
    let id: i64 = row.get(0).map_err(&get_error)?;
    let delivery: String = row.get(8).map_err(&get_error)?;
    let delivery = match (delivery.as_str(), row.get::<_, Option<String>>(9).map_err(&get_error)?) {
        ("posted", _) => SaleDelivery::Posted,
        ("pickup", _) => SaleDelivery::Pickup,
        ("webhook", Some(url)) => SaleDelivery::Webhook { url },
        (other, _) => return Err(StoreError::corrupt(what, format!("sale {id} has bad delivery {other:?}"))),
    };
    let lead = match row.get::<_, Option<String>>(10).map_err(&get_error)? {
        Some(json) if with_lead => Some(serde_json::from_str::<Lead>(&json).map_err(unreadable_json(what))?),
        _ => None,
    };
    let returned = match (row.get::<_, Option<i64>>(11).map_err(&get_error)?, row.get(12).map_err(&get_error)?) {
        (Some(returned_at_unix_ms), Some(reason)) => Some(SaleReturn { reason, returned_at_unix_ms }),
        _ => None,
    };
    Ok(StoredSale {
        sale_id: u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative sale id {id}")))?,
        lead_id: row.get(1).map_err(&get_error)?,
        campaign_id: row.get(2).map_err(&get_error)?,
        buyer_id: row.get(3).map_err(&get_error)?,
        publisher_id: row.get(4).map_err(&get_error)?,
        price_cents: row.get(5).map_err(&get_error)?,
        sold_at_unix_ms: row.get(6).map_err(&get_error)?,
        buyer_ref: row.get(7).map_err(&get_error)?,
        delivery,
        lead,
        returned,
    })
}

//! The journal's rows: appending an event with its postings (and the running balances they move), reading events
//! back, and a buyer's funds. Written in the auction's own step for a sale (`sqlite.rs`) and by the service's
//! queries for everything else (`ledger.rs`).

use rusqlite::{OptionalExtension, Params, Transaction, params};

use super::connection::backend;
use pingpost_engine::ledger::{Account, EventKind, Funds, LedgerEvent, NewEvent, Posting, balanced, sale_postings};
use pingpost_engine::store::{SaleRecord, StoreError};

/// Appends `event` and its postings, and adds them to their accounts' running balances; returns its id. Refused
/// (nothing written) unless the postings balance.
pub(crate) fn append(tx: &Transaction<'_>, event: &NewEvent) -> Result<u64, StoreError> {
    let what = "appending to the journal";
    if !balanced(&event.postings) {
        return Err(StoreError::corrupt(
            what,
            format!("the postings of a {} event do not balance", event.kind.as_str()),
        ));
    }
    let sale_id = event.sale_id.map(i64::try_from).transpose().map_err(|_| StoreError::corrupt(what, "sale id"))?;
    let reverses =
        event.reverses_event_id.map(i64::try_from).transpose().map_err(|_| StoreError::corrupt(what, "event id"))?;
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO ledger_event (kind, at_unix_ms, principal_id, lead_id, sale_id, reverses_event_id, reference, memo)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )
        .map_err(backend(what))?
        .query_row(
            params![
                event.kind.as_str(),
                event.at_unix_ms,
                event.principal_id,
                event.lead_id,
                sale_id,
                reverses,
                event.reference,
                event.memo
            ],
            |row| row.get(0),
        )
        .map_err(backend(what))?;
    let mut entry = tx
        .prepare_cached("INSERT INTO ledger_entry (event_id, account, amount_cents) VALUES (?1, ?2, ?3)")
        .map_err(backend(what))?;
    let mut balance = tx
        .prepare_cached(
            "INSERT INTO ledger_account (account, balance_cents) VALUES (?1, ?2)
             ON CONFLICT (account) DO UPDATE SET balance_cents = balance_cents + excluded.balance_cents",
        )
        .map_err(backend(what))?;
    for Posting { account, amount_cents } in &event.postings {
        let account = account.to_string();
        entry.execute(params![id, account, amount_cents]).map_err(backend(what))?;
        balance.execute(params![account, amount_cents]).map_err(backend(what))?;
    }
    u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative event id {id}")))
}

/// Appends the postings of sale `sale_id` (recorded at `price_cents`) in the sale's own transaction: nothing for a
/// free lead.
pub(crate) fn append_sale(
    tx: &Transaction<'_>,
    sale_id: u64,
    sale: &SaleRecord,
    price_cents: u32,
) -> Result<(), StoreError> {
    let postings = sale_postings(&sale.buyer_id, &sale.publisher_id, price_cents, sale.payout_cents);
    if postings.is_empty() {
        return Ok(());
    }
    append(tx, &NewEvent::sale(sale_id, &sale.lead_id, &sale.publisher_id, sale.sold_at_unix_ms, postings)).map(drop)
}

/// `account`'s running balance (0 for an account with no entries).
pub(crate) fn balance(tx: &Transaction<'_>, account: &Account) -> Result<i64, StoreError> {
    let what = "reading a balance";
    let balance: Option<i64> = tx
        .prepare_cached("SELECT balance_cents FROM ledger_account WHERE account = ?1")
        .map_err(backend(what))?
        .query_row([account.to_string()], |row| row.get(0))
        .optional()
        .map_err(backend(what))?;
    Ok(balance.unwrap_or(0))
}

/// `buyer_id`'s balance and what its pending reservations (posts in flight, standing quotes) hold.
pub(crate) fn funds(tx: &Transaction<'_>, buyer_id: &str) -> Result<Funds, StoreError> {
    let what = "reading a buyer's funds";
    let held: i64 = tx
        .prepare_cached("SELECT COALESCE(SUM(price_cents), 0) FROM reservation WHERE buyer_id = ?1")
        .map_err(backend(what))?
        .query_row([buyer_id], |row| row.get(0))
        .map_err(backend(what))?;
    Ok(Funds { balance_cents: balance(tx, &Account::buyer(buyer_id))?, held_cents: u64::try_from(held).unwrap_or(0) })
}

/// The columns [`events_where`] reads, in order.
const EVENT_COLUMNS: &str = "id, kind, at_unix_ms, principal_id, lead_id, sale_id, reverses_event_id, reference, memo";

/// The events matching `clause` (a SQL `WHERE` body over `ledger_event`, with its `ORDER BY`/`LIMIT`), with their
/// postings.
pub(crate) fn events_where(
    tx: &Transaction<'_>,
    what: &'static str,
    clause: &str,
    params: impl Params,
) -> Result<Vec<LedgerEvent>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM ledger_event WHERE {clause}"))
        .map_err(backend(what))?;
    let mut rows = stmt.query(params).map_err(backend(what))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(backend(what))? {
        let get_error = backend(what);
        let id: i64 = row.get(0).map_err(&get_error)?;
        let kind: String = row.get(1).map_err(&get_error)?;
        let kind: EventKind =
            kind.parse().map_err(|_| StoreError::corrupt(what, format!("event {id} has unknown kind {kind:?}")))?;
        let unsigned = |value: Option<i64>| value.map(|v| u64::try_from(v).unwrap_or(0));
        events.push(LedgerEvent {
            event_id: u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative event id {id}")))?,
            kind,
            at_unix_ms: row.get(2).map_err(&get_error)?,
            principal_id: row.get(3).map_err(&get_error)?,
            lead_id: row.get(4).map_err(&get_error)?,
            sale_id: unsigned(row.get(5).map_err(&get_error)?),
            reverses_event_id: unsigned(row.get(6).map_err(&get_error)?),
            reference: row.get(7).map_err(&get_error)?,
            memo: row.get(8).map_err(&get_error)?,
            postings: Vec::new(),
        });
    }
    let mut postings = tx
        .prepare_cached("SELECT account, amount_cents FROM ledger_entry WHERE event_id = ?1 ORDER BY account")
        .map_err(backend(what))?;
    for event in &mut events {
        let id = i64::try_from(event.event_id).unwrap_or(i64::MAX);
        let rows = postings
            .query_map([id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(backend(what))?;
        for row in rows {
            let (account, amount_cents) = row.map_err(backend(what))?;
            let account = account.parse().map_err(|e| StoreError::corrupt(what, format!("{e}")))?;
            event.postings.push(Posting { account, amount_cents });
        }
    }
    Ok(events)
}

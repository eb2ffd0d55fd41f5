//! The books as the service reads and writes them: payments, adjustments, payouts and reversals appended to the
//! journal, balances now or at any past time, a buyer's funds, a publisher's payable balance, and the journal itself.
//!
//! A sale's postings are written by the auction's own step (`sqlite.rs`), a return's by [`SqliteStore::return_sale`]
//! in the return's transaction; both through `ledger_rows.rs`.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::connection::backend;
use super::ledger_rows::{append, balance, events_where, funds};
use super::sqlite::SqliteStore;
use pingpost_engine::ledger::{Account, EventKind, Funds, LedgerEvent, NewEvent, reversed};
use pingpost_engine::store::StoreError;

/// Why an event was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("no event {0} in the journal")]
    UnknownEvent(u64),
    /// Only payments, adjustments and payouts are reversed this way (a sale is undone by its return).
    #[error("a {} event cannot be reversed (only payments, adjustments and payouts can)", .0.as_str())]
    NotReversible(EventKind),
    #[error("event {event_id} was already reversed by event {reversed_by}")]
    AlreadyReversed { event_id: u64, reversed_by: u64 },
    /// A different event of this kind already has this reference.
    #[error("reference {reference:?} is already recorded, as event {event_id}, with other amounts")]
    ReferenceInUse { reference: String, event_id: u64 },
    /// A payout larger than what the publisher may be paid now.
    #[error("the payout exceeds the {payable_cents} cents payable now")]
    ExceedsPayable { payable_cents: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A publisher's account: what it has earned, how much of that is still within the return window, what may be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PublisherBalance {
    /// The balance of `publisher:<id>`: payouts earned less returns and payouts paid.
    pub balance_cents: i64,
    /// What the publisher earned (less returns) in the payout hold that ends now: not yet payable, since a buyer may
    /// still return those leads.
    pub held_cents: i64,
    /// What may be paid out now: the balance less what is held (never below zero).
    pub payable_cents: i64,
}

impl SqliteStore {
    /// Appends `event` (a payment, adjustment or payout) unless an event of its kind with its reference is already
    /// recorded: then that one is returned when its postings are the same (a retried request), and
    /// [`LedgerError::ReferenceInUse`] otherwise. Returns the event and whether it is new.
    pub fn record_event(&self, event: NewEvent) -> Result<(LedgerEvent, bool), LedgerError> {
        self.write("recording a ledger event", move |tx| record(tx, event))
    }

    /// Pays `amount_cents` out to publisher `publisher_id` (recorded by `principal_id` at `now_unix_ms`), refused
    /// when it exceeds what is payable now (see [`SqliteStore::publisher_balance`]); a reference makes it idempotent
    /// as [`SqliteStore::record_event`] does.
    pub fn record_payout(
        &self,
        publisher_id: &str,
        event: NewEvent,
        hold_ms: i64,
    ) -> Result<(LedgerEvent, bool), LedgerError> {
        let publisher_id = publisher_id.to_owned();
        self.write("recording a payout", move |tx| {
            if let Some(existing) = by_reference(tx, &event)? {
                return same_or_conflict(existing, &event).map(|e| (e, false));
            }
            let paid: i64 = event.postings.iter().filter(|p| p.amount_cents < 0).map(|p| -p.amount_cents).sum();
            let payable = publisher_balance(tx, &publisher_id, event.at_unix_ms, hold_ms)?.payable_cents;
            if paid > payable {
                return Err(LedgerError::ExceedsPayable { payable_cents: payable });
            }
            record(tx, event)
        })
    }

    /// Reverses event `event_id` (a payment, adjustment or payout recorded in error) with a new event of the opposite
    /// postings, caused by `principal_id` at `at_unix_ms` with `memo`.
    pub fn reverse_event(
        &self,
        event_id: u64,
        principal_id: &str,
        memo: Option<String>,
        at_unix_ms: i64,
    ) -> Result<LedgerEvent, LedgerError> {
        let principal_id = principal_id.to_owned();
        self.write("reversing a ledger event", move |tx| {
            let what = "reversing a ledger event";
            let key = i64::try_from(event_id).map_err(|_| LedgerError::UnknownEvent(event_id))?;
            let original = events_where(tx, what, "id = ?1", [key])?
                .into_iter()
                .next()
                .ok_or(LedgerError::UnknownEvent(event_id))?;
            if !matches!(original.kind, EventKind::Payment | EventKind::Adjustment | EventKind::Payout) {
                return Err(LedgerError::NotReversible(original.kind));
            }
            if let Some(reversed_by) = reversal_of(tx, event_id)? {
                return Err(LedgerError::AlreadyReversed { event_id, reversed_by });
            }
            let reversal = NewEvent {
                reverses_event_id: Some(event_id),
                memo,
                ..NewEvent::new(EventKind::Reversal, &principal_id, at_unix_ms, reversed(&original.postings))
            };
            let id = append(tx, &reversal)?;
            Ok(reversal.stored(id))
        })
    }

    /// `account`'s balance: now, or as it stood at `at_unix_ms` (every event at or before it).
    pub fn balance(&self, account: &Account, at_unix_ms: Option<i64>) -> Result<i64, StoreError> {
        let what = "reading a balance";
        self.read(what, |tx| match at_unix_ms {
            None => balance(tx, account),
            Some(at) => tx
                .prepare_cached(
                    "SELECT COALESCE(SUM(e.amount_cents), 0) FROM ledger_entry e
                     JOIN ledger_event v ON v.id = e.event_id WHERE e.account = ?1 AND v.at_unix_ms <= ?2",
                )
                .map_err(backend(what))?
                .query_row(params![account.to_string(), at], |row| row.get(0))
                .map_err(backend(what)),
        })
    }

    /// `buyer_id`'s funds now: its balance and what its pending sales and quotes hold.
    pub fn buyer_funds(&self, buyer_id: &str) -> Result<Funds, StoreError> {
        self.read("reading a buyer's funds", |tx| funds(tx, buyer_id))
    }

    /// `publisher_id`'s balance at `now_unix_ms`, and how much of it is payable when payouts are held for `hold_ms`
    /// after each sale.
    pub fn publisher_balance(
        &self,
        publisher_id: &str,
        now_unix_ms: i64,
        hold_ms: i64,
    ) -> Result<PublisherBalance, StoreError> {
        self.read("reading a publisher's balance", |tx| publisher_balance(tx, publisher_id, now_unix_ms, hold_ms))
    }

    /// The journal in order after event `after_event_id`, at most `limit` events: every event, or those posting to
    /// `account`.
    pub fn journal(
        &self,
        account: Option<&Account>,
        after_event_id: Option<u64>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, StoreError> {
        let what = "reading the journal";
        let after = after_event_id.map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX));
        self.read(what, |tx| match account {
            None => events_where(tx, what, "id > ?1 ORDER BY id LIMIT ?2", params![after, limit]),
            Some(account) => events_where(
                tx,
                what,
                "id IN (SELECT event_id FROM ledger_entry WHERE account = ?1 AND event_id > ?2
                    ORDER BY event_id LIMIT ?3) ORDER BY id",
                params![account.to_string(), after, limit],
            ),
        })
    }

    /// The whole journal's sum (zero unless the books are broken) and every account whose running balance differs
    /// from the sum of its entries (none unless they are): what an operator's check and the tests read.
    pub fn check_journal(&self) -> Result<JournalCheck, StoreError> {
        let what = "checking the journal";
        self.read(what, |tx| {
            let (events, sum_cents): (i64, i64) = tx
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM ledger_event), (SELECT COALESCE(SUM(amount_cents), 0) FROM ledger_entry)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(backend(what))?;
            let mut stmt = tx
                .prepare(
                    "SELECT a.account FROM ledger_account a
                     LEFT JOIN (SELECT account, SUM(amount_cents) AS total FROM ledger_entry GROUP BY account) e
                        ON e.account = a.account
                     WHERE a.balance_cents <> COALESCE(e.total, 0)
                     UNION SELECT account FROM ledger_entry WHERE account NOT IN (SELECT account FROM ledger_account)",
                )
                .map_err(backend(what))?;
            let accounts_off = stmt
                .query_map([], |row| row.get(0))
                .map_err(backend(what))?
                .collect::<Result<Vec<String>, _>>()
                .map_err(backend(what))?;
            Ok(JournalCheck { events: u64::try_from(events).unwrap_or(0), sum_cents, accounts_off })
        })
    }
}

/// What [`SqliteStore::check_journal`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JournalCheck {
    pub events: u64,
    /// The sum of every posting: zero.
    pub sum_cents: i64,
    /// Accounts whose running balance is not the sum of their postings: none.
    pub accounts_off: Vec<String>,
}

/// Appends `event` unless its reference is recorded already (see [`SqliteStore::record_event`]).
fn record(tx: &Transaction<'_>, event: NewEvent) -> Result<(LedgerEvent, bool), LedgerError> {
    if let Some(existing) = by_reference(tx, &event)? {
        return same_or_conflict(existing, &event).map(|e| (e, false));
    }
    let id = append(tx, &event)?;
    Ok((event.stored(id), true))
}

/// The event of `event`'s kind already recorded with its reference, if any.
fn by_reference(tx: &Transaction<'_>, event: &NewEvent) -> Result<Option<LedgerEvent>, StoreError> {
    let Some(reference) = &event.reference else {
        return Ok(None);
    };
    let found = events_where(
        tx,
        "looking up a reference",
        "kind = ?1 AND reference = ?2",
        params![event.kind.as_str(), reference],
    )?;
    Ok(found.into_iter().next())
}

/// `existing` when it records what `event` asks (the same postings), else the conflict.
fn same_or_conflict(existing: LedgerEvent, event: &NewEvent) -> Result<LedgerEvent, LedgerError> {
    let asked = event.clone().stored(existing.event_id);
    if asked.postings == existing.postings {
        Ok(existing)
    } else {
        Err(LedgerError::ReferenceInUse {
            reference: event.reference.clone().unwrap_or_default(),
            event_id: existing.event_id,
        })
    }
}

/// The id of the event that reversed `event_id`, if one did.
fn reversal_of(tx: &Transaction<'_>, event_id: u64) -> Result<Option<u64>, StoreError> {
    let what = "looking up a reversal";
    let key = i64::try_from(event_id).unwrap_or(i64::MAX);
    let id: Option<i64> = tx
        .prepare_cached("SELECT id FROM ledger_event WHERE reverses_event_id = ?1")
        .map_err(backend(what))?
        .query_row([key], |row| row.get(0))
        .optional()
        .map_err(backend(what))?;
    Ok(id.map(|id| u64::try_from(id).unwrap_or(0)))
}

/// Reverses the postings of sale `sale_id` (returned by `buyer_id` at `at_unix_ms`) in the return's transaction:
/// the buyer is credited, the publisher's payout and the exchange's margin are taken back. Nothing for a sale with no
/// postings (a free lead, or one sold before the books were kept).
pub(crate) fn reverse_sale(
    tx: &Transaction<'_>,
    sale_id: u64,
    buyer_id: &str,
    reason: &str,
    at_unix_ms: i64,
) -> Result<Option<LedgerEvent>, StoreError> {
    let what = "reversing a sale's postings";
    let key = i64::try_from(sale_id).unwrap_or(i64::MAX);
    let Some(sale) = events_where(tx, what, "sale_id = ?1 AND kind = 'sale'", [key])?.into_iter().next() else {
        return Ok(None);
    };
    let event = NewEvent {
        lead_id: sale.lead_id.clone(),
        sale_id: Some(sale_id),
        reverses_event_id: Some(sale.event_id),
        memo: Some(reason.to_owned()),
        ..NewEvent::new(EventKind::Return, buyer_id, at_unix_ms, reversed(&sale.postings))
    };
    let id = append(tx, &event)?;
    Ok(Some(event.stored(id)))
}

/// See [`SqliteStore::publisher_balance`]: what the publisher earned in the hold (its sale postings less their
/// returns, of sales made after `now − hold`) is held.
fn publisher_balance(
    tx: &Transaction<'_>,
    publisher_id: &str,
    now_unix_ms: i64,
    hold_ms: i64,
) -> Result<PublisherBalance, StoreError> {
    let what = "reading a publisher's balance";
    let account = Account::publisher(publisher_id);
    let balance_cents = balance(tx, &account)?;
    let since = now_unix_ms.saturating_sub(hold_ms);
    let held: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(SUM(e.amount_cents), 0) FROM ledger_entry e
             JOIN ledger_event v ON v.id = e.event_id
             WHERE e.account = ?1 AND v.kind IN ('sale', 'return')
                AND v.sale_id IN (SELECT id FROM sale WHERE publisher_id = ?2 AND sold_at_unix_ms > ?3)",
        )
        .map_err(backend(what))?
        .query_row(params![account.to_string(), publisher_id, since], |row| row.get(0))
        .map_err(backend(what))?;
    let held_cents = held.max(0);
    Ok(PublisherBalance { balance_cents, held_cents, payable_cents: (balance_cents - held_cents).max(0) })
}

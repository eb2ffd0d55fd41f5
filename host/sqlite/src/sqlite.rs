//! [`SqliteStore`]: the engine's [`AuctionStore`] in one SQLite database file, so caps, duplicate and suppression
//! records, two-step pings and sales survive a restart. It behaves exactly like
//! [`MemoryStore`](pingpost_engine::MemoryStore) on the same calls (the storage tests run one scenario on both).
//!
//! Every method is one atomic step. Writes go to the store's [`Writer`]: one thread owning the write connection,
//! which runs every write queued in the process in one `BEGIN IMMEDIATE` transaction, each in its own savepoint, in
//! queue order, and answers after the commit (group commit). `BEGIN IMMEDIATE` takes the database's write lock up
//! front, so check-and-reserve and check-and-record cannot interleave even across processes sharing the file (a
//! waiting writer retries for up to [`BUSY_TIMEOUT`](super::BUSY_TIMEOUT)). Reads run on their own connections
//! ([`Readers`]) alongside.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::Notify;

use super::checkpointer::Checkpointer;
use super::connection::{STATEMENT_CACHE, backend, json_error, unreadable_json, wait_briefly_when_busy};
use super::ledger_rows::{append_sale, funds};
use super::migrations::{self, MigrationError};
use super::readers::Readers;
use super::sale_rows::{PiiAccess, audit, insert_sale, sales_where};
use super::writer::{Writer, WriterStats};
use pingpost_engine::config::Caps;
use pingpost_engine::identity::ConsumerKeys;
use pingpost_engine::ledger::Funds;
use pingpost_engine::store::{
    AuctionStore, CapWindows, Handover, PingClaim, PingRecord, Purchase, Reservation, ReserveError, SaleRecord,
    StoreError, StoredSale, Usage,
};

/// The write connection's page cache, as SQLite's `cache_size` takes it (negative: KiB): 16 MiB.
const WRITER_CACHE_KIB: i64 = -16_384;

/// The database's page size in bytes (SQLite's default, which the store keeps): one WAL frame holds one page.
const PAGE_BYTES: u64 = 4096;

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Once the WAL holds more than this many bytes, it is checkpointed, started over and cut back to this size.
    /// Each restart holds writes back for the syncs it needs, so a larger value means fewer pauses and a larger file.
    pub wal_restart_bytes: u64,
}

/// The WAL size past which the store restarts it by default: 1 GiB (PostgreSQL's `max_wal_size` default too). A
/// restart holds the writer back while the checkpointer syncs (5–10 ms with the WAL checkpointed every 10 ms), and the
/// next commit syncs the new WAL header, so restarts should be rare: at 2,500 leads/s the WAL grows by ~135 MB a
/// second, and with 256 MiB the restart every ~1.9 s was the largest term left of the p99 there (6.1–6.9 ms against
/// 4.5–5.0 ms at 1 GiB: BENCHMARKS.md, "Checkpoints and the WAL"). The price of a bounded WAL is this much disk.
pub const DEFAULT_WAL_RESTART_BYTES: u64 = 1 << 30;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { wal_restart_bytes: DEFAULT_WAL_RESTART_BYTES }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("configuring the database {path} ({setting}): {source}")]
    Configure {
        path: PathBuf,
        setting: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("opening the read connections of {path}: {source}")]
    Readers {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("starting the writer thread of {path}: {source}")]
    Writer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the WAL checkpointer of {path}: {source}")]
    Checkpointer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the database {path} refused WAL mode (journal mode is {mode:?})")]
    NotWal { path: PathBuf, mode: String },
    #[error("migrating the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: MigrationError,
    },
}

/// The engine's store in a SQLite file (WAL, `synchronous=NORMAL`, foreign keys on, schema migrated on open).
pub struct SqliteStore {
    path: PathBuf,
    /// Owns the write connection; every write goes through it (declared first: dropped first, so what is queued is
    /// written before the checkpointer's last checkpoint).
    writer: Writer,
    readers: Readers,
    /// Signalled after a webhook sale queues a delivery, so the outbox worker wakes at once.
    outbox: Arc<Notify>,
    /// Checkpoints the WAL on its own connection, so no request's commit pays for it.
    _checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database at `path` and brings its schema up to
    /// date. Refuses a database whose schema is newer than this build knows.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`SqliteStore::open`] with `options` instead of the defaults.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir { path: dir.to_owned(), source })?;
        }
        let mut conn = Connection::open(&path).map_err(|source| OpenError::Open { path: path.clone(), source })?;
        let configure = |setting: &'static str| {
            let path = path.clone();
            move |source| OpenError::Configure { path, setting, source }
        };
        wait_briefly_when_busy(&mut conn).map_err(configure("busy_handler"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(configure("journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NotWal { path, mode });
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(configure("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true).map_err(configure("foreign_keys"))?;
        // Purged PII is overwritten in the pages that held it rather than left in free space.
        conn.pragma_update(None, "secure_delete", "FAST").map_err(configure("secure_delete"))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrations::migrate(&mut conn).map_err(|source| OpenError::Migrate { path: path.clone(), source })?;
        // Checkpoints run on the checkpointer's connection instead of inside a request's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(configure("wal_autocheckpoint"))?;
        // A batch of the writer changes many pages before its commit: keep them all in the cache (else SQLite spills
        // them to the WAL mid-batch and reads them back), and keep each write's savepoint journal in memory (else a
        // large one spills to a temp file).
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(configure("cache_size"))?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(configure("temp_store"))?;
        // When the checkpointer restarts a long WAL, the next commit cuts the file back to this size.
        let wal_limit = i64::try_from(options.wal_restart_bytes).unwrap_or(i64::MAX);
        conn.pragma_update(None, "journal_size_limit", wal_limit).map_err(configure("journal_size_limit"))?;
        let readers = Readers::open(&path).map_err(|source| OpenError::Readers { path: path.clone(), source })?;
        let restart_frames = (wal_limit / PAGE_BYTES as i64).max(1);
        let checkpointer = Checkpointer::start(&path, restart_frames)
            .map_err(|source| OpenError::Checkpointer { path: path.clone(), source })?;
        let writer = Writer::start(conn, super::writer::HOLD)
            .map_err(|source| OpenError::Writer { path: path.clone(), source })?;
        Ok(SqliteStore { path, writer, readers, outbox: Arc::new(Notify::new()), _checkpointer: checkpointer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::user_version(&*self.readers.get()?).map_err(backend("reading the schema version"))
    }

    /// Reservations neither committed nor released. Unlike [`MemoryStore`](pingpost_engine::MemoryStore)'s, they
    /// survive a crash: after a restart they still count against caps until released.
    pub fn pending_reservations(&self) -> Result<usize, StoreError> {
        let what = "counting reservations";
        let count: i64 = self.read(what, |tx| {
            tx.query_row("SELECT COUNT(*) FROM reservation", [], |row| row.get(0)).map_err(backend(what))
        })?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Wakes the outbox worker when `sale`, just committed, queued a webhook delivery.
    fn queued(&self, sale: &SaleRecord) {
        if matches!(sale.delivery, pingpost_engine::SaleDelivery::Webhook { .. }) {
            self.outbox.notify_one();
        }
    }

    /// Notified each time a committed sale queues a webhook delivery: the outbox worker waits on it.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// Settles the two-step posts a crash cut short (pings claimed, `posting`): one that sold is `posted` (its lead
    /// cleared); one that did not is `open` again, so the publisher's retry of the post runs it. Run at start, before
    /// any auction. Returns how many went back to `open`.
    pub fn reopen_interrupted_posts(&self) -> Result<usize, StoreError> {
        let what = "reopening interrupted posts";
        self.write(what, move |tx| {
            tx.execute(
                "UPDATE ping SET state = 'posted', record_json = NULL
                    WHERE state = 'posting' AND EXISTS (SELECT 1 FROM sale WHERE sale.lead_id = ping.ping_id)",
                [],
            )
            .map_err(backend(what))?;
            tx.execute("UPDATE ping SET state = 'open' WHERE state = 'posting'", []).map_err(backend(what))
        })
    }

    /// Gives back every reservation made before `older_than_unix_ms` (or before reservations were timed), and every
    /// hold that expired before it: pending sales a crash left behind, which would otherwise count against caps and
    /// suppression for ever. An unexpired hold stays: its quote still stands, and its ping can still be posted. Run
    /// at start, before any auction, with a cut-off older than the longest post. Returns how many were released.
    pub fn release_stale_reservations(&self, older_than_unix_ms: i64) -> Result<usize, StoreError> {
        let what = "releasing stale reservations";
        self.write(what, move |tx| {
            let stale = "SELECT id FROM reservation
                WHERE CASE WHEN expires_at_unix_ms IS NULL
                    THEN reserved_at_unix_ms IS NULL OR reserved_at_unix_ms < ?1
                    ELSE expires_at_unix_ms < ?1 END";
            release_selected(tx, what, stale, older_than_unix_ms)
        })
    }

    /// What the writer has done: batches and writes, so group commit can be seen working (tests, metrics).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Why the store cannot write now (the last batch could not be committed: a full disk, an I/O error); `None`
    /// while writes commit.
    pub fn write_failure(&self) -> Option<String> {
        self.writer.failing()
    }

    /// Tries one small write, and says whether the store can write again: what the service asks while
    /// [`SqliteStore::write_failure`] says it cannot (a disk with space again commits, and the failure clears).
    pub fn probe_write(&self, now_unix_ms: i64) -> Result<(), StoreError> {
        let what = "probing the store with a write";
        self.write(what, move |tx| {
            tx.prepare_cached("INSERT OR REPLACE INTO health_probe (id, at_unix_ms) VALUES (1, ?1)")
                .map_err(backend(what))?
                .execute([now_unix_ms])
                .map_err(backend(what))?;
            Ok(())
        })
    }

    /// A write from a synchronous caller (the service's queries in sibling files, run off the async workers): queued
    /// to the writer, run in its own savepoint of the next batch, returned once that batch is committed.
    pub(crate) fn write<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.writer.write_blocking(what, body)
    }

    /// A write from an async caller (the engine): as [`SqliteStore::write`], awaited without holding a thread.
    pub(crate) async fn write_async<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.writer.write(what, body).await
    }

    /// Waits until every write queued before this call is committed: the writer runs writes in queue order, so an
    /// empty write queued now commits after all of them.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write_async("flushing queued writes", |_| Ok::<_, StoreError>(())).await
    }

    /// A write nobody waits for (see [`Writer::submit`]).
    pub(crate) fn submit<F>(&self, what: &'static str, body: F)
    where
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        self.writer.submit(what, body)
    }

    /// A read: one consistent snapshot of what is committed, on a read connection.
    pub(crate) fn read<T>(
        &self,
        what: &'static str,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.readers.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(backend(what))?;
        let value = body(&tx)?;
        tx.commit().map_err(backend(what))?;
        Ok(value)
    }

    /// A read connection outside any transaction (for a checkpoint).
    pub(crate) fn with_reader<T>(
        &self,
        body: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.get()?;
        body(&conn)
    }
}

/// The three (period, label) pairs of `windows`.
fn periods(windows: &CapWindows) -> [(&'static str, &str); 3] {
    [("hour", &windows.hour), ("day", &windows.day), ("month", &windows.month)]
}

fn usage(tx: &Transaction<'_>, campaign_id: &str, windows: &CapWindows) -> Result<Usage, StoreError> {
    let what = "reading cap usage";
    let mut stmt = tx
        .prepare_cached(
            "SELECT period, leads, spend_cents FROM cap_counter
             WHERE campaign_id = ?1 AND ((period = 'hour' AND window_label = ?2)
                OR (period = 'day' AND window_label = ?3) OR (period = 'month' AND window_label = ?4))",
        )
        .map_err(backend(what))?;
    let mut rows = stmt.query(params![campaign_id, windows.hour, windows.day, windows.month]).map_err(backend(what))?;
    let mut usage = Usage::default();
    while let Some(row) = rows.next().map_err(backend(what))? {
        let period: String = row.get(0).map_err(backend(what))?;
        let leads: u32 = row.get(1).map_err(backend(what))?;
        let spend: i64 = row.get(2).map_err(backend(what))?;
        let spend = u64::try_from(spend).unwrap_or(0);
        match period.as_str() {
            "hour" => usage.leads_hour = leads,
            "day" => (usage.leads_day, usage.spend_day_cents) = (leads, spend),
            "month" => (usage.leads_month, usage.spend_month_cents) = (leads, spend),
            other => return Err(StoreError::corrupt(what, format!("unknown cap period {other:?}"))),
        }
    }
    Ok(usage)
}

/// Adds `leads` and `spend_cents` (either may be negative) to each of `windows`, clamped like the memory store's
/// counters (leads to 0..=u32::MAX, spend to 0 and up).
fn apply(
    tx: &Transaction<'_>,
    campaign_id: &str,
    windows: &CapWindows,
    leads: i64,
    spend_cents: i64,
) -> Result<(), StoreError> {
    let what = "updating cap counters";
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO cap_counter (campaign_id, period, window_label, leads, spend_cents)
             VALUES (?1, ?2, ?3, MAX(0, MIN(?4, 4294967295)), MAX(0, ?5))
             ON CONFLICT (campaign_id, period, window_label) DO UPDATE SET
                leads = MAX(0, MIN(leads + ?4, 4294967295)), spend_cents = MAX(0, spend_cents + ?5)",
        )
        .map_err(backend(what))?;
    for (period, label) in periods(windows) {
        stmt.execute(params![campaign_id, period, label, leads, spend_cents]).map_err(backend(what))?;
    }
    Ok(())
}

/// Takes the pending reservation `id` out of the table, or fails if it is not pending.
fn take_reservation(tx: &Transaction<'_>, id: u64) -> Result<Reservation, StoreError> {
    let what = "taking a reservation";
    let key = i64::try_from(id).map_err(|_| StoreError::UnknownReservation(id))?;
    let pending = tx
        .prepare_cached(
            "DELETE FROM reservation WHERE id = ?1
             RETURNING campaign_id, hour_window, day_window, month_window, price_cents,
                buyer_id, phone_sha256, email_sha256, reserved_at_unix_ms, suppress_since_unix_ms, expires_at_unix_ms",
        )
        .map_err(backend(what))?
        .query_row([key], |row| {
            let buyer: Option<String> = row.get(5)?;
            let keys = match (row.get(6)?, row.get(7)?) {
                (Some(phone_sha256), Some(email_sha256)) => Some(ConsumerKeys { phone_sha256, email_sha256 }),
                _ => None,
            };
            let purchase = match buyer {
                None => None,
                Some(buyer_id) => Some(Purchase {
                    buyer_id,
                    keys,
                    at_unix_ms: row.get(8)?,
                    suppress_since_unix_ms: row.get(9)?,
                    // Checked when the reservation was made; what it holds counts against the buyer's funds.
                    credit_limit_cents: None,
                }),
            };
            Ok(Reservation {
                id,
                campaign_id: row.get(0)?,
                windows: CapWindows { hour: row.get(1)?, day: row.get(2)?, month: row.get(3)? },
                price_cents: row.get(4)?,
                purchase,
                expires_at_unix_ms: row.get(10)?,
            })
        })
        .optional()
        .map_err(backend(what))?;
    pending.ok_or(StoreError::UnknownReservation(id))
}

/// Why `purchase` is suppressed, if it is: the buyer's latest committed purchase of the consumer in the window, else
/// its latest pending reservation for it (read inside the reserving transaction, so no other sale can slip between).
fn suppressed(tx: &Transaction<'_>, purchase: &Purchase) -> Result<Option<ReserveError>, StoreError> {
    let what = "checking suppression";
    let (Some(since), Some(keys)) = (purchase.suppress_since_unix_ms, &purchase.keys) else {
        return Ok(None);
    };
    let (buyer, phone, email) = (&purchase.buyer_id, &keys.phone_sha256, &keys.email_sha256);
    let bought: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(bought_at_unix_ms) FROM consumer_bought
             WHERE buyer_id = ?1 AND key_sha256 IN (?2, ?3) AND bought_at_unix_ms >= ?4",
        )
        .map_err(backend(what))?
        .query_row(params![buyer, phone, email, since], |row| row.get(0))
        .map_err(backend(what))?;
    if let Some(at_unix_ms) = bought {
        return Ok(Some(ReserveError::Suppressed { at_unix_ms, pending: false }));
    }
    let pending: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(reserved_at_unix_ms) FROM reservation
             WHERE buyer_id = ?1 AND (phone_sha256 = ?2 OR email_sha256 = ?3) AND reserved_at_unix_ms >= ?4",
        )
        .map_err(backend(what))?
        .query_row(params![buyer, phone, email, since], |row| row.get(0))
        .map_err(backend(what))?;
    Ok(pending.map(|at_unix_ms| ReserveError::Suppressed { at_unix_ms, pending: true }))
}

/// Records a sale at `price_cents` with its postings, and its buyer's purchase of the consumer when there is one.
fn record_sale(
    tx: &Transaction<'_>,
    purchase: Option<&Purchase>,
    sale: &SaleRecord,
    price_cents: u32,
    lead_json: &str,
) -> Result<u64, StoreError> {
    if let Some(purchase) = purchase {
        record_purchase(tx, purchase)?;
    }
    let sale_id = insert_sale(tx, sale, price_cents, lead_json)?;
    append_sale(tx, sale_id, sale, price_cents)?;
    Ok(sale_id)
}

/// Records that the purchase's buyer bought its consumer (keeping the latest time per hash), when it is known.
fn record_purchase(tx: &Transaction<'_>, purchase: &Purchase) -> Result<(), StoreError> {
    let what = "recording a purchase";
    let Some(keys) = &purchase.keys else {
        return Ok(());
    };
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO consumer_bought (buyer_id, key_sha256, bought_at_unix_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (buyer_id, key_sha256) DO UPDATE
                SET bought_at_unix_ms = MAX(bought_at_unix_ms, excluded.bought_at_unix_ms)",
        )
        .map_err(backend(what))?;
    for hash in hashes(keys) {
        stmt.execute(params![purchase.buyer_id, hash, purchase.at_unix_ms]).map_err(backend(what))?;
    }
    Ok(())
}

/// The two hashes a consumer is looked up by.
fn hashes(keys: &ConsumerKeys) -> [&str; 2] {
    [&keys.phone_sha256, &keys.email_sha256]
}

/// Counts a sale of `campaign_id` at `price_cents` against its caps inside the writer's transaction, or refuses it:
/// the suppression and cap checks and the counting write see every write queued before it.
fn count_sale(
    tx: &Transaction<'_>,
    campaign_id: &str,
    caps: &Caps,
    windows: &CapWindows,
    price_cents: u32,
    purchase: Option<&Purchase>,
) -> Result<(), ReserveError> {
    if let Some(purchase) = purchase
        && let Some(refusal) = suppressed(tx, purchase)?
    {
        return Err(refusal);
    }
    if let Some(cap) = usage(tx, campaign_id, windows)?.exceeded_by(caps, price_cents) {
        return Err(ReserveError::CapReached(cap));
    }
    if let Some(purchase) = purchase
        && let Some(limit) = purchase.credit_limit_cents
    {
        let funds = funds(tx, &purchase.buyer_id)?;
        if !funds.covers(limit, price_cents) {
            return Err(ReserveError::InsufficientFunds { available_cents: funds.available_cents(limit) });
        }
    }
    Ok(apply(tx, campaign_id, windows, 1, i64::from(price_cents))?)
}

/// Reserves a sale inside the writer's transaction (see [`count_sale`]).
fn reserve(
    tx: &Transaction<'_>,
    campaign_id: &str,
    caps: &Caps,
    windows: &CapWindows,
    price_cents: u32,
    purchase: Option<&Purchase>,
    handover: Option<&Handover>,
) -> Result<Reservation, ReserveError> {
    count_sale(tx, campaign_id, caps, windows, price_cents, purchase)?;
    if let Some(handover) = handover {
        audit_handover(tx, handover)?;
    }
    Ok(insert_reservation(tx, campaign_id, windows, price_cents, purchase, None)?)
}

/// Audits a hand-over of a lead's PII (a post about to be sent).
fn audit_handover(tx: &Transaction<'_>, handover: &Handover) -> Result<(), StoreError> {
    let Handover { lead_id, buyer_id, campaign_id, at_unix_ms } = handover;
    audit(tx, buyer_id, lead_id, Some(campaign_id), PiiAccess::Post, *at_unix_ms)
}

/// Takes the hold `id` out for its post inside the writer's transaction, checking `purchase`'s suppression window
/// (see `AuctionStore::take_hold`): an error rolls the job back, so a refused hold stays held.
fn take_hold(tx: &Transaction<'_>, id: u64, purchase: Option<&Purchase>) -> Result<Reservation, ReserveError> {
    let held = take_reservation(tx, id)?;
    if held.expires_at_unix_ms.is_none() {
        return Err(StoreError::UnknownReservation(id).into());
    }
    if let Some(purchase) = purchase
        && let Some(refusal) = suppressed(tx, purchase)?
    {
        return Err(refusal);
    }
    Ok(held)
}

/// Releases the holds whose expiry is at or before `now_unix_ms`.
pub(crate) fn release_expired_holds(tx: &Transaction<'_>, now_unix_ms: i64) -> Result<usize, StoreError> {
    let expired = "SELECT id FROM reservation WHERE expires_at_unix_ms IS NOT NULL AND expires_at_unix_ms <= ?1";
    release_selected(tx, "releasing expired holds", expired, now_unix_ms)
}

/// Takes out the reservations `select` (a query of their ids with one parameter, `at_unix_ms`) finds and gives their
/// counts back; returns how many.
fn release_selected(
    tx: &Transaction<'_>,
    what: &'static str,
    select: &str,
    at_unix_ms: i64,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = tx
        .prepare_cached(select)
        .map_err(backend(what))?
        .query_map([at_unix_ms], |row| row.get(0))
        .map_err(backend(what))?
        .collect::<Result<_, _>>()
        .map_err(backend(what))?;
    for id in &ids {
        let id = u64::try_from(*id).map_err(|_| StoreError::corrupt(what, format!("negative id {id}")))?;
        let pending = take_reservation(tx, id)?;
        apply(tx, &pending.campaign_id, &pending.windows, -1, -i64::from(pending.price_cents))?;
    }
    Ok(ids.len())
}

/// Keeps a pending reservation (a hold when it has an expiry) whose counts were already applied.
fn insert_reservation(
    tx: &Transaction<'_>,
    campaign_id: &str,
    windows: &CapWindows,
    price_cents: u32,
    purchase: Option<&Purchase>,
    expires_at_unix_ms: Option<i64>,
) -> Result<Reservation, StoreError> {
    let what = "recording a reservation";
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO reservation (campaign_id, hour_window, day_window, month_window, price_cents,
                buyer_id, phone_sha256, email_sha256, reserved_at_unix_ms, suppress_since_unix_ms, expires_at_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        )
        .map_err(backend(what))?
        .query_row(
            params![
                campaign_id,
                windows.hour,
                windows.day,
                windows.month,
                price_cents,
                purchase.map(|p| &p.buyer_id),
                purchase.and_then(|p| p.keys.as_ref()).map(|k| &k.phone_sha256),
                purchase.and_then(|p| p.keys.as_ref()).map(|k| &k.email_sha256),
                purchase.map(|p| p.at_unix_ms),
                purchase.and_then(|p| p.suppress_since_unix_ms),
                expires_at_unix_ms,
            ],
            |row| row.get(0),
        )
        .map_err(backend(what))?;
    let id = u64::try_from(id).map_err(|_| StoreError::corrupt(what, format!("negative id {id}")))?;
    Ok(Reservation {
        id,
        campaign_id: campaign_id.to_owned(),
        windows: windows.clone(),
        price_cents,
        purchase: purchase.cloned(),
        expires_at_unix_ms,
    })
}

/// Records the consumer as seen from `publisher_id` unless it was seen at or after `since_unix_ms`; returns when.
fn check_and_record_lead(
    tx: &Transaction<'_>,
    publisher_id: &str,
    keys: &ConsumerKeys,
    since_unix_ms: i64,
    now_unix_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let what = "checking for a duplicate lead";
    let seen: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(seen_at_unix_ms) FROM consumer_seen
             WHERE publisher_id = ?1 AND key_sha256 IN (?2, ?3) AND seen_at_unix_ms >= ?4",
        )
        .map_err(backend(what))?
        .query_row(params![publisher_id, keys.phone_sha256, keys.email_sha256, since_unix_ms], |row| row.get(0))
        .map_err(backend(what))?;
    if seen.is_none() {
        let mut record = tx
            .prepare_cached(
                "INSERT INTO consumer_seen (publisher_id, key_sha256, seen_at_unix_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (publisher_id, key_sha256) DO UPDATE SET seen_at_unix_ms = excluded.seen_at_unix_ms",
            )
            .map_err(backend(what))?;
        for hash in hashes(keys) {
            record.execute(params![publisher_id, hash, now_unix_ms]).map_err(backend(what))?;
        }
    }
    Ok(seen)
}

/// Claims a ping for its post: closes it (posted, or expired when past its expiry) and hands out its record once.
fn claim_ping(tx: &Transaction<'_>, ping_id: &str, now_unix_ms: i64) -> Result<PingClaim, StoreError> {
    let what = "claiming a ping";
    let row: Option<(String, i64, Option<String>)> = tx
        .prepare_cached("SELECT state, expires_at_unix_ms, record_json FROM ping WHERE ping_id = ?1")
        .map_err(backend(what))?
        .query_row([ping_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()
        .map_err(backend(what))?;
    let Some((state, expires_at_unix_ms, json)) = row else {
        return Ok(PingClaim::Unknown);
    };
    let close = |state: &str| {
        // The lead is kept no longer than the post or the expiry.
        tx.prepare_cached("UPDATE ping SET state = ?2, record_json = NULL WHERE ping_id = ?1")
            .and_then(|mut stmt| stmt.execute(params![ping_id, state]))
            .map_err(backend(what))
    };
    match (state.as_str(), json) {
        ("posted" | "posting", _) => Ok(PingClaim::AlreadyPosted),
        ("expired", _) => Ok(PingClaim::Expired { expired_at_unix_ms: expires_at_unix_ms }),
        ("open", Some(_)) if now_unix_ms >= expires_at_unix_ms => {
            close("expired")?;
            Ok(PingClaim::Expired { expired_at_unix_ms: expires_at_unix_ms })
        }
        ("open", Some(json)) => {
            let record: PingRecord = serde_json::from_str(&json).map_err(unreadable_json(what))?;
            // The record stays until the post ends (`finish_post`), so a post a crash cuts short can run again.
            tx.prepare_cached("UPDATE ping SET state = 'posting' WHERE ping_id = ?1")
                .and_then(|mut stmt| stmt.execute([ping_id]))
                .map_err(backend(what))?;
            Ok(PingClaim::Claimed(Box::new(record)))
        }
        (state, _) => Err(StoreError::corrupt(what, format!("ping {ping_id:?} is in bad state {state:?}"))),
    }
}

#[async_trait::async_trait]
impl AuctionStore for SqliteStore {
    async fn reserve(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError> {
        let (campaign_id, caps, windows, purchase, handover) =
            (campaign_id.to_owned(), *caps, windows.clone(), purchase.cloned(), handover.cloned());
        self.write_async("reserving a sale", move |tx| {
            reserve(tx, &campaign_id, &caps, &windows, price_cents, purchase.as_ref(), handover.as_ref())
        })
        .await
    }

    async fn commit(
        &self,
        reservation: &Reservation,
        final_price_cents: u32,
        sale: &SaleRecord,
    ) -> Result<u64, StoreError> {
        let lead_json = serde_json::to_string(&sale.lead).map_err(json_error("recording a sale"))?;
        let (id, record) = (reservation.id, sale.clone());
        let sale_id = self
            .write_async("committing a reservation", move |tx| {
                let pending = take_reservation(tx, id)?;
                let correction = i64::from(final_price_cents) - i64::from(pending.price_cents);
                apply(tx, &pending.campaign_id, &pending.windows, 0, correction)?;
                record_sale(tx, pending.purchase.as_ref(), &record, final_price_cents, &lead_json)
            })
            .await?;
        self.queued(sale);
        Ok(sale_id)
    }

    async fn sell(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError> {
        let lead_json = serde_json::to_string(&sale.lead).map_err(json_error("recording a sale"))?;
        let (campaign_id, caps, windows, purchase, record) =
            (campaign_id.to_owned(), *caps, windows.clone(), purchase.cloned(), sale.clone());
        let sale_id = self
            .write_async("selling a lead", move |tx| {
                count_sale(tx, &campaign_id, &caps, &windows, record.price_cents, purchase.as_ref())?;
                Ok::<_, ReserveError>(record_sale(tx, purchase.as_ref(), &record, record.price_cents, &lead_json)?)
            })
            .await?;
        self.queued(sale);
        Ok(sale_id)
    }

    async fn release(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let id = reservation.id;
        self.write_async("releasing a reservation", move |tx| {
            let pending = take_reservation(tx, id)?;
            apply(tx, &pending.campaign_id, &pending.windows, -1, -i64::from(pending.price_cents))
        })
        .await
    }

    async fn hold(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        expires_at_unix_ms: i64,
    ) -> Result<Reservation, ReserveError> {
        let (campaign_id, caps, windows, purchase) =
            (campaign_id.to_owned(), *caps, windows.clone(), purchase.cloned());
        self.write_async("holding a quote", move |tx| {
            count_sale(tx, &campaign_id, &caps, &windows, price_cents, purchase.as_ref())?;
            let expires = Some(expires_at_unix_ms);
            Ok(insert_reservation(tx, &campaign_id, &windows, price_cents, purchase.as_ref(), expires)?)
        })
        .await
    }

    async fn take_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError> {
        let (id, purchase, handover) = (hold.id, purchase.cloned(), handover.cloned());
        self.write_async("taking a hold for its post", move |tx| {
            let held = take_hold(tx, id, purchase.as_ref())?;
            if let Some(handover) = &handover {
                audit_handover(tx, handover)?;
            }
            let purchase = purchase.as_ref().or(held.purchase.as_ref());
            Ok(insert_reservation(tx, &held.campaign_id, &held.windows, held.price_cents, purchase, None)?)
        })
        .await
    }

    async fn sell_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError> {
        let lead_json = serde_json::to_string(&sale.lead).map_err(json_error("recording a sale"))?;
        let (id, purchase, record) = (hold.id, purchase.cloned(), sale.clone());
        let sale_id = self
            .write_async("selling a held bid", move |tx| {
                let held = take_hold(tx, id, purchase.as_ref())?;
                let correction = i64::from(record.price_cents) - i64::from(held.price_cents);
                apply(tx, &held.campaign_id, &held.windows, 0, correction)?;
                let purchase = purchase.as_ref().or(held.purchase.as_ref());
                Ok::<_, ReserveError>(record_sale(tx, purchase, &record, record.price_cents, &lead_json)?)
            })
            .await?;
        self.queued(sale);
        Ok(sale_id)
    }

    async fn release_expired_holds(&self, now_unix_ms: i64) -> Result<usize, StoreError> {
        let what = "releasing expired holds";
        // Looked for on a reader first: a sweep that finds nothing writes nothing.
        let any: bool = self.read(what, |tx| {
            tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM reservation
                    WHERE expires_at_unix_ms IS NOT NULL AND expires_at_unix_ms <= ?1)",
            )
            .map_err(backend(what))?
            .query_row([now_unix_ms], |row| row.get(0))
            .map_err(backend(what))
        })?;
        if !any {
            return Ok(0);
        }
        self.write_async(what, move |tx| release_expired_holds(tx, now_unix_ms)).await
    }

    async fn usage(&self, campaign_id: &str, windows: &CapWindows) -> Result<Usage, StoreError> {
        self.read("reading cap usage", |tx| usage(tx, campaign_id, windows))
    }

    async fn funds(&self, buyer_id: &str) -> Result<Funds, StoreError> {
        self.read("reading a buyer's funds", |tx| funds(tx, buyer_id))
    }

    async fn check_and_record_lead(
        &self,
        publisher_id: &str,
        keys: &ConsumerKeys,
        since_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (publisher_id, keys) = (publisher_id.to_owned(), keys.clone());
        // Answered before its commit: every later write (the next lead's check) sees the claim at once, and it is
        // durable no later than this lead's sale, a waited write queued after it.
        self.writer
            .write_early("checking for a duplicate lead", move |tx| {
                check_and_record_lead(tx, &publisher_id, &keys, since_unix_ms, now_unix_ms)
            })
            .await
    }

    async fn forget_lead(&self, publisher_id: &str, keys: &ConsumerKeys, seen_at: i64) -> Result<(), StoreError> {
        let what = "forgetting a lead the exchange could not auction";
        let (publisher_id, keys) = (publisher_id.to_owned(), keys.clone());
        self.write_async(what, move |tx| {
            tx.prepare_cached(
                "DELETE FROM consumer_seen WHERE publisher_id = ?1 AND key_sha256 IN (?2, ?3) AND seen_at_unix_ms = ?4",
            )
            .map_err(backend(what))?
            .execute(params![publisher_id, keys.phone_sha256, keys.email_sha256, seen_at])
            .map_err(backend(what))?;
            Ok(())
        })
        .await
    }

    async fn bought_since(&self, buyer_id: &str, keys: &ConsumerKeys, since_unix_ms: i64) -> Result<bool, StoreError> {
        let what = "checking suppression";
        self.read(what, |tx| {
            tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM consumer_bought
                 WHERE buyer_id = ?1 AND key_sha256 IN (?2, ?3) AND bought_at_unix_ms >= ?4)",
            )
            .map_err(backend(what))?
            .query_row(params![buyer_id, keys.phone_sha256, keys.email_sha256, since_unix_ms], |row| row.get(0))
            .map_err(backend(what))
        })
    }

    async fn save_ping(&self, record: PingRecord) -> Result<(), StoreError> {
        let what = "saving a ping";
        let json = serde_json::to_string(&record).map_err(json_error(what))?;
        self.write_async(what, move |tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO ping (ping_id, publisher_id, state, created_at_unix_ms, expires_at_unix_ms, record_json)
                     VALUES (?1, ?2, 'open', ?3, ?4, ?5) ON CONFLICT (ping_id) DO NOTHING",
                )
                .map_err(backend(what))?
                .execute(params![
                    record.ping_id,
                    record.publisher_id,
                    record.created_at_unix_ms,
                    record.expires_at_unix_ms,
                    json
                ])
                .map_err(backend(what))?;
            if inserted == 0 {
                return Err(StoreError::DuplicatePingId(record.ping_id.clone()));
            }
            Ok(())
        })
        .await
    }

    async fn open_ping(&self, ping_id: &str) -> Result<Option<PingRecord>, StoreError> {
        let what = "reading a ping";
        let json: Option<String> = self.read(what, |tx| {
            tx.prepare_cached("SELECT record_json FROM ping WHERE ping_id = ?1 AND state = 'open'")
                .map_err(backend(what))?
                .query_row([ping_id], |row| row.get(0))
                .optional()
                .map_err(backend(what))
        })?;
        json.map(|json| serde_json::from_str(&json).map_err(unreadable_json(what))).transpose()
    }

    async fn claim_ping(&self, ping_id: &str, now_unix_ms: i64) -> Result<PingClaim, StoreError> {
        let ping_id = ping_id.to_owned();
        self.write_async("claiming a ping", move |tx| claim_ping(tx, &ping_id, now_unix_ms)).await
    }

    async fn finish_post(&self, ping_id: &str) -> Result<(), StoreError> {
        let ping_id = ping_id.to_owned();
        self.write_async("finishing a post", move |tx| {
            tx.prepare_cached(
                "UPDATE ping SET state = 'posted', record_json = NULL WHERE ping_id = ?1 AND state = 'posting'",
            )
            .map_err(backend("finishing a post"))?
            .execute([&ping_id])
            .map_err(backend("finishing a post"))?;
            Ok(())
        })
        .await
    }

    async fn sales_of_campaign(&self, campaign_id: &str) -> Result<Vec<StoredSale>, StoreError> {
        self.read("listing a campaign's sales", |tx| {
            sales_where(tx, "listing a campaign's sales", "campaign_id = ?1 ORDER BY id", params![campaign_id], true)
        })
    }
}

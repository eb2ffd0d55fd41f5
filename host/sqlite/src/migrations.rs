//! Schema migrations: an ordered list, each applied once, in its own transaction, and recorded in SQLite's
//! `PRAGMA user_version` (the number of migrations applied). A database written by a newer pingpost (a version this
//! build does not know) is refused rather than guessed at.

use rusqlite::{Connection, TransactionBehavior};

/// One step of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version this migration brings the database to (1, 2, ...: its position in the list).
    pub version: u32,
    /// What it does, for errors and logs.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// Every migration of the store, oldest first. Released migrations are never edited: a change is a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "auction store", sql: include_str!("migrations/0001_auction_store.sql") },
    Migration {
        version: 2,
        name: "reservation purchase",
        sql: include_str!("migrations/0002_reservation_purchase.sql"),
    },
    Migration { version: 3, name: "service registry", sql: include_str!("migrations/0003_service_registry.sql") },
    Migration { version: 4, name: "sales and outbox", sql: include_str!("migrations/0004_sales_outbox.sql") },
    Migration { version: 5, name: "open ping expiry", sql: include_str!("migrations/0005_open_ping_expiry.sql") },
    Migration { version: 6, name: "idempotent lead", sql: include_str!("migrations/0006_idempotent_lead.sql") },
    Migration { version: 7, name: "registry seed", sql: include_str!("migrations/0007_registry_seed.sql") },
    Migration { version: 8, name: "health probe", sql: include_str!("migrations/0008_health_probe.sql") },
    Migration { version: 9, name: "registry verticals", sql: include_str!("migrations/0009_registry_verticals.sql") },
    Migration { version: 10, name: "plugin version sha", sql: include_str!("migrations/0010_plugin_version_sha.sql") },
    Migration { version: 11, name: "ping posting", sql: include_str!("migrations/0011_ping_posting.sql") },
    Migration { version: 12, name: "reservation hold", sql: include_str!("migrations/0012_reservation_hold.sql") },
    Migration { version: 13, name: "registry archive", sql: include_str!("migrations/0013_registry_archive.sql") },
    Migration { version: 14, name: "ledger", sql: include_str!("migrations/0014_ledger.sql") },
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has schema version {found}, newer than the {known} this pingpost knows; use a newer pingpost"
    )]
    NewerThanKnown { found: u32, known: u32 },
    #[error("migration list is out of order: entry {position} has version {version}")]
    OutOfOrder { position: usize, version: u32 },
    #[error("migration {version} ({name}) failed: {source}")]
    Failed {
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("reading or writing the schema version failed: {0}")]
    Version(#[source] rusqlite::Error),
}

/// Applies every migration of [`MIGRATIONS`] the database has not had yet; returns the versions applied (none when
/// it is already current).
pub fn migrate(conn: &mut Connection) -> Result<Vec<u32>, MigrationError> {
    apply(conn, MIGRATIONS)
}

/// Applies the migrations of `migrations` (ordered, versions 1..=n) that the database has not had yet, each in its
/// own `BEGIN IMMEDIATE` transaction that also bumps `user_version`, so a failed migration leaves the database at
/// the previous version and two processes opening the same file never apply one twice.
pub fn apply(conn: &mut Connection, migrations: &[Migration]) -> Result<Vec<u32>, MigrationError> {
    for (position, migration) in migrations.iter().enumerate() {
        if migration.version as usize != position + 1 {
            return Err(MigrationError::OutOfOrder { position, version: migration.version });
        }
    }
    let known = migrations.len() as u32;
    let mut applied = Vec::new();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(MigrationError::Version)?;
        let found = user_version(&tx).map_err(MigrationError::Version)?;
        if found > known {
            return Err(MigrationError::NewerThanKnown { found, known });
        }
        let Some(migration) = migrations.get(found as usize) else {
            return Ok(applied);
        };
        let failed = |source| MigrationError::Failed { version: migration.version, name: migration.name, source };
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", migration.version).map_err(failed)?;
        tx.commit().map_err(failed)?;
        applied.push(migration.version);
    }
}

/// The schema version recorded in the database (0 for a new one).
pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

//! Durable storage for the exchange: one embedded SQLite database file (nothing to install). [`SqliteStore`]
//! implements the engine's [`AuctionStore`](pingpost_engine::AuctionStore); [`migrations`] keeps the schema current;
//! [`writer`] runs every write of the process with group commit and [`readers`] serve reads alongside it.
//! The service's own queries are `impl SqliteStore` blocks beside it, one file per job: [`sales`] (bought leads,
//! returns, PII audit, retention purge), [`outbox`] (webhook deliveries), [`auctions`] (outcome and trace per lead),
//! [`recorder`] (each auction's record queued off the request path, with back-pressure).
//!
//! PII: duplicate and suppression look-ups keep only SHA-256 hashes of the consumer's phone and email. Two-step ping
//! records (until claimed for the post or found expired) and sales hold the full lead as JSON, because the exchange
//! must post or deliver it; [`SqliteStore::purge_pii`] clears them once past the configured retention.

pub mod auctions;
pub mod checkpointer;
mod connection;
pub mod ledger;
mod ledger_rows;
pub mod migrations;
pub mod outbox;
pub mod readers;
pub mod recorder;
pub mod registry;
mod sale_rows;
pub mod sales;
pub mod sqlite;
pub mod writer;

pub use auctions::AuctionRecord;
pub use connection::BUSY_TIMEOUT;
pub use migrations::{MIGRATIONS, Migration, MigrationError, SCHEMA_VERSION};
pub use outbox::{DeliveryStatus, MarkError, NextAttempt, OutboxDelivery};
pub use sale_rows::{PiiAccess, PiiAuditEntry};
pub use sales::{PurgeCounts, ReturnError, SaleRef};
pub use sqlite::{OpenError, SqliteStore, StoreOptions};
pub use writer::WriterStats;

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
pub mod migrations;
pub mod outbox;
pub mod readers;
pub mod recorder;
pub mod registry;
pub mod sales;
pub mod sqlite;
pub mod writer;

pub use auctions::AuctionRecord;
pub use migrations::{MIGRATIONS, Migration, MigrationError, SCHEMA_VERSION};
pub use outbox::{DeliveryStatus, MarkError, NextAttempt, OutboxDelivery};
pub use sales::{PiiAccess, PiiAuditEntry, PurgeCounts, ReturnError, SaleRef};
pub use sqlite::{BUSY_TIMEOUT, OpenError, SqliteStore, StoreOptions};
pub use writer::WriterStats;

//! Durable storage for the exchange: one embedded SQLite database file (nothing to install). [`SqliteStore`]
//! implements the engine's [`AuctionStore`](crate::auction::AuctionStore); [`migrations`] keeps the schema current.
//!
//! PII: duplicate and suppression look-ups keep only SHA-256 hashes of the consumer's phone and email. Two-step ping
//! records (until claimed for the post or found expired) and pick-ups hold the full lead as JSON, because the exchange
//! must post or deliver it; the service's PII retention (issue 4) purges them.

pub mod migrations;
pub mod sqlite;

pub use migrations::{MIGRATIONS, Migration, MigrationError, SCHEMA_VERSION};
pub use sqlite::{BUSY_TIMEOUT, OpenError, SqliteStore};

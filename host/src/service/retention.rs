//! The PII retention job: every `purge_interval_secs`, clears the personal data of sales (and of two-step pings) older
//! than `pii_retention_days`. The sale's record — ids, price, time — stays for accounting.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::storage::SqliteStore;

const DAY_MS: i64 = 86_400_000;

/// Starts the purge loop; it runs once right away, then every `interval`, until `stop` changes.
pub fn spawn(
    store: Arc<SqliteStore>,
    clock: SharedClock,
    retention_days: u32,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let cutoff = clock.now_unix_ms() - i64::from(retention_days) * DAY_MS;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.purge_pii(cutoff)).await {
                Ok(Ok(counts)) => tracing::info!(?counts, cutoff, "PII retention purge"),
                Ok(Err(error)) => tracing::error!(%error, "PII retention purge failed"),
                Err(error) => tracing::error!(%error, "PII retention purge panicked"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval.max(Duration::from_secs(1))) => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
        }
    })
}

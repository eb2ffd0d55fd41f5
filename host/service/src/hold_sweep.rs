//! The hold sweep. Every second it releases the holds of two-step quotes that expired unposted, so a quote keeps its
//! campaign's caps no longer than its hold's expiry (the bid's, plus the publisher's post deadline) plus a second.
//! Its own task, so a long PII purge never delays it; a sweep that finds nothing expired writes nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use pingpost_engine::AuctionStore;
use pingpost_model::clock::SharedClock;
use pingpost_sqlite::SqliteStore;

/// How often expired holds are released.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Starts the sweep: once right away, then every [`INTERVAL`], until `stop` changes.
pub fn spawn(store: Arc<SqliteStore>, clock: SharedClock, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let mut ticks = tokio::time::interval_at(Instant::now(), INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = ticks.tick() => match store.release_expired_holds(clock.now_unix_ms()).await {
                    Ok(0) => {}
                    Ok(released) => tracing::debug!(released, "expired quote holds released"),
                    Err(error) => tracing::error!(%error, "releasing expired quote holds failed"),
                },
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
        }
    })
}

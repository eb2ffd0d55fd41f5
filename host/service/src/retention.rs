//! The PII retention job. Every `purge_interval_secs` it clears the personal data of sales (and of two-step pings)
//! older than `pii_retention_days`; the sale's record — ids, price, time — stays for accounting. Every
//! `expired_ping_sweep_secs` it closes the two-step pings that expired without a post and clears their lead, so an
//! unposted ping keeps the consumer's data no longer than its expiry plus one sweep.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use pingpost_model::clock::SharedClock;
use pingpost_sqlite::SqliteStore;

const DAY_MS: i64 = 86_400_000;

/// When the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSchedule {
    /// Sold leads' PII is kept this many days.
    pub retention_days: u32,
    /// How often the retention purge runs (at least 1 s).
    pub purge_interval: Duration,
    /// How often expired pings are swept (at least 1 s).
    pub ping_sweep_interval: Duration,
}

/// Starts the job: the purge and the sweep run once right away, then on their intervals, until `stop` changes.
pub fn spawn(
    store: Arc<SqliteStore>,
    clock: SharedClock,
    schedule: RetentionSchedule,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = |interval: Duration| {
        let mut ticks = tokio::time::interval_at(Instant::now(), interval.max(Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    };
    let (mut purges, mut sweeps) = (every(schedule.purge_interval), every(schedule.ping_sweep_interval));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = purges.tick() => {
                    let cutoff = clock.now_unix_ms() - i64::from(schedule.retention_days) * DAY_MS;
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.purge_pii(cutoff)).await {
                        Ok(Ok(counts)) => tracing::info!(?counts, cutoff, "PII retention purge"),
                        Ok(Err(error)) => tracing::error!(%error, "PII retention purge failed"),
                        Err(error) => tracing::error!(%error, "PII retention purge panicked"),
                    }
                }
                _ = sweeps.tick() => {
                    let now = clock.now_unix_ms();
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.expire_pings(now)).await {
                        Ok(Ok(0)) => {}
                        Ok(Ok(pings)) => tracing::info!(pings, "expired two-step pings cleared"),
                        Ok(Err(error)) => tracing::error!(%error, "clearing expired two-step pings failed"),
                        Err(error) => tracing::error!(%error, "clearing expired two-step pings panicked"),
                    }
                }
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
        }
    })
}

//! The webhook delivery worker: a tokio task that POSTs each sold lead queued in the outbox to its campaign's webhook,
//! with the same JSON body an HTTP buyer's post gets, retrying with exponential backoff until the webhook answers 2xx
//! or the attempts run out.
//!
//! Deliveries are rows ([`pingpost_sqlite::outbox`]), inserted in the sale's own transaction, so nothing is lost on a
//! crash: a started worker picks up whatever is due. Delivery is at least once — a crash between the webhook's 2xx
//! and the row's update sends the lead again after the restart, with the same `ping_id` and `campaign_id`, by which
//! a receiver recognises it — and only ever to the URL stored with the sale.
//!
//! The worker wakes when the store signals a new webhook sale ([`SqliteStore::outbox_notify`]), when the next retry
//! is due, or at least every [`OutboxSettings::idle_poll`] (the clock may be a test's manual clock, and another
//! process may share the database); it stops on [`OutboxHandle::shutdown`], after the batch in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::{DeliveryResult, Metrics};
use pingpost_engine::http_buyer::{HttpBuyerClient, PostRequest};
use pingpost_engine::store::StoreError;
use pingpost_model::clock::SharedClock;
use pingpost_sqlite::{NextAttempt, OutboxDelivery, SqliteStore};

/// The worker's limits and retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// The wait after the first failed attempt; each further failure doubles it.
    pub base_backoff: Duration,
    /// The longest wait between two attempts (before jitter).
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up (marked failed, kept for operators).
    pub max_attempts: u32,
    /// How long one POST may take before it counts as failed.
    pub request_timeout: Duration,
    /// Deliveries attempted at once.
    pub batch_size: u32,
    /// The longest the worker sleeps without looking at the outbox.
    pub idle_poll: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10 * 60),
            max_attempts: 15,
            request_timeout: Duration::from_secs(10),
            batch_size: 32,
            idle_poll: Duration::from_secs(1),
        }
    }
}

impl OutboxSettings {
    /// The wait before the next attempt after `failures` failed attempts (1 or more), before jitter:
    /// `base × 2^(failures − 1)`, at most `max_backoff`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base_backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }
}

/// Spreads retries so receivers coming back from an outage are not hit by every delivery at once.
pub trait Jitter: Send + Sync + std::fmt::Debug {
    /// Extra milliseconds, at most `up_to_ms`, added to a backoff.
    fn extra_ms(&self, up_to_ms: u64) -> u64;
}

/// No jitter: retries exactly on the backoff (tests, replays).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn extra_ms(&self, _up_to_ms: u64) -> u64 {
        0
    }
}

/// Uniform jitter from a random source.
#[derive(Debug)]
pub struct RandomJitter(Mutex<StdRng>);

impl RandomJitter {
    /// Jitter seeded from the operating system.
    pub fn from_os_rng() -> Self {
        RandomJitter(Mutex::new(StdRng::from_os_rng()))
    }

    /// Reproducible jitter.
    pub fn seeded(seed: u64) -> Self {
        RandomJitter(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Jitter for RandomJitter {
    fn extra_ms(&self, up_to_ms: u64) -> u64 {
        match self.0.lock() {
            Ok(mut rng) => rng.random_range(0..=up_to_ms),
            // A poisoned generator still leaves a correct (if unspread) backoff.
            Err(_) => 0,
        }
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; tried again at this time (unix ms).
    Retry {
        at_unix_ms: i64,
        error: String,
    },
    /// Failed for the last time.
    GaveUp {
        error: String,
    },
}

/// Delivers the outbox's due webhook deliveries.
#[derive(Debug, Clone)]
pub struct OutboxWorker {
    store: Arc<SqliteStore>,
    client: HttpBuyerClient,
    clock: SharedClock,
    settings: OutboxSettings,
    jitter: Arc<dyn Jitter>,
    metrics: Option<Arc<Metrics>>,
}

impl OutboxWorker {
    /// A worker without jitter; see [`OutboxWorker::with_jitter`].
    pub fn new(store: Arc<SqliteStore>, client: HttpBuyerClient, clock: SharedClock, settings: OutboxSettings) -> Self {
        OutboxWorker { store, client, clock, settings, jitter: Arc::new(NoJitter), metrics: None }
    }

    /// The same worker, counting each attempt's result in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The same worker, adding up to half of each backoff from `jitter`.
    pub fn with_jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Attempts every delivery due now (up to one batch, concurrently); returns each attempt's outcome.
    pub async fn run_once(&self) -> Result<Vec<(u64, AttemptOutcome)>, StoreError> {
        let due = self.store.due_deliveries(self.clock.now_unix_ms(), self.settings.batch_size)?;
        // Every attempt hands the lead over: audited first, and nothing is sent when the audit cannot be written.
        self.store.audit_delivery_attempts(&due, self.clock.now_unix_ms())?;
        let attempts = due.iter().map(|delivery| async move { (delivery.id, self.attempt(delivery).await) });
        Ok(join_all(attempts).await)
    }

    /// One POST of `delivery` and its bookkeeping.
    async fn attempt(&self, delivery: &OutboxDelivery) -> AttemptOutcome {
        let sent = match &delivery.lead {
            Some(lead) => {
                let request = PostRequest {
                    ping_id: &delivery.lead_id,
                    campaign_id: &delivery.campaign_id,
                    price_cents: delivery.price_cents,
                    buyer_ref: delivery.buyer_ref.as_deref(),
                    lead,
                };
                self.client
                    .deliver(&delivery.url, &request, self.settings.request_timeout)
                    .await
                    .map_err(|e| e.to_string())
            }
            None => Err("the lead was purged before it could be delivered".to_owned()),
        };
        let now = self.clock.now_unix_ms();
        let (outcome, marked) = match sent {
            Ok(()) => (AttemptOutcome::Delivered, self.store.mark_delivered(delivery.id, now)),
            Err(error) => {
                let failures = delivery.attempts.saturating_add(1);
                if failures >= self.settings.max_attempts || delivery.lead.is_none() {
                    let marked = self.store.mark_failed(delivery.id, &error, NextAttempt::GiveUp);
                    (AttemptOutcome::GaveUp { error }, marked)
                } else {
                    let backoff = u64::try_from(self.settings.backoff(failures).as_millis()).unwrap_or(u64::MAX);
                    let wait = backoff.saturating_add(self.jitter.extra_ms(backoff / 2));
                    let at_unix_ms = now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX));
                    let marked = self.store.mark_failed(delivery.id, &error, NextAttempt::At(at_unix_ms));
                    (AttemptOutcome::Retry { at_unix_ms, error }, marked)
                }
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.observe_delivery(match outcome {
                AttemptOutcome::Delivered => DeliveryResult::Delivered,
                AttemptOutcome::Retry { .. } => DeliveryResult::Retry,
                AttemptOutcome::GaveUp { .. } => DeliveryResult::GaveUp,
            });
        }
        match &outcome {
            AttemptOutcome::Delivered => tracing::debug!(delivery = delivery.id, url = %delivery.url, "delivered"),
            AttemptOutcome::Retry { error, .. } => {
                tracing::warn!(delivery = delivery.id, url = %delivery.url, %error, "webhook delivery failed; will retry")
            }
            AttemptOutcome::GaveUp { error } => {
                tracing::error!(delivery = delivery.id, url = %delivery.url, %error, "webhook delivery given up")
            }
        }
        if let Err(error) = marked {
            tracing::error!(delivery = delivery.id, %error, "could not record a delivery attempt");
        }
        outcome
    }

    /// How long to sleep before looking again: until the next retry is due, at most `idle_poll`.
    fn idle_for(&self) -> Duration {
        match self.store.next_delivery_due_at() {
            Ok(Some(due)) => {
                let wait = due.saturating_sub(self.clock.now_unix_ms()).max(0);
                Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(self.settings.idle_poll)
            }
            Ok(None) => self.settings.idle_poll,
            Err(error) => {
                tracing::error!(%error, "could not read the outbox");
                self.settings.idle_poll
            }
        }
    }

    /// Starts the worker on the current tokio runtime.
    pub fn spawn(self) -> OutboxHandle {
        let (stop, mut stopped) = watch::channel(false);
        let notify = self.store.outbox_notify();
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                let full_batch = match self.run_once().await {
                    Ok(attempts) => attempts.len() >= self.settings.batch_size as usize,
                    Err(error) => {
                        tracing::error!(%error, "could not read the due deliveries");
                        false
                    }
                };
                if full_batch {
                    // More may be due right now.
                    continue;
                }
                let idle = self.idle_for();
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                    // Stopped, or the handle dropped: either way the worker ends.
                    changed = stopped.changed() => if changed.is_err() { break },
                }
            }
        });
        OutboxHandle { stop, task }
    }
}

/// A running worker; dropping it stops the worker too (without waiting).
#[derive(Debug)]
pub struct OutboxHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OutboxHandle {
    /// Stops the worker once the batch in flight is done, and waits for it.
    pub async fn shutdown(self) {
        // The worker may already have ended (its runtime shutting down); there is nothing more to stop then.
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the outbox worker ended abnormally");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_base_up_to_the_max() {
        let settings = OutboxSettings {
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..OutboxSettings::default()
        };
        let waits: Vec<u64> = (1..=6).map(|failures| settings.backoff(failures).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(settings.backoff(u32::MAX), Duration::from_secs(10), "no overflow after many failures");
    }

    #[test]
    fn random_jitter_stays_within_its_bound_and_is_reproducible_when_seeded() {
        let (a, b) = (RandomJitter::seeded(7), RandomJitter::seeded(7));
        let draws: Vec<u64> = (0..100).map(|_| a.extra_ms(500)).collect();
        assert!(draws.iter().all(|ms| *ms <= 500));
        assert!(draws.iter().any(|ms| *ms != draws[0]), "it does spread");
        assert_eq!(draws, (0..100).map(|_| b.extra_ms(500)).collect::<Vec<_>>());
        assert_eq!(NoJitter.extra_ms(500), 0);
        assert_eq!(a.extra_ms(0), 0);
    }
}

//! Admission control: a lead is refused with `503 overloaded` (and `Retry-After`) before the exchange accepts it when
//! the exchange could not run its auction in time — too many auctions already in flight, or the async workers so
//! far behind that a timer fires late by more than the allowed scheduling delay. Refused, nothing of the lead is
//! kept, so the publisher's retry is a first try: better than accepting it and burning it as `unsold: timeout`
//! because the exchange itself was saturated.
//!
//! The delay is measured by a probe task that sleeps [`PROBE_INTERVAL`] over and over and records how late each
//! wake-up was: the time every task (and every auction) waits for a worker thread. The probe keeps the worst lateness
//! of the last [`PROBE_WINDOW`] wake-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::ApiError;

/// How often the probe wakes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// Wake-ups the probe's worst lateness is taken over (about a quarter of a second).
pub const PROBE_WINDOW: usize = 50;

/// The limits a lead is admitted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Auctions (leads, pings, posts) running at once; the next is refused.
    pub max_in_flight: usize,
    /// The longest the async workers may lag (a timer firing late) before leads are refused.
    pub max_scheduling_delay: Duration,
}

/// Counts the auctions in flight and reads the probe.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    in_flight: AtomicUsize,
    /// The probe's worst recent lateness, in microseconds.
    lag_us: Arc<AtomicU64>,
}

/// One admitted auction; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted<'a> {
    admission: &'a Admission,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Admission under `limits`, with no probe running yet (see [`Admission::spawn_probe`]).
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission { limits, in_flight: AtomicUsize::new(0), lag_us: Arc::new(AtomicU64::new(0)) }
    }

    /// Admits one auction, or refuses it with `503 overloaded` and a `Retry-After` of a second.
    pub fn admit(&self) -> Result<Admitted<'_>, ApiError> {
        let lag = self.scheduling_delay();
        if lag > self.limits.max_scheduling_delay {
            return Err(overloaded(format!(
                "the exchange is running {} ms behind (at most {} ms); retry shortly",
                lag.as_millis(),
                self.limits.max_scheduling_delay.as_millis()
            )));
        }
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted { admission: self };
        if before >= self.limits.max_in_flight {
            return Err(overloaded(format!(
                "{} auctions are running (at most {}); retry shortly",
                before, self.limits.max_in_flight
            )));
        }
        Ok(admitted)
    }

    /// Auctions running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The worst lateness of the probe's recent wake-ups.
    pub fn scheduling_delay(&self) -> Duration {
        Duration::from_micros(self.lag_us.load(Ordering::Acquire))
    }

    /// Starts the probe on the current runtime; it stops when `stop` changes.
    pub fn spawn_probe(&self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let lag_us = self.lag_us.clone();
        tokio::spawn(async move {
            let mut recent = [0u64; PROBE_WINDOW];
            let mut next = 0;
            loop {
                let asked = Instant::now();
                tokio::select! {
                    _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                    changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
                }
                let late = asked.elapsed().saturating_sub(PROBE_INTERVAL);
                recent[next] = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                next = (next + 1) % PROBE_WINDOW;
                lag_us.store(recent.iter().copied().max().unwrap_or(0), Ordering::Release);
            }
        })
    }
}

fn overloaded(message: String) -> ApiError {
    let mut error = ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    error.retry_after_secs = Some(1);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_in_flight: usize) -> AdmissionLimits {
        AdmissionLimits { max_in_flight, max_scheduling_delay: Duration::from_millis(50) }
    }

    #[test]
    fn auctions_past_the_in_flight_limit_are_refused_until_one_ends() {
        let admission = Admission::new(limits(2));
        let first = admission.admit().expect("first");
        let _second = admission.admit().expect("second");
        let refused = admission.admit().expect_err("third");
        assert_eq!((refused.status.as_u16(), refused.code, refused.retry_after_secs), (503, "overloaded", Some(1)));
        assert_eq!(admission.in_flight(), 2, "a refusal holds no place");
        drop(first);
        assert!(admission.admit().is_ok(), "a place was freed");
    }

    #[test]
    fn a_runtime_whose_workers_are_blocked_is_seen_behind_and_refuses_leads() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        let admission = Arc::new(Admission::new(limits(100)));
        runtime.block_on(async {
            let (_stop, stopped) = watch::channel(false);
            let _probe = admission.spawn_probe(stopped);
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(admission.admit().is_ok(), "an idle runtime is not behind: {:?}", admission.scheduling_delay());
            // A task that holds the only worker thread for 200 ms: every timer fires that late.
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(200)) }).await.expect("runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(admission.scheduling_delay() >= Duration::from_millis(150), "{:?}", admission.scheduling_delay());
            let refused = admission.admit().expect_err("behind");
            assert_eq!(refused.code, "overloaded");
        });
    }
}

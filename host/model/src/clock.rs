//! Injected time. Everything in the exchange that reads the time (breaker cool-downs, caps, schedules, bid expiry,
//! the `now` passed to plugins) asks a [`Clock`], so tests run on a [`ManualClock`] and are deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch, UTC.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> i64;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// A clock that only moves when told to: for tests and replays.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `now_unix_ms`.
    pub fn new(now_unix_ms: i64) -> Self {
        ManualClock(AtomicI64::new(now_unix_ms))
    }

    /// Sets the time.
    pub fn set(&self, now_unix_ms: i64) {
        self.0.store(now_unix_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The operating system's clock moved by a fixed offset: time passes normally but starts from a chosen instant. A
/// demo that must see a Wednesday morning (schedules, ages) runs on it and still lets retries and expiries happen.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset_ms: i64,
}

impl OffsetClock {
    /// A clock that reads `start_unix_ms` now and advances from there.
    pub fn starting_at(start_unix_ms: i64) -> Self {
        OffsetClock { offset_ms: start_unix_ms - SystemClock.now_unix_ms() }
    }
}

impl Clock for OffsetClock {
    fn now_unix_ms(&self) -> i64 {
        SystemClock.now_unix_ms() + self.offset_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_starts_where_asked_and_then_moves() {
        let clock = OffsetClock::starting_at(1_000_000);
        let first = clock.now_unix_ms();
        assert!((1_000_000..1_005_000).contains(&first), "{first}");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now_unix_ms() >= first + 5);
    }
}

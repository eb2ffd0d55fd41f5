//! Circuit breaker: a plugin whose calls keep failing is suspended for a cool-down, and the last reason is kept for
//! the operator. Time comes from the caller (the runtime's injected clock), so tests drive it with a `ManualClock`.
//!
//! Closed: calls go through. Open: after `failure_threshold` consecutive failures, calls return
//! [`CallError::Suspended`] without entering Wasm until the cool-down ends. Half-open: after the cool-down, calls go
//! through again; the first success closes the breaker, the first failure opens it for another cool-down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use serde::Serialize;

use super::config::BreakerConfig;
use super::error::CallError;

/// `open_until` value of a breaker that has never opened or was closed again.
const CLOSED: i64 = i64::MIN;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// What an operator sees about a plugin's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// When an open breaker lets calls through again, in unix ms.
    pub open_until_unix_ms: Option<i64>,
    /// The last failure, kept after the breaker closes again.
    pub last_failure: Option<String>,
}

/// Counts consecutive failures of one plugin (one campaign's buyer or one publisher's redactor).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    failures: AtomicU32,
    open_until: AtomicI64,
    last_failure: Mutex<Option<String>>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            failures: AtomicU32::new(0),
            open_until: AtomicI64::new(CLOSED),
            last_failure: Mutex::new(None),
        }
    }

    /// `Ok` when a call may enter the plugin at `now_unix_ms`, `Suspended` while the breaker is open.
    pub fn check(&self, now_unix_ms: i64) -> Result<(), CallError> {
        let until = self.open_until.load(Ordering::Acquire);
        if now_unix_ms < until {
            return Err(CallError::Suspended { until_unix_ms: until, reason: self.last_reason() });
        }
        Ok(())
    }

    /// Whether the breaker is closed (never opened, or closed again): a call may go through without reading the clock.
    pub fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Acquire) == CLOSED
    }

    /// Records a successful call: the breaker closes.
    pub fn record_success(&self) {
        // Fast path: a healthy plugin touches no lock.
        if self.failures.load(Ordering::Acquire) != 0 || self.open_until.load(Ordering::Acquire) != CLOSED {
            self.failures.store(0, Ordering::Release);
            self.open_until.store(CLOSED, Ordering::Release);
        }
    }

    /// Records a failed call at `now_unix_ms`; opens the breaker once the failures reach the threshold.
    pub fn record_failure(&self, now_unix_ms: i64, error: &CallError) {
        let mut last = self.last_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *last = Some(error.to_string());
        let failures = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if failures >= self.config.failure_threshold.max(1) {
            let cool_down = i64::try_from(self.config.cool_down.as_millis()).unwrap_or(i64::MAX);
            self.open_until.store(now_unix_ms.saturating_add(cool_down), Ordering::Release);
        }
    }

    /// The breaker's state at `now_unix_ms`, with the last failure reason.
    pub fn status(&self, now_unix_ms: i64) -> BreakerStatus {
        let until = self.open_until.load(Ordering::Acquire);
        let state = match until {
            CLOSED => BreakerState::Closed,
            until if now_unix_ms < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        };
        BreakerStatus {
            state,
            consecutive_failures: self.failures.load(Ordering::Acquire),
            open_until_unix_ms: (until != CLOSED).then_some(until),
            last_failure: self.last_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone(),
        }
    }

    fn last_reason(&self) -> String {
        self.last_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone().unwrap_or_default()
    }
}

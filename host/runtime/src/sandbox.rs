//! The per-instance `Store` state: a memory limiter that also records the peak, and the capped log. Fuel and the
//! deadline are set per call in [`super::instance`].

use wasmtime::ResourceLimiter;

use super::bindings::{v0_1, v0_2};
use super::config::Limits;
use pingpost_model::{LogLevel, LogLine};

/// Caps an instance's linear memory and tables, and remembers how high it went and whether it was refused.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    /// Current bytes across the instance's memories.
    current: usize,
    /// Highest `current` since the last [`MemoryLimiter::start_call`].
    peak: usize,
    /// A growth was refused since the last [`MemoryLimiter::start_call`]: the trap that follows is a memory limit.
    refused: bool,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        MemoryLimiter { limit, current: 0, peak: 0, refused: false }
    }

    /// Resets the per-call peak and refusal flag.
    pub fn start_call(&mut self) {
        self.peak = self.current;
        self.refused = false;
    }

    /// Highest memory, in bytes, the instance held during the call.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Whether a memory or table growth was refused during the call.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The cap, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let next = self.current.saturating_sub(current).saturating_add(desired);
        if next > self.limit || maximum.is_some_and(|max| desired > max) {
            self.refused = true;
            return Ok(false);
        }
        self.current = next;
        self.peak = self.peak.max(next);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        // A table element is a pointer in wasmtime: the same byte cap bounds tables.
        let bytes = desired.saturating_mul(size_of::<usize>());
        if bytes > self.limit || maximum.is_some_and(|max| desired > max) {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        // A plugin component is a handful of core instances (the module and wit-component's shims).
        16
    }

    fn memories(&self) -> usize {
        4
    }

    fn tables(&self) -> usize {
        8
    }
}

/// The lines one call logged, within the per-call caps; what did not fit is counted, never an error.
#[derive(Debug, Default)]
pub struct CappedLog {
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    lines: Vec<LogLine>,
    dropped: u64,
}

impl CappedLog {
    fn new(limits: &Limits) -> Self {
        CappedLog { max_lines: limits.max_log_lines, max_bytes: limits.max_log_bytes, ..CappedLog::default() }
    }

    /// Records a line, or counts it as dropped when it would exceed the caps.
    pub fn push(&mut self, level: LogLevel, message: String) {
        if self.lines.len() >= self.max_lines || self.bytes.saturating_add(message.len()) > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { level, message });
    }

    /// Takes the lines and the dropped count, leaving the log empty for the next call.
    pub fn take(&mut self) -> (Vec<LogLine>, u64) {
        self.bytes = 0;
        (std::mem::take(&mut self.lines), std::mem::take(&mut self.dropped))
    }
}

/// What a plugin's `Store` holds.
#[derive(Debug)]
pub struct StoreState {
    pub limiter: MemoryLimiter,
    pub log: CappedLog,
}

impl StoreState {
    /// Fresh state under `limits`.
    pub fn new(limits: &Limits) -> Self {
        StoreState { limiter: MemoryLimiter::new(limits.max_memory_bytes), log: CappedLog::new(limits) }
    }
}

impl v0_1::types::Host for StoreState {}

impl v0_1::host::Host for StoreState {
    fn log(&mut self, level: v0_1::types::LogLevel, message: String) {
        self.log.push(level.into(), message);
    }
}

impl v0_2::types::Host for StoreState {}

impl v0_2::host::Host for StoreState {
    fn log(&mut self, level: v0_2::types::LogLevel, message: String) {
        self.log.push(level.into(), message);
    }
}

//! Every limit and choice of the runtime as data: one place to read what a plugin may do.

use std::path::PathBuf;
use std::time::Duration;

/// Per-call limits applied to every plugin call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call may take, instantiation included (epoch interruption, 1 ms resolution). It is wall
    /// time: a thread that loses the CPU still spends it, so leave headroom over the measured call cost.
    pub deadline: Duration,
    /// Wall-clock time to set an instance up: instantiate it and run the plugin's `configure` once. Off the hot
    /// path (once per instance, and first when a campaign is created), so it gets more headroom than a call; a
    /// `configure` that never returns is still stopped at it.
    pub setup_deadline: Duration,
    /// Linear memory (and table) bytes one instance may hold.
    pub max_memory_bytes: usize,
    /// Deterministic fuel budget per call; `None` turns fuel metering off (it costs about 10% per call).
    pub fuel: Option<u64>,
    /// Log lines kept per call; further lines are dropped and counted.
    pub max_log_lines: usize,
    /// Log bytes kept per call; further lines are dropped and counted.
    pub max_log_bytes: usize,
    /// Total bytes of the strings in one answer (decision or ping); more is `CallError::OutputTooLarge`.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(50),
            setup_deadline: Duration::from_secs(1),
            max_memory_bytes: 16 << 20,
            fuel: None,
            max_log_lines: 64,
            max_log_bytes: 16 << 10,
            max_output_bytes: 64 << 10,
        }
    }
}

/// How instances are used across calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceMode {
    /// Keep up to `idle_per_campaign` idle instances per campaign and reuse them; an instance is replaced after a
    /// failed call and after `max_calls` calls. A warm call costs under 1 µs (0.73 µs in the production build, ~1.2 µs
    /// per buyer of a 20-buyer fan-out: BENCHMARKS.md, "Current figures").
    Warm {
        /// Idle instances kept per campaign (concurrent callers beyond it get an extra instance, dropped after).
        idle_per_campaign: usize,
        /// Calls served by one instance before it is replaced, bounding how long guest state can accumulate.
        max_calls: u64,
    },
    /// A new instance for every call, dropped afterwards: no state survives a call, at about 20x the cost.
    Fresh,
}

impl Default for InstanceMode {
    fn default() -> Self {
        InstanceMode::Warm { idle_per_campaign: 4, max_calls: 100_000 }
    }
}

/// How the engine allocates instance memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// mmap per instance on demand: no fixed capacity, suits warm instances.
    OnDemand,
    /// Preallocated slots (copy-on-write, reset on reuse): cheaper fresh instances, but a fixed capacity.
    Pooling {
        /// Component instances the pool can hold at once across the whole engine.
        total_instances: u32,
    },
}

/// When a failing plugin is suspended and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before letting a trial call through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, cool_down: Duration::from_secs(30) }
    }
}

/// Everything the runtime needs to know, set once when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub limits: Limits,
    pub instance_mode: InstanceMode,
    pub allocator: Allocator,
    /// Where compiled artifacts are kept across restarts; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    pub breaker: BreakerConfig,
    /// Wasm stack bytes a call may use (unbounded recursion ends as `CallError::StackOverflow`).
    pub max_wasm_stack: usize,
    /// When a plugin has earned running inline on the caller's (async worker) thread.
    pub inline: InlinePolicy,
}

/// When a plugin may run inline on an async worker thread instead of being handed to the blocking pool. A warm call
/// ([`InstanceMode::Warm`]) costs far less than a hand-off to another thread (tens of µs), so a plugin with a record
/// of short, successful calls runs inline; a new, slow or failing one never does, and one that turns hostile stalls a
/// worker at most once (until its deadline) before it is demoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlinePolicy {
    /// Consecutive successful calls, each shorter than `threshold`, before a plugin runs inline. 0 turns inline
    /// calls off.
    pub after_calls: u32,
    /// Wall time under which a call counts towards the streak; a slower call (or any failure) ends it.
    pub threshold: Duration,
    /// Total inline wall time one auction may spend; the rest of its plugin calls go to the blocking pool.
    pub budget_per_auction: Duration,
}

impl Default for InlinePolicy {
    fn default() -> Self {
        InlinePolicy {
            after_calls: 3,
            threshold: Duration::from_millis(1),
            budget_per_auction: Duration::from_millis(2),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            instance_mode: InstanceMode::default(),
            allocator: Allocator::OnDemand,
            cache_dir: None,
            breaker: BreakerConfig::default(),
            max_wasm_stack: 512 << 10,
            inline: InlinePolicy::default(),
        }
    }
}

//! Builds the wasmtime [`Engine`] from the runtime config and runs the epoch ticker that enforces call deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::config::{Allocator, RuntimeConfig};
use super::error::LoadError;

/// How often the ticker advances the engine's epoch: the resolution of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Set (to anything) in the environment, the engine tells `perf` the names of the plugins' compiled functions.
pub const PERFMAP_ENV: &str = "PINGPOST_PERFMAP";

/// The engine for `config`: component model, epoch interruption always on, fuel when the limits ask for it.
pub fn build_engine(config: &RuntimeConfig) -> Result<Engine, LoadError> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(config.limits.fuel.is_some());
    c.max_wasm_stack(config.max_wasm_stack);
    // For profiling: wasmtime writes /tmp/perf-<pid>.map, so `perf report` names the guests' functions.
    if std::env::var_os(PERFMAP_ENV).is_some() {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Allocator::Pooling { total_instances } = config.allocator {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(total_instances);
        // A pingpost plugin is one core module instance (plus the adapter shims wit-component adds).
        pool.total_core_instances(total_instances.saturating_mul(4));
        pool.total_memories(total_instances);
        pool.total_tables(total_instances.saturating_mul(4));
        pool.max_memory_size(config.limits.max_memory_bytes);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&c).map_err(|e| LoadError::Engine { reason: format!("{e:#}") })
}

/// A thread that increments the engine's epoch every [`EPOCH_TICK`]; stopped and joined when dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`'s epoch.
    pub fn start(engine: Engine) -> Result<Self, LoadError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pingpost-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine { reason: format!("cannot start the epoch ticker thread: {e}") })?;
        Ok(EpochTicker { stop, handle: Some(handle) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Epoch ticks that cover `deadline` (at least one).
pub fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).max(1)
}

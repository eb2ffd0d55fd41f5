//! One live plugin instance and one bounded call on it, reporting wall time, fuel, peak memory and logs.

use std::time::Duration;

use serde::Serialize;
use wasmtime::{Engine, Store, Trap};

use super::bindings::{v0_1, v0_2};
use super::component::one_line;
use super::config::Limits;
use super::engine::deadline_ticks;
use super::error::{CallError, bounded_reason};
use super::sandbox::StoreState;
use pingpost_model::LogLine;

/// The answer of one call and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallReport<T> {
    /// The plugin's answer.
    pub value: T,
    /// Wall time of the call, including taking or creating the instance.
    #[serde(serialize_with = "as_micros", rename = "wall_us")]
    pub wall: Duration,
    /// Fuel the call used; `None` when fuel metering is off.
    pub fuel_consumed: Option<u64>,
    /// Highest linear memory the instance held during the call, in bytes.
    pub peak_memory_bytes: usize,
    /// Lines the plugin logged, within the caps.
    pub logs: Vec<LogLine>,
    /// Lines dropped because the call went past the log caps.
    pub logs_dropped: u64,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A world's generated bindings: how to instantiate and configure them.
pub trait WorldBindings: Sized + Send + 'static {
    /// The pre-instance (imports resolved, exports type-checked) the bindings come from.
    type Pre: Clone + Send + Sync + 'static;
    /// Instantiates the bindings in `store`.
    fn instantiate(pre: &Self::Pre, store: &mut Store<StoreState>) -> wasmtime::Result<Self>;
    /// Calls the world's `configure` export: `owner_id` is the campaign (or publisher) the instance serves.
    fn configure(
        &self,
        store: &mut Store<StoreState>,
        owner_id: &str,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>>;
}

/// The bindings of both worlds of one contract version module.
macro_rules! world_bindings {
    ($version:ident) => {
        impl WorldBindings for $version::Buyer {
            type Pre = $version::BuyerPre<StoreState>;
            fn instantiate(pre: &Self::Pre, store: &mut Store<StoreState>) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
            fn configure(
                &self,
                store: &mut Store<StoreState>,
                campaign_id: &str,
                config: &str,
            ) -> wasmtime::Result<Result<(), String>> {
                self.pingpost_plugin_bidder().call_configure(store, campaign_id, config)
            }
        }

        impl WorldBindings for $version::Redactor {
            type Pre = $version::RedactorPre<StoreState>;
            fn instantiate(pre: &Self::Pre, store: &mut Store<StoreState>) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
            fn configure(
                &self,
                store: &mut Store<StoreState>,
                publisher_id: &str,
                config: &str,
            ) -> wasmtime::Result<Result<(), String>> {
                self.pingpost_plugin_redaction().call_configure(store, publisher_id, config)
            }
        }
    };
}

world_bindings!(v0_1);
world_bindings!(v0_2);

/// A live instance: its own store (memory, fuel, deadline, log) and the world's bindings.
pub struct Instance<B> {
    store: Store<StoreState>,
    bindings: B,
    calls: u64,
}

/// What a finished call measured, whatever its outcome.
#[derive(Debug)]
pub struct CallStats {
    pub fuel_consumed: Option<u64>,
    pub peak_memory_bytes: usize,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
}

impl<B: WorldBindings> Instance<B> {
    /// Creates a store under `limits`, instantiates `pre` in it and configures the instance for `owner_id` with
    /// `config`, all within the set-up deadline (`limits.setup_deadline`) and one call's fuel. A refused config is [`CallError::Config`]; a trap while
    /// configuring is a failed call like any other.
    pub fn new(
        engine: &Engine,
        pre: &B::Pre,
        limits: &Limits,
        owner_id: &str,
        config: &str,
    ) -> Result<Self, CallError> {
        let mut store = Store::new(engine, StoreState::new(limits));
        store.limiter(|state| &mut state.limiter);
        let setup = Limits { deadline: limits.setup_deadline, ..limits.clone() };
        arm(&mut store, &setup)?;
        let bindings = match B::instantiate(pre, &mut store) {
            Ok(bindings) => bindings,
            Err(e) => {
                return Err(match classify(&e, &store, &setup) {
                    CallError::Trap { message } => CallError::Instantiate { reason: message },
                    other => other,
                });
            }
        };
        match bindings.configure(&mut store, owner_id, config) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(CallError::Config { reason: bounded_reason(reason) }),
            Err(e) => return Err(classify(&e, &store, &setup)),
        }
        // What `configure` logged belongs to no call.
        store.data_mut().log.take();
        Ok(Instance { store, bindings, calls: 0 })
    }

    /// Instantiates `pre` once under `limits` without configuring it, then drops it: whether the plugin can start at
    /// all within its limits (its static memory and data segments, its tables and instances), whatever its config.
    pub fn check(engine: &Engine, pre: &B::Pre, limits: &Limits) -> Result<(), CallError> {
        let mut store = Store::new(engine, StoreState::new(limits));
        store.limiter(|state| &mut state.limiter);
        let setup = Limits { deadline: limits.setup_deadline, ..limits.clone() };
        arm(&mut store, &setup)?;
        B::instantiate(pre, &mut store).map(drop).map_err(|e| match classify(&e, &store, &setup) {
            CallError::Trap { message } => CallError::Instantiate { reason: message },
            other => other,
        })
    }

    /// Calls done on this instance so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Runs `f` on this instance under the per-call limits. On `Err` the instance must be dropped: a component
    /// instance that trapped cannot be entered again.
    pub fn call<R>(
        &mut self,
        limits: &Limits,
        f: impl FnOnce(&B, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> (Result<R, CallError>, CallStats) {
        self.calls += 1;
        self.store.data_mut().limiter.start_call();
        let armed = arm(&mut self.store, limits);
        let result = match armed {
            Ok(()) => f(&self.bindings, &mut self.store).map_err(|e| classify(&e, &self.store, limits)),
            Err(e) => Err(e),
        };
        let fuel_consumed = limits.fuel.map(|budget| budget.saturating_sub(self.store.get_fuel().unwrap_or(0)));
        let state = self.store.data_mut();
        let (logs, logs_dropped) = state.log.take();
        let stats = CallStats { fuel_consumed, peak_memory_bytes: state.limiter.peak(), logs, logs_dropped };
        (result, stats)
    }
}

/// Sets the call's fuel budget and deadline on the store.
fn arm(store: &mut Store<StoreState>, limits: &Limits) -> Result<(), CallError> {
    if let Some(budget) = limits.fuel {
        store.set_fuel(budget).map_err(|e| CallError::Instantiate { reason: one_line(&e) })?;
    }
    store.set_epoch_deadline(deadline_ticks(limits.deadline));
    Ok(())
}

/// Turns a wasmtime error from a call into the typed reason it failed.
fn classify(e: &wasmtime::Error, store: &Store<StoreState>, limits: &Limits) -> CallError {
    let refused = store.data().limiter.refused();
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { budget: limits.fuel.unwrap_or(0) },
        Some(Trap::Interrupt) => CallError::Timeout { deadline_ms: limits.deadline.as_millis() as u64 },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        _ if refused => CallError::MemoryLimit { limit_bytes: store.data().limiter.limit() },
        Some(trap) => CallError::Trap { message: trap.to_string() },
        None => CallError::Trap { message: one_line(e) },
    }
}

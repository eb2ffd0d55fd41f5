//! Per-campaign plugins and their instances. A [`BuyerPlugin`] (one campaign) or [`RedactorPlugin`] (one publisher)
//! owns its instances: two campaigns never share one, even when they run the same module, so neither config nor
//! guest state can leak between them.
//!
//! In warm mode a small stack of idle instances is kept and reused, so concurrent callers never wait for each other
//! (a caller that finds none idle makes one, and gives it back if there is room). An instance is dropped after a
//! failed call (a trapped component instance can never be entered again), after `max_calls` calls, and with its
//! plugin when a new version is activated. In fresh mode every call gets a new instance.

use std::sync::{Arc, Mutex};

use wasmtime::Store;

use super::bindings::v0_1::{self, Buyer, Redactor, types};
use super::breaker::{BreakerStatus, CircuitBreaker};
use super::config::InstanceMode;
use super::error::{CallError, LoadError};
use super::instance::{CallReport, CallStats, Instance, WorldBindings};
use super::runtime::{Plugin, PluginPre, Shared, World};
use super::sandbox::StoreState;
use crate::model::{CapsLeft, Decision, Lead, Ping, RedactContext};

/// The instances of one campaign's plugin.
struct InstancePool<B: WorldBindings> {
    pre: B::Pre,
    idle: Mutex<Vec<Instance<B>>>,
    shared: Arc<Shared>,
}

impl<B: WorldBindings> InstancePool<B> {
    fn new(pre: B::Pre, shared: Arc<Shared>) -> Self {
        InstancePool { pre, idle: Mutex::new(Vec::new()), shared }
    }

    fn take(&self) -> Result<Instance<B>, CallError> {
        if let InstanceMode::Warm { .. } = self.shared.config.instance_mode
            && let Some(instance) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
        {
            return Ok(instance);
        }
        Instance::new(&self.shared.engine, &self.pre, &self.shared.config.limits)
    }

    fn give_back(&self, instance: Instance<B>) {
        if let InstanceMode::Warm { idle_per_campaign, max_calls } = self.shared.config.instance_mode
            && instance.calls() < max_calls
        {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < idle_per_campaign {
                idle.push(instance);
            }
        }
    }

    /// Runs one call on an instance, checks the answer with `check`, and keeps the instance only after a success.
    fn invoke<R>(
        &self,
        breaker: &CircuitBreaker,
        call: impl FnOnce(&B, &mut Store<StoreState>) -> wasmtime::Result<R>,
        check: impl FnOnce(&R) -> Result<(), CallError>,
    ) -> Result<(R, CallStats), CallError> {
        let now = self.shared.clock.now_unix_ms();
        breaker.check(now)?;
        let outcome = self.take().and_then(|mut instance| {
            let (result, stats) = instance.call(&self.shared.config.limits, call);
            let value = result.and_then(|value| check(&value).map(|()| value))?;
            self.give_back(instance);
            Ok((value, stats))
        });
        match &outcome {
            Ok(_) => breaker.record_success(),
            Err(e) => breaker.record_failure(self.shared.clock.now_unix_ms(), e),
        }
        outcome
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn output_cap(bytes: usize, limit: usize) -> Result<(), CallError> {
    if bytes > limit { Err(CallError::OutputTooLarge { bytes, limit }) } else { Ok(()) }
}

fn report<T>(value: T, stats: CallStats, started: std::time::Instant) -> CallReport<T> {
    CallReport {
        value,
        wall: started.elapsed(),
        fuel_consumed: stats.fuel_consumed,
        peak_memory_bytes: stats.peak_memory_bytes,
        logs: stats.logs,
        logs_dropped: stats.logs_dropped,
    }
}

/// One campaign's buyer: a buyer plugin, the campaign's config and the campaign's own instances.
pub struct BuyerPlugin {
    plugin: Arc<Plugin>,
    campaign_id: String,
    config: String,
    pool: InstancePool<Buyer>,
    breaker: CircuitBreaker,
}

impl BuyerPlugin {
    pub(crate) fn new(plugin: Arc<Plugin>, campaign_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Buyer(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Buyer.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        Ok(BuyerPlugin {
            pool: InstancePool::new(pre.clone(), shared.clone()),
            breaker: CircuitBreaker::new(shared.config.breaker),
            plugin,
            campaign_id,
            config,
        })
    }

    /// Asks the buyer for a decision on `ping`, bounded by the runtime's limits.
    pub fn bid(&self, ping: &Ping, now_unix_ms: i64, caps_left: CapsLeft) -> Result<CallReport<Decision>, CallError> {
        let started = std::time::Instant::now();
        let wit_ping = types::Ping::from(ping);
        let context = types::BidContext {
            campaign_id: self.campaign_id.clone(),
            config: self.config.clone(),
            now_unix_ms,
            caps_left: (&caps_left).into(),
        };
        let limit = self.pool.shared.config.limits.max_output_bytes;
        let (decision, stats) = self.pool.invoke(
            &self.breaker,
            |buyer, store| buyer.pingpost_plugin_bidder().call_bid(store, &wit_ping, &context),
            |decision| output_cap(v0_1::decision_string_bytes(decision), limit),
        )?;
        Ok(report(decision.into(), stats, started))
    }

    /// The module this buyer runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The campaign this buyer serves.
    pub fn campaign_id(&self) -> &str {
        &self.campaign_id
    }

    /// The campaign's config string.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared.clock.now_unix_ms())
    }

    /// Idle warm instances kept for this campaign.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle_count()
    }
}

/// One publisher's redactor: a redactor plugin, the publisher's config and its own instances.
pub struct RedactorPlugin {
    plugin: Arc<Plugin>,
    publisher_id: String,
    config: String,
    pool: InstancePool<Redactor>,
    breaker: CircuitBreaker,
}

impl RedactorPlugin {
    pub(crate) fn new(plugin: Arc<Plugin>, publisher_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Redactor(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Redactor.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        Ok(RedactorPlugin {
            pool: InstancePool::new(pre.clone(), shared.clone()),
            breaker: CircuitBreaker::new(shared.config.breaker),
            plugin,
            publisher_id,
            config,
        })
    }

    /// Asks the redactor for the ping of `lead` (or its reason not to ping), bounded by the runtime's limits.
    pub fn redact(&self, lead: &Lead, now_unix_ms: i64) -> Result<CallReport<Result<Ping, String>>, CallError> {
        let started = std::time::Instant::now();
        let wit_lead = types::Lead::from(lead);
        let context: types::RedactContext =
            (&RedactContext { publisher_id: self.publisher_id.clone(), config: self.config.clone(), now_unix_ms })
                .into();
        let limit = self.pool.shared.config.limits.max_output_bytes;
        let (answer, stats) = self.pool.invoke(
            &self.breaker,
            |redactor, store| redactor.pingpost_plugin_redaction().call_redact(store, &wit_lead, &context),
            |answer| output_cap(v0_1::redaction_string_bytes(answer), limit),
        )?;
        Ok(report(answer.map(Ping::from), stats, started))
    }

    /// The module this redactor runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The publisher this redactor serves.
    pub fn publisher_id(&self) -> &str {
        &self.publisher_id
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared.clock.now_unix_ms())
    }

    /// Idle warm instances kept for this publisher.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle_count()
    }
}

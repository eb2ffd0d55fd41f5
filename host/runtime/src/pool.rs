//! Per-campaign plugins and their instances. A [`BuyerPlugin`] (one campaign) or [`RedactorPlugin`] (one publisher)
//! owns its instances: two campaigns never share one, even when they run the same module, so neither config nor
//! guest state can leak between them. Every new instance is configured (the contract's `configure`) with its
//! campaign's config before it serves a call; the first one is made when the plugin is created, so a config the
//! plugin refuses is refused then ([`LoadError::Config`]), not at ping time.
//!
//! In warm mode a small stack of idle instances is kept and reused, so concurrent callers never wait for each other
//! (a caller that finds none idle makes one, and gives it back if there is room). An instance is dropped after a
//! failed call (a trapped component instance can never be entered again), after `max_calls` calls, and with its
//! plugin when a new version is activated. In fresh mode every call gets a new instance.
//!
//! Each plugin also keeps an [`InlineRecord`] of its recent calls: after `InlinePolicy::after_calls` consecutive
//! successful calls under `InlinePolicy::threshold` it is trusted to run inline on an async worker thread
//! ([`BuyerPlugin::inline_trusted`]); any failure or slow call takes that trust away.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::bindings::v0_1::{self, Buyer, InvalidPing, Redactor, types};
use super::breaker::{BreakerStatus, CircuitBreaker};
use super::config::{InlinePolicy, InstanceMode};
use super::error::{CallError, LoadError};
use super::instance::{CallReport, CallStats, Instance, WorldBindings};
use super::plugin::{Plugin, PluginPre, Shared};
use super::sandbox::StoreState;
use super::validate::World;
use pingpost_model::{CapsLeft, Decision, Lead, Ping, RedactContext};

/// The instances of one campaign's plugin, all configured for that campaign.
struct InstancePool<B: WorldBindings> {
    pre: B::Pre,
    idle: Mutex<Vec<Instance<B>>>,
    shared: Arc<Shared>,
    /// The campaign (or publisher) every instance is configured for.
    owner_id: String,
    config: String,
    inline: InlineRecord,
}

/// A plugin's recent behaviour, cheap enough to read and update on every call: the number of consecutive
/// successful calls that each took less than the inline threshold.
#[derive(Debug, Default)]
pub struct InlineRecord {
    streak: AtomicU32,
}

impl InlineRecord {
    /// Counts one finished call: a success under `policy.threshold` extends the streak, anything else ends it.
    pub fn record(&self, policy: &InlinePolicy, succeeded: bool, wall: Duration) {
        if succeeded && wall < policy.threshold {
            // A trusted plugin's streak needs no more counting: a plain load on its every call instead of a locked
            // read-modify-write (and the streak never overflows).
            if self.streak.load(Ordering::Relaxed) >= policy.after_calls {
                return;
            }
            self.streak.fetch_add(1, Ordering::Relaxed);
        } else {
            self.streak.store(0, Ordering::Relaxed);
        }
    }

    /// Whether the streak is long enough under `policy` to run the plugin inline.
    pub fn trusted(&self, policy: &InlinePolicy) -> bool {
        policy.after_calls > 0 && self.streak.load(Ordering::Relaxed) >= policy.after_calls
    }
}

impl<B: WorldBindings> InstancePool<B> {
    /// A pool with its first instance already made and configured (kept as the first warm one in warm mode).
    fn new(pre: B::Pre, shared: Arc<Shared>, owner_id: String, config: String) -> Result<Self, LoadError> {
        let pool = InstancePool {
            pre,
            idle: Mutex::new(Vec::new()),
            shared,
            owner_id,
            config,
            inline: InlineRecord::default(),
        };
        let first = pool.create().map_err(|error| match error {
            CallError::Config { reason } => LoadError::Config { reason },
            error => LoadError::FirstInstance { error },
        })?;
        pool.give_back(first);
        Ok(pool)
    }

    /// A new instance, configured for the pool's campaign.
    fn create(&self) -> Result<Instance<B>, CallError> {
        Instance::new(&self.shared.engine, &self.pre, &self.shared.config.limits, &self.owner_id, &self.config)
    }

    fn take(&self) -> Result<Instance<B>, CallError> {
        if let InstanceMode::Warm { .. } = self.shared.config.instance_mode
            && let Some(instance) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
        {
            return Ok(instance);
        }
        self.create()
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
    /// Returns the answer with the call's stats and its wall time since `started`, read once for both the inline
    /// record and the report (a clock read is about 25 ns here, 2% of a warm call).
    fn invoke<R>(
        &self,
        started: Instant,
        breaker: &CircuitBreaker,
        call: impl FnOnce(&B, &mut Store<StoreState>) -> wasmtime::Result<R>,
        check: impl FnOnce(&R) -> Result<(), CallError>,
    ) -> Result<(R, CallStats, Duration), CallError> {
        // A closed breaker (the usual case) needs no clock read.
        if !breaker.is_closed()
            && let Err(refused) = breaker.check(self.shared.clock.now_unix_ms())
        {
            self.inline.record(&self.shared.config.inline, false, started.elapsed());
            return Err(refused);
        }
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
        let wall = started.elapsed();
        // Instantiation counts too: a plugin whose new instances are slow is not run inline either.
        self.inline.record(&self.shared.config.inline, outcome.is_ok(), wall);
        outcome.map(|(value, stats)| (value, stats, wall))
    }

    fn inline_trusted(&self) -> bool {
        self.inline.trusted(&self.shared.config.inline)
    }

    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn output_cap(bytes: usize, limit: usize) -> Result<(), CallError> {
    if bytes > limit { Err(CallError::OutputTooLarge { bytes, limit }) } else { Ok(()) }
}

fn report<T>(value: T, stats: CallStats, wall: Duration) -> CallReport<T> {
    CallReport {
        value,
        wall,
        fuel_consumed: stats.fuel_consumed,
        peak_memory_bytes: stats.peak_memory_bytes,
        logs: stats.logs,
        logs_dropped: stats.logs_dropped,
    }
}

impl From<InvalidPing> for CallError {
    fn from(invalid: InvalidPing) -> Self {
        CallError::InvalidInput { reason: invalid.to_string() }
    }
}

/// A ping in its contract form, converted once per auction and lent to every buyer's call, so the fan-out does not
/// copy the ping's strings once per campaign.
#[derive(Debug, Clone)]
pub struct PreparedPing(types::Ping);

impl PreparedPing {
    /// Converts `ping` to the contract's form, or says which field does not fit it (a state that is not one of the
    /// 51 upper-case codes, a ZIP3 that is not three digits).
    pub fn new(ping: &Ping) -> Result<Self, InvalidPing> {
        types::Ping::try_from(ping).map(PreparedPing)
    }
}

/// One campaign's buyer: a buyer plugin, the campaign's config and the campaign's own instances.
pub struct BuyerPlugin {
    plugin: Arc<Plugin>,
    pool: InstancePool<Buyer>,
    breaker: CircuitBreaker,
}

impl BuyerPlugin {
    /// Makes and configures the campaign's first instance: a config the plugin refuses is [`LoadError::Config`].
    pub(crate) fn new(plugin: Arc<Plugin>, campaign_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Buyer(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Buyer.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        Ok(BuyerPlugin {
            pool: InstancePool::new(pre.clone(), shared.clone(), campaign_id, config)?,
            breaker: CircuitBreaker::new(shared.config.breaker),
            plugin,
        })
    }

    /// Asks the buyer for a decision on `ping`, bounded by the runtime's limits. A ping that does not fit the
    /// contract is [`CallError::InvalidInput`], before the plugin is called.
    pub fn bid(&self, ping: &Ping, now_unix_ms: i64, caps_left: CapsLeft) -> Result<CallReport<Decision>, CallError> {
        let ping = PreparedPing::new(ping)?;
        self.bid_prepared(&ping, now_unix_ms, caps_left)
    }

    /// [`BuyerPlugin::bid`] on a ping converted once with [`PreparedPing::new`] for all the auction's buyers.
    pub fn bid_prepared(
        &self,
        ping: &PreparedPing,
        now_unix_ms: i64,
        caps_left: CapsLeft,
    ) -> Result<CallReport<Decision>, CallError> {
        self.bid_prepared_since(ping, now_unix_ms, caps_left, Instant::now())
    }

    /// [`BuyerPlugin::bid_prepared`] for a caller that already read the clock: the report's `wall` counts from
    /// `started`, so a caller running buyers one after another starts the next at `started + wall` and pays one
    /// clock read per call instead of three.
    pub fn bid_prepared_since(
        &self,
        ping: &PreparedPing,
        now_unix_ms: i64,
        caps_left: CapsLeft,
        started: Instant,
    ) -> Result<CallReport<Decision>, CallError> {
        let context = types::BidContext { now_unix_ms, caps_left: (&caps_left).into() };
        let limit = self.pool.shared.config.limits.max_output_bytes;
        let (decision, stats, wall) = self.pool.invoke(
            started,
            &self.breaker,
            |buyer, store| buyer.pingpost_plugin_bidder().call_bid(store, &ping.0, context),
            |decision| output_cap(v0_1::decision_string_bytes(decision), limit),
        )?;
        Ok(report(decision.into(), stats, wall))
    }

    /// The module this buyer runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The campaign this buyer serves.
    pub fn campaign_id(&self) -> &str {
        &self.pool.owner_id
    }

    /// The campaign's config string.
    pub fn config(&self) -> &str {
        &self.pool.config
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared.clock.now_unix_ms())
    }

    /// Idle warm instances kept for this campaign.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle_count()
    }

    /// Whether this buyer's recent calls were all quick successes, so the fan-out may run it inline on an async
    /// worker thread (see [`InlinePolicy`]).
    pub fn inline_trusted(&self) -> bool {
        self.pool.inline_trusted()
    }

    /// The runtime's inline policy (the fan-out reads its per-auction budget).
    pub fn inline_policy(&self) -> &InlinePolicy {
        &self.pool.shared.config.inline
    }
}

/// One publisher's redactor: a redactor plugin, the publisher's config and its own instances.
pub struct RedactorPlugin {
    plugin: Arc<Plugin>,
    pool: InstancePool<Redactor>,
    breaker: CircuitBreaker,
}

impl RedactorPlugin {
    /// Makes and configures the publisher's first instance: a config the plugin refuses is [`LoadError::Config`].
    pub(crate) fn new(plugin: Arc<Plugin>, publisher_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Redactor(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Redactor.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        Ok(RedactorPlugin {
            pool: InstancePool::new(pre.clone(), shared.clone(), publisher_id, config)?,
            breaker: CircuitBreaker::new(shared.config.breaker),
            plugin,
        })
    }

    /// Asks the redactor for the ping of `lead` (or its reason not to ping), bounded by the runtime's limits.
    pub fn redact(&self, lead: &Lead, now_unix_ms: i64) -> Result<CallReport<Result<Ping, String>>, CallError> {
        let started = Instant::now();
        let wit_lead = types::Lead::from(lead);
        let context = types::RedactContext::from(&RedactContext { now_unix_ms });
        let limit = self.pool.shared.config.limits.max_output_bytes;
        let (answer, stats, wall) = self.pool.invoke(
            started,
            &self.breaker,
            |redactor, store| redactor.pingpost_plugin_redaction().call_redact(store, &wit_lead, context),
            |answer| {
                output_cap(v0_1::redaction_string_bytes(answer), limit)?;
                match answer {
                    Ok(ping) => v0_1::check_ping(ping).map_err(|e| CallError::InvalidOutput { reason: e.to_string() }),
                    Err(_) => Ok(()),
                }
            },
        )?;
        Ok(report(answer.map(Ping::from), stats, wall))
    }

    /// The module this redactor runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The publisher this redactor serves.
    pub fn publisher_id(&self) -> &str {
        &self.pool.owner_id
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared.clock.now_unix_ms())
    }

    /// Idle warm instances kept for this publisher.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle_count()
    }

    /// Whether this redactor's recent calls were all quick successes, so the engine may run it inline on an async
    /// worker thread (see [`InlinePolicy`]).
    pub fn inline_trusted(&self) -> bool {
        self.pool.inline_trusted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_micros(50);

    #[test]
    fn a_plugin_is_trusted_only_after_its_streak_of_quick_successes() {
        let policy = InlinePolicy::default();
        let record = InlineRecord::default();
        for _ in 0..policy.after_calls {
            assert!(!record.trusted(&policy));
            record.record(&policy, true, QUICK);
        }
        assert!(record.trusted(&policy));
    }

    #[test]
    fn a_failure_or_a_slow_call_takes_the_trust_away_and_restarts_the_streak() {
        let policy = InlinePolicy::default();
        let record = InlineRecord::default();
        for demotion in [(false, QUICK), (true, policy.threshold)] {
            for _ in 0..policy.after_calls {
                record.record(&policy, true, QUICK);
            }
            assert!(record.trusted(&policy));
            record.record(&policy, demotion.0, demotion.1);
            assert!(!record.trusted(&policy));
            record.record(&policy, true, QUICK);
            assert!(!record.trusted(&policy), "one good call does not restore the trust");
        }
    }

    #[test]
    fn no_plugin_is_trusted_when_the_policy_turns_inline_calls_off() {
        let policy = InlinePolicy { after_calls: 0, ..InlinePolicy::default() };
        let record = InlineRecord::default();
        record.record(&policy, true, QUICK);
        assert!(!record.trusted(&policy));
    }
}

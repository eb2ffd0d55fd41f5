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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::bindings::{InvalidPing, v0_1, v0_2};
use super::breaker::{BreakerStatus, CircuitBreaker};
use super::config::{InlinePolicy, InstanceMode};
use super::error::{CallError, LoadError};
use super::instance::{CallReport, CallStats, Instance, WorldBindings};
use super::plugin::{Plugin, PluginPre, Shared, Versioned, each_version};
use super::sandbox::StoreState;
use super::validate::World;
use pingpost_model::{BidContext, Decision, Lead, Ping, PingRequest, RedactContext};

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
/// copy the ping's strings once per campaign. It holds the latest version's form, and the 0.1.0 form once a 0.1.0
/// buyer asked for it.
#[derive(Debug, Clone)]
pub struct PreparedPing {
    latest: v0_2::types::Ping,
    v0_1: OnceLock<v0_1::types::Ping>,
}

impl PreparedPing {
    /// Converts `ping` to the contract's form, or says which field does not fit it (a state that is not one of the
    /// 51 upper-case codes, a ZIP3 that is not three digits).
    pub fn new(ping: &Ping) -> Result<Self, InvalidPing> {
        let latest = v0_2::types::Ping::try_from(ping)?;
        Ok(PreparedPing { latest, v0_1: OnceLock::new() })
    }

    fn v0_1(&self) -> &v0_1::types::Ping {
        self.v0_1.get_or_init(|| v0_1::types::Ping::from(&self.latest))
    }
}

/// A campaign's instances, in the bindings of its plugin's contract version.
type BuyerPool = Versioned<InstancePool<v0_1::Buyer>, InstancePool<v0_2::Buyer>>;
/// A publisher's instances, in the bindings of its redactor's contract version.
type RedactorPool = Versioned<InstancePool<v0_1::Redactor>, InstancePool<v0_2::Redactor>>;

/// What every pool has, whatever its version.
macro_rules! pool_accessors {
    ($pool:ty) => {
        impl $pool {
            fn shared(&self) -> &Arc<Shared> {
                each_version!(self, pool => &pool.shared)
            }

            fn owner_id(&self) -> &str {
                each_version!(self, pool => &pool.owner_id)
            }

            fn idle_count(&self) -> usize {
                each_version!(self, pool => pool.idle_count())
            }

            fn inline_trusted(&self) -> bool {
                each_version!(self, pool => pool.inline_trusted())
            }
        }
    };
}
pool_accessors!(BuyerPool);
pool_accessors!(RedactorPool);

impl BuyerPool {
    fn config(&self) -> &str {
        each_version!(self, pool => &pool.config)
    }
}

/// One campaign's buyer: a buyer plugin, the campaign's config and the campaign's own instances.
pub struct BuyerPlugin {
    plugin: Arc<Plugin>,
    pool: BuyerPool,
    breaker: CircuitBreaker,
}

impl BuyerPlugin {
    /// Makes and configures the campaign's first instance: a config the plugin refuses is [`LoadError::Config`].
    pub(crate) fn new(plugin: Arc<Plugin>, campaign_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Buyer(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Buyer.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        let pool = match pre {
            Versioned::V0_1(pre) => {
                Versioned::V0_1(InstancePool::new(pre.clone(), shared.clone(), campaign_id, config)?)
            }
            Versioned::V0_2(pre) => {
                Versioned::V0_2(InstancePool::new(pre.clone(), shared.clone(), campaign_id, config)?)
            }
        };
        Ok(BuyerPlugin { pool, breaker: CircuitBreaker::new(shared.config.breaker), plugin })
    }

    /// Asks the buyer for a decision on `ping`, bounded by the runtime's limits. A ping that does not fit the
    /// contract is [`CallError::InvalidInput`], before the plugin is called.
    pub fn bid(&self, ping: &Ping, context: &BidContext) -> Result<CallReport<Decision>, CallError> {
        let ping = PreparedPing::new(ping)?;
        self.bid_prepared(&ping, context)
    }

    /// [`BuyerPlugin::bid`] on a ping converted once with [`PreparedPing::new`] for all the auction's buyers.
    pub fn bid_prepared(&self, ping: &PreparedPing, context: &BidContext) -> Result<CallReport<Decision>, CallError> {
        self.bid_prepared_since(ping, context, Instant::now())
    }

    /// [`BuyerPlugin::bid_prepared`] for a caller that already read the clock: the report's `wall` counts from
    /// `started`, so a caller running buyers one after another starts the next at `started + wall` and pays one
    /// clock read per call instead of three.
    pub fn bid_prepared_since(
        &self,
        ping: &PreparedPing,
        context: &BidContext,
        started: Instant,
    ) -> Result<CallReport<Decision>, CallError> {
        let limit = self.pool.shared().config.limits.max_output_bytes;
        let (decision, stats, wall) = match &self.pool {
            Versioned::V0_1(pool) => {
                let (ping, context) = (ping.v0_1(), v0_1::types::BidContext::from(context));
                let (decision, stats, wall) = pool.invoke(
                    started,
                    &self.breaker,
                    |buyer, store| buyer.pingpost_plugin_bidder().call_bid(store, ping, context),
                    |decision| output_cap(v0_1::decision_string_bytes(decision), limit),
                )?;
                (Decision::from(decision), stats, wall)
            }
            Versioned::V0_2(pool) => {
                let context = v0_2::types::BidContext::from(context);
                let (decision, stats, wall) = pool.invoke(
                    started,
                    &self.breaker,
                    |buyer, store| buyer.pingpost_plugin_bidder().call_bid(store, &ping.latest, context),
                    |decision| output_cap(v0_2::decision_string_bytes(decision), limit),
                )?;
                (Decision::from(decision), stats, wall)
            }
        };
        Ok(report(decision, stats, wall))
    }

    /// The module this buyer runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The campaign this buyer serves.
    pub fn campaign_id(&self) -> &str {
        self.pool.owner_id()
    }

    /// The campaign's config string.
    pub fn config(&self) -> &str {
        self.pool.config()
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared().clock.now_unix_ms())
    }

    /// Idle warm instances kept for this campaign.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle_count()
    }

    /// The plugin version this buyer runs: the SHA-256 of its bytes.
    pub fn plugin_sha256(&self) -> &[u8; 32] {
        self.plugin.sha256()
    }

    /// Whether this buyer's recent calls were all quick successes, so the fan-out may run it inline on an async
    /// worker thread (see [`InlinePolicy`]).
    pub fn inline_trusted(&self) -> bool {
        self.pool.inline_trusted()
    }

    /// The runtime's inline policy (the fan-out reads its per-auction budget).
    pub fn inline_policy(&self) -> &InlinePolicy {
        &self.pool.shared().config.inline
    }
}

/// One publisher's redactor: a redactor plugin, the publisher's config and its own instances.
pub struct RedactorPlugin {
    plugin: Arc<Plugin>,
    pool: RedactorPool,
    breaker: CircuitBreaker,
}

/// A redactor's answer as it crossed the contract, checked: the output cap and what the types cannot say.
macro_rules! checked_redaction {
    ($version:ident, $limit:expr) => {
        |answer: &Result<$version::types::Ping, String>| {
            output_cap($version::redaction_string_bytes(answer), $limit)?;
            match answer {
                Ok(ping) => $version::check_ping(ping).map_err(|e| CallError::InvalidOutput { reason: e.to_string() }),
                Err(_) => Ok(()),
            }
        }
    };
}

impl RedactorPlugin {
    /// Makes and configures the publisher's first instance: a config the plugin refuses is [`LoadError::Config`].
    pub(crate) fn new(plugin: Arc<Plugin>, publisher_id: String, config: String) -> Result<Self, LoadError> {
        let PluginPre::Redactor(pre) = &plugin.pre else {
            return Err(LoadError::WorldMismatch { expected: World::Redactor.name(), found: plugin.world().name() });
        };
        let shared = plugin.shared.clone();
        let pool = match pre {
            Versioned::V0_1(pre) => {
                Versioned::V0_1(InstancePool::new(pre.clone(), shared.clone(), publisher_id, config)?)
            }
            Versioned::V0_2(pre) => {
                Versioned::V0_2(InstancePool::new(pre.clone(), shared.clone(), publisher_id, config)?)
            }
        };
        Ok(RedactorPlugin { pool, breaker: CircuitBreaker::new(shared.config.breaker), plugin })
    }

    /// Asks the redactor for the ping of `lead` (or its reason not to ping), bounded by the runtime's limits.
    pub fn redact(&self, lead: &Lead, now_unix_ms: i64) -> Result<CallReport<Result<Ping, String>>, CallError> {
        let started = Instant::now();
        let context = RedactContext { now_unix_ms };
        let limit = self.pool.shared().config.limits.max_output_bytes;
        match &self.pool {
            Versioned::V0_1(pool) => {
                let (lead, context) = (v0_1::types::Lead::from(lead), v0_1::types::RedactContext::from(&context));
                let (answer, stats, wall) = pool.invoke(
                    started,
                    &self.breaker,
                    |redactor, store| redactor.pingpost_plugin_redaction().call_redact(store, &lead, context),
                    checked_redaction!(v0_1, limit),
                )?;
                Ok(report(answer.map(Ping::from), stats, wall))
            }
            Versioned::V0_2(pool) => {
                let (lead, context) = (v0_2::types::Lead::from(lead), v0_2::types::RedactContext::from(&context));
                let (answer, stats, wall) = pool.invoke(
                    started,
                    &self.breaker,
                    |redactor, store| redactor.pingpost_plugin_redaction().call_redact(store, &lead, context),
                    checked_redaction!(v0_2, limit),
                )?;
                Ok(report(answer.map(Ping::from), stats, wall))
            }
        }
    }

    /// Whether this redactor can redact a PII-free ping request ([`RedactorPlugin::redact_ping`]): its contract
    /// version has the export (0.2.0 on).
    pub fn redacts_pings(&self) -> bool {
        matches!(self.pool, Versioned::V0_2(_))
    }

    /// Asks the redactor for the ping of a PII-free `request` (or its reason not to ping). A redactor of a contract
    /// without the export is [`CallError::Unsupported`], before any call (and without counting against its breaker).
    pub fn redact_ping(
        &self,
        request: &PingRequest,
        now_unix_ms: i64,
    ) -> Result<CallReport<Result<Ping, String>>, CallError> {
        let started = Instant::now();
        let limit = self.pool.shared().config.limits.max_output_bytes;
        let Versioned::V0_2(pool) = &self.pool else {
            return Err(CallError::Unsupported { export: "redaction.redact-ping", version: v0_1::VERSION });
        };
        let request = v0_2::types::PingRequest::from(request);
        let context = v0_2::types::RedactContext::from(&RedactContext { now_unix_ms });
        let (answer, stats, wall) = pool.invoke(
            started,
            &self.breaker,
            |redactor, store| redactor.pingpost_plugin_redaction().call_redact_ping(store, &request, context),
            checked_redaction!(v0_2, limit),
        )?;
        Ok(report(answer.map(Ping::from), stats, wall))
    }

    /// The module this redactor runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The publisher this redactor serves.
    pub fn publisher_id(&self) -> &str {
        self.pool.owner_id()
    }

    /// The circuit breaker's state now, with the last failure reason.
    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(self.pool.shared().clock.now_unix_ms())
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

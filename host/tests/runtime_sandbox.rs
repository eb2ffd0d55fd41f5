//! The sandbox: each hostile behaviour ends as its own typed error for that one call, the host and every other
//! plugin carry on, the broken instance is replaced, and a plugin that keeps failing is suspended.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NOW, ping, plugin, wasm, with_cache};
use pingpost::clock::ManualClock;
use pingpost::model::{BidContext, Decision};
use pingpost::plugin::{
    BreakerConfig, BreakerState, BuyerPlugin, CallError, CircuitBreaker, InstanceMode, Limits, LoadError, Runtime,
    RuntimeConfig,
};

const MEMORY_CAP: usize = 16 << 20;

/// The default limits with a deadline generous enough for a loaded 2-core test machine (see `common::runtime`).
fn relaxed() -> Limits {
    Limits { deadline: Duration::from_secs(5), ..Limits::default() }
}

fn runtime_with(limits: Limits) -> Runtime {
    Runtime::new(with_cache(RuntimeConfig { limits, ..RuntimeConfig::default() })).expect("runtime")
}

fn hostile(runtime: &Runtime, mode: &str) -> BuyerPlugin {
    let plugin = runtime.load(&wasm("hostile-buyer")).expect("hostile-buyer loads");
    runtime.buyer(plugin, format!("hostile-{mode}"), mode).expect("buyer")
}

fn call(buyer: &BuyerPlugin) -> Result<Decision, CallError> {
    buyer.bid(&ping(), &BidContext::at(NOW)).map(|report| report.value)
}

/// A good plugin on the same runtime answers correctly after a hostile call.
fn good_plugin_still_answers(runtime: &Runtime) {
    assert_eq!(call(&hostile(runtime, "ok")), Ok(Decision::bid_of(100)));
}

trait BidOf {
    fn bid_of(price_cents: u32) -> Decision;
}

impl BidOf for Decision {
    fn bid_of(price_cents: u32) -> Decision {
        Decision::Bid(pingpost::model::Bid { price_cents, buyer_ref: None, ttl_ms: None })
    }
}

#[test]
fn an_infinite_loop_times_out_at_the_deadline() {
    let runtime = runtime_with(Limits { deadline: Duration::from_millis(10), ..Limits::default() });
    assert_eq!(call(&hostile(&runtime, "loop")), Err(CallError::Timeout { deadline_ms: 10 }));
    good_plugin_still_answers(&runtime);
}

/// The campaign's buyer as `runtime.buyer` makes it: its first instance is configured before it returns.
fn hostile_buyer_result(runtime: &Runtime, mode: &str) -> Result<BuyerPlugin, LoadError> {
    let plugin = runtime.load(&wasm("hostile-buyer")).expect("hostile-buyer loads");
    runtime.buyer(plugin, format!("hostile-{mode}"), mode)
}

#[test]
fn a_configure_that_never_returns_fails_the_campaign_at_the_set_up_deadline() {
    let runtime = runtime_with(Limits { setup_deadline: Duration::from_millis(10), ..Limits::default() });
    let refused = hostile_buyer_result(&runtime, "configure-loop").err();
    assert_eq!(refused, Some(LoadError::FirstInstance { error: CallError::Timeout { deadline_ms: 10 } }));
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_configure_that_traps_fails_the_campaign_with_the_trap() {
    let runtime = runtime_with(relaxed());
    match hostile_buyer_result(&runtime, "configure-panic") {
        Err(LoadError::FirstInstance { error: CallError::Trap { .. } }) => {}
        other => panic!("expected a trap in the first instance, got {:?}", other.err()),
    }
    good_plugin_still_answers(&runtime);
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_when_fuel_is_metered() {
    let runtime =
        runtime_with(Limits { fuel: Some(5_000_000), deadline: Duration::from_secs(10), ..Limits::default() });
    assert_eq!(call(&hostile(&runtime, "loop")), Err(CallError::OutOfFuel { budget: 5_000_000 }));
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let runtime = runtime_with(Limits { max_memory_bytes: MEMORY_CAP, ..relaxed() });
    assert_eq!(call(&hostile(&runtime, "memory-bomb")), Err(CallError::MemoryLimit { limit_bytes: MEMORY_CAP }));
    good_plugin_still_answers(&runtime);
}

/// A Rust guest keeps its frames on a shadow stack at the bottom of linear memory (1 MiB, placed first), which runs
/// out long before the native Wasm stack: the stack pointer wraps below address 0 and the next store traps out of
/// bounds. Native-stack exhaustion would be `CallError::StackOverflow` (mapped from `Trap::StackOverflow`).
#[test]
fn unbounded_recursion_in_a_rust_guest_exhausts_its_shadow_stack_and_traps_out_of_bounds() {
    let runtime = runtime_with(relaxed());
    match call(&hostile(&runtime, "recursion")) {
        Err(CallError::Trap { message }) => assert!(message.contains("out of bounds memory access"), "{message}"),
        other => panic!("expected an out-of-bounds trap, got {other:?}"),
    }
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_panic_is_a_trap() {
    let runtime = runtime_with(relaxed());
    match call(&hostile(&runtime, "panic")) {
        Err(CallError::Trap { message }) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_log_flood_keeps_the_capped_lines_and_counts_the_rest() {
    // The flood is 100,000 host calls: give it time, so the log cap (not the deadline) is what is tested.
    let limits = Limits { deadline: Duration::from_secs(30), max_log_lines: 8, ..relaxed() };
    let runtime = runtime_with(limits);
    let report = hostile(&runtime, "log-flood").bid(&ping(), &BidContext::at(NOW)).expect("the flood answers");
    assert_eq!(report.logs.len(), 8);
    assert_eq!(report.logs.len() as u64 + report.logs_dropped, 100_000);
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_huge_output_cannot_be_built_under_the_memory_cap() {
    let runtime = runtime_with(Limits { max_memory_bytes: MEMORY_CAP, ..relaxed() });
    assert_eq!(call(&hostile(&runtime, "huge-output")), Err(CallError::MemoryLimit { limit_bytes: MEMORY_CAP }));
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_huge_output_built_under_a_generous_memory_cap_is_refused_as_too_large() {
    let limits = Limits { max_memory_bytes: 256 << 20, deadline: Duration::from_secs(10), ..Limits::default() };
    let runtime = runtime_with(limits.clone());
    assert_eq!(
        call(&hostile(&runtime, "huge-output")),
        Err(CallError::OutputTooLarge { bytes: 64 << 20, limit: limits.max_output_bytes })
    );
    good_plugin_still_answers(&runtime);
}

#[test]
fn a_trapped_instance_is_dropped_and_the_next_call_gets_a_new_one() {
    let runtime = runtime_with(relaxed());
    let buyer = hostile(&runtime, "panic");
    for _ in 0..3 {
        // A reused trapped component instance would fail with "cannot enter component instance", not the panic.
        match call(&buyer) {
            Err(CallError::Trap { message }) => assert!(message.contains("unreachable"), "{message}"),
            other => panic!("expected the panic's trap, got {other:?}"),
        }
        assert_eq!(buyer.idle_instances(), 0);
    }
}

#[test]
fn a_successful_call_returns_its_instance_to_the_campaign_pool() {
    let runtime = runtime_with(relaxed());
    let buyer = hostile(&runtime, "ok");
    call(&buyer).expect("answers");
    assert_eq!(buyer.idle_instances(), 1);
    call(&buyer).expect("answers");
    assert_eq!(buyer.idle_instances(), 1, "the same instance was reused");
}

#[test]
fn a_failing_campaign_never_disturbs_another_campaign_of_the_same_module() {
    let runtime = runtime_with(relaxed());
    let plugin = runtime.load(&wasm("hostile-buyer")).expect("loads");
    let broken = runtime.buyer(plugin.clone(), "broken", "panic").expect("buyer");
    let healthy = runtime.buyer(plugin, "healthy", "ok").expect("buyer");
    for _ in 0..4 {
        assert!(call(&broken).is_err());
        assert_eq!(call(&healthy), Ok(Decision::bid_of(100)));
    }
}

#[test]
fn fuel_metering_is_deterministic_and_reported() {
    let runtime = Runtime::new(with_cache(RuntimeConfig {
        limits: Limits { fuel: Some(10_000_000), ..relaxed() },
        instance_mode: InstanceMode::Fresh,
        ..RuntimeConfig::default()
    }))
    .expect("runtime");
    let buyer = runtime.buyer(runtime.load(&wasm("config-buyer")).expect("loads"), "c", r#"{"base_price_cents": 500}"#);
    let buyer = buyer.expect("buyer");
    let first = buyer.bid(&ping(), &BidContext::at(NOW)).expect("answers");
    let second = buyer.bid(&ping(), &BidContext::at(NOW)).expect("answers");
    let fuel = first.fuel_consumed.expect("fuel is metered");
    assert!(fuel > 0);
    assert_eq!(second.fuel_consumed, Some(fuel), "a fresh instance does the same work for the same input");
    assert!(first.peak_memory_bytes > 0);
}

#[test]
fn without_fuel_metering_no_fuel_is_reported() {
    let buyer = common::runtime().buyer(plugin("hostile-buyer"), "c", "ok").expect("buyer");
    assert_eq!(buyer.bid(&ping(), &BidContext::at(NOW)).expect("answers").fuel_consumed, None);
}

fn breaker_runtime(clock: Arc<ManualClock>) -> Runtime {
    let config = RuntimeConfig {
        breaker: BreakerConfig { failure_threshold: 3, cool_down: Duration::from_secs(60) },
        limits: relaxed(),
        ..RuntimeConfig::default()
    };
    Runtime::with_clock(with_cache(config), clock).expect("runtime")
}

#[test]
fn a_plugin_failing_repeatedly_is_suspended_for_the_cool_down_with_its_reason() {
    let clock = Arc::new(ManualClock::new(NOW));
    let runtime = breaker_runtime(clock.clone());
    let buyer = hostile(&runtime, "panic");
    for _ in 0..3 {
        assert!(matches!(call(&buyer), Err(CallError::Trap { .. })));
    }
    match call(&buyer) {
        Err(CallError::Suspended { until_unix_ms, reason }) => {
            assert_eq!(until_unix_ms, NOW + 60_000);
            assert!(reason.contains("trapped"), "{reason}");
        }
        other => panic!("expected Suspended, got {other:?}"),
    }
    let status = buyer.breaker_status();
    assert_eq!(status.state, BreakerState::Open);
    assert_eq!(status.consecutive_failures, 3, "a suspended call does not enter Wasm and is not a failure");
    assert!(status.last_failure.is_some_and(|reason| reason.contains("trapped")));
}

#[test]
fn after_the_cool_down_a_trial_call_runs_and_a_new_failure_suspends_again() {
    let clock = Arc::new(ManualClock::new(NOW));
    let runtime = breaker_runtime(clock.clone());
    let buyer = hostile(&runtime, "panic");
    for _ in 0..3 {
        let _ = call(&buyer);
    }
    clock.advance(60_000);
    assert_eq!(buyer.breaker_status().state, BreakerState::HalfOpen);
    assert!(matches!(call(&buyer), Err(CallError::Trap { .. })), "the trial call enters the plugin");
    assert_eq!(buyer.breaker_status().state, BreakerState::Open);
    assert!(matches!(call(&buyer), Err(CallError::Suspended { until_unix_ms, .. }) if until_unix_ms == NOW + 120_000));
}

#[test]
fn a_success_closes_the_breaker_and_keeps_the_last_failure_for_the_operator() {
    let breaker = CircuitBreaker::new(BreakerConfig { failure_threshold: 2, cool_down: Duration::from_secs(5) });
    let failure = CallError::Timeout { deadline_ms: 10 };
    breaker.record_failure(NOW, &failure);
    breaker.record_failure(NOW, &failure);
    assert!(breaker.check(NOW + 4_999).is_err());
    assert!(breaker.check(NOW + 5_000).is_ok());
    breaker.record_success();
    let status = breaker.status(NOW + 5_000);
    assert_eq!(status.state, BreakerState::Closed);
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_failure, Some(failure.to_string()));
}

#[test]
fn failures_below_the_threshold_do_not_suspend() {
    let breaker = CircuitBreaker::new(BreakerConfig { failure_threshold: 3, cool_down: Duration::from_secs(5) });
    let failure = CallError::StackOverflow;
    breaker.record_failure(NOW, &failure);
    breaker.record_failure(NOW, &failure);
    breaker.record_success();
    breaker.record_failure(NOW, &failure);
    assert!(breaker.check(NOW).is_ok());
    assert_eq!(breaker.status(NOW).state, BreakerState::Closed);
}

#[test]
fn a_warm_instance_is_replaced_after_its_maximum_number_of_calls() {
    let config = RuntimeConfig {
        limits: relaxed(),
        instance_mode: InstanceMode::Warm { idle_per_campaign: 2, max_calls: 2 },
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(with_cache(config)).expect("runtime");
    let buyer = hostile(&runtime, "ok");
    call(&buyer).expect("answers");
    assert_eq!(buyer.idle_instances(), 1);
    call(&buyer).expect("answers");
    assert_eq!(buyer.idle_instances(), 0, "the instance served its 2 calls and was dropped");
    call(&buyer).expect("a new instance answers");
    assert_eq!(buyer.idle_instances(), 1);
}

#[test]
fn fresh_mode_keeps_no_instance_between_calls() {
    let config = RuntimeConfig { limits: relaxed(), instance_mode: InstanceMode::Fresh, ..RuntimeConfig::default() };
    let runtime = Runtime::new(with_cache(config)).expect("runtime");
    let buyer = hostile(&runtime, "ok");
    call(&buyer).expect("answers");
    assert_eq!(buyer.idle_instances(), 0);
}

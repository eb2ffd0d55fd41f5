//! Hot swap: activating a new version is atomic, calls in flight finish on the old one, no call fails because of a
//! swap, and the previous version can be rolled back to.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{NOW, ping, plugin, runtime};
use pingpost::model::BidContext;
use pingpost::plugin::{BuyerPlugin, PluginSlot, SlotError};

/// Version one bids 100 cents (hostile-buyer in `ok` mode), version two 250 (config-buyer): two different modules.
fn version(n: u32) -> BuyerPlugin {
    match n % 2 {
        1 => runtime().buyer(plugin("hostile-buyer"), "campaign-7", "ok"),
        _ => runtime().buyer(plugin("config-buyer"), "campaign-7", r#"{"base_price_cents": 250}"#),
    }
    .expect("buyer")
}

fn price(buyer: &BuyerPlugin) -> u32 {
    let report = buyer.bid(&ping(), &BidContext::at(NOW)).expect("the call succeeds");
    report.value.price_cents().expect("a bid")
}

#[test]
fn concurrent_calls_during_100_swaps_all_succeed_with_the_old_or_the_new_version() {
    let slot = Arc::new(PluginSlot::new(version(1)));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (slot, stop, calls) = (slot.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut seen = [0u64; 2];
                while !stop.load(Ordering::Relaxed) {
                    let buyer = slot.current();
                    let report = buyer.bid(&ping(), &BidContext::at(NOW));
                    match report.map(|r| r.value.price_cents()) {
                        Ok(Some(100)) => seen[0] += 1,
                        Ok(Some(250)) => seen[1] += 1,
                        other => panic!("a call failed or answered from no known version: {other:?}"),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();
    for n in 2..=101 {
        slot.activate(version(n));
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = callers
        .into_iter()
        .map(|c| c.join().expect("no caller panicked"))
        .fold([0, 0], |a, b| [a[0] + b[0], a[1] + b[1]]);
    assert!(seen[0] > 0 && seen[1] > 0, "both versions answered: {seen:?}");
    assert_eq!(seen[0] + seen[1], calls.load(Ordering::Relaxed));
}

#[test]
fn a_call_in_flight_finishes_on_the_version_it_started_with() {
    let slot = PluginSlot::new(version(1));
    let in_flight = slot.current();
    let previous = slot.activate(version(2));
    assert!(Arc::ptr_eq(&previous, &in_flight));
    assert_eq!(price(&in_flight), 100, "the old version still answers its callers");
    assert_eq!(price(&slot.current()), 250, "new calls use the new version");
}

#[test]
fn rollback_restores_the_previous_version() {
    let slot = PluginSlot::new(version(1));
    slot.activate(version(2));
    assert_eq!(price(&slot.current()), 250);
    let replaced = slot.rollback().expect("a previous version is kept");
    assert_eq!(price(&replaced), 250);
    assert_eq!(price(&slot.current()), 100);
    assert_eq!(slot.rollback().err(), Some(SlotError::NoPreviousVersion));
}

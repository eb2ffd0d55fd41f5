//! Caps under concurrency: the store's check-and-reserve is atomic, so racing threads and racing auctions never sell
//! more than a cap allows, a released reservation gives its place back, and concurrent auctions of one consumer sell
//! it to a suppressing buyer once.

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;
#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::sync::Arc;
use std::time::Duration;

use auction_fixture::{build, config, http_campaign, lead, publisher, wasm_campaign};
use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::eligibility::Ineligible;
use pingpost::auction::store::{CapKind, CapWindows, ReserveError};
use pingpost::auction::{
    AuctionStore, Caps, MemoryStore, OutcomeStatus, PostResult, Publisher, SaleDelivery, SaleRecord, SelectionMode,
};
use serde_json::json;

fn windows() -> CapWindows {
    CapWindows { hour: "2026-11-25T10".into(), day: "2026-11-25".into(), month: "2026-11".into() }
}

/// A pick-up sale of lead 1 to `campaign_id` at `price_cents`.
fn sale_record(campaign_id: &str, price_cents: u32) -> SaleRecord {
    SaleRecord {
        lead_id: "p_1".into(),
        campaign_id: campaign_id.into(),
        buyer_id: "b1".into(),
        publisher_id: "pub-1".into(),
        price_cents,
        payout_cents: price_cents,
        sold_at_unix_ms: 0,
        buyer_ref: None,
        lead: lead(1),
        delivery: SaleDelivery::Pickup,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tasks_never_reserve_past_a_lead_cap() {
    let store = Arc::new(MemoryStore::new());
    let caps = Caps { leads_per_day: Some(5), ..Caps::default() };
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut reserved = 0;
                for _ in 0..25 {
                    reserved += usize::from(store.reserve("c1", &caps, &windows(), 100, None, None).await.is_ok());
                }
                reserved
            })
        })
        .collect();
    let mut reserved = 0;
    for handle in handles {
        reserved += handle.await.expect("task");
    }
    assert_eq!(reserved, 5);
    assert_eq!(
        store.reserve("c1", &caps, &windows(), 100, None, None).await,
        Err(ReserveError::CapReached(CapKind::LeadsPerDay))
    );
}

#[tokio::test]
async fn a_released_reservation_gives_its_place_back_and_a_commit_keeps_it() {
    let store = MemoryStore::new();
    let caps = Caps { leads_per_hour: Some(2), spend_per_day_cents: Some(10_000), ..Caps::default() };
    let first = store.reserve("c1", &caps, &windows(), 4_000, None, None).await.expect("first");
    let second = store.reserve("c1", &caps, &windows(), 4_000, None, None).await.expect("second");
    assert_eq!(
        store.reserve("c1", &caps, &windows(), 1, None, None).await,
        Err(ReserveError::CapReached(CapKind::LeadsPerHour))
    );
    store.release(&second).await.expect("release");
    let sale_id = store.commit(&first, 3_500, &sale_record("c1", 3_500)).await.expect("commit at the confirmed price");
    assert_eq!(
        store.all_sales().expect("sales").iter().map(|s| (s.sale_id, s.price_cents)).collect::<Vec<_>>(),
        [(sale_id, 3_500)]
    );
    let usage = store.usage("c1", &windows()).await.expect("usage");
    assert_eq!((usage.leads_hour, usage.spend_day_cents), (1, 3_500));
    assert_eq!(
        store.reserve("c1", &caps, &windows(), 7_000, None, None).await,
        Err(ReserveError::CapReached(CapKind::SpendPerDay))
    );
    assert!(store.reserve("c1", &caps, &windows(), 6_500, None, None).await.is_ok());
    assert!(store.release(&second).await.is_err(), "a reservation is released once");
}

#[tokio::test]
async fn caps_count_per_window_so_a_new_day_starts_empty() {
    let store = MemoryStore::new();
    let caps = Caps { leads_per_day: Some(1), leads_per_month: Some(2), ..Caps::default() };
    store.reserve("c1", &caps, &windows(), 1, None, None).await.expect("day one");
    let next_day = CapWindows { hour: "2026-11-26T10".into(), day: "2026-11-26".into(), month: "2026-11".into() };
    store.reserve("c1", &caps, &next_day, 1, None, None).await.expect("day two");
    let third_day = CapWindows { hour: "2026-11-27T10".into(), day: "2026-11-27".into(), month: "2026-11".into() };
    assert_eq!(
        store.reserve("c1", &caps, &third_day, 1, None, None).await,
        Err(ReserveError::CapReached(CapKind::LeadsPerMonth))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_auctions_on_one_capped_wasm_campaign_sell_exactly_the_cap() {
    let mut capped = wasm_campaign("capped", "b1", 2000);
    capped.caps = Caps { leads_per_day: Some(5), ..Caps::default() };
    let f = Arc::new(build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![capped])));
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let f = f.clone();
            tokio::spawn(async move { f.exchange.run_lead(lead(100 + n)).await.status })
        })
        .collect();
    let mut sold = 0;
    for task in tasks {
        if task.await.expect("auction task") == OutcomeStatus::Sold {
            sold += 1;
        }
    }
    assert_eq!(sold, 5);
    assert_eq!(f.store.all_sales().expect("store").len(), 5);
    assert_eq!(f.store.pending_reservations().expect("store"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_auctions_with_slow_http_posts_never_post_past_the_cap() {
    // Slow posts keep reservations open while other auctions check the cap.
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 1500})),
        Reply::json(json!({"result": "accepted", "price_cents": 1500})).delayed(Duration::from_millis(50)),
    )
    .await;
    let mut capped = http_campaign("capped-http", "b1", server.endpoints(2_000));
    capped.caps = Caps { leads_per_hour: Some(5), ..Caps::default() };
    let f = Arc::new(build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![capped, wasm_campaign("backup", "b2", 100)],
    )));
    let tasks: Vec<_> = (0..30)
        .map(|n| {
            let f = f.clone();
            tokio::spawn(async move { f.exchange.run_lead(lead(200 + n)).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let outcome = task.await.expect("auction task");
        assert_eq!(outcome.sales.len(), 1, "{:?}", outcome.reason);
        winners.push(outcome.sales[0].campaign_id.clone());
    }
    assert_eq!(winners.iter().filter(|w| *w == "capped-http").count(), 5);
    assert_eq!(server.posts().len(), 5, "no post is sent without a reservation");
    assert_eq!(winners.iter().filter(|w| *w == "backup").count(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_auctions_of_one_consumer_from_two_publishers_sell_it_to_a_suppressing_buyer_once() {
    // Slow posts keep the first sale to b1 pending while the other auctions of the same consumer reach their post;
    // the two publishers have no dedupe window, so every auction gets that far.
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2500})),
        Reply::json(json!({"result": "accepted", "price_cents": 2500})).delayed(Duration::from_millis(300)),
    )
    .await;
    let mut suppressing = http_campaign("suppressing-http", "b1", server.endpoints(2_000));
    suppressing.suppression_days = 30;
    let mut exchange = config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![suppressing, wasm_campaign("backup", "b2", 100)],
    );
    exchange.publishers.push(Publisher { id: "pub-2".into(), ..publisher(SelectionMode::Exclusive) });
    let f = Arc::new(build(exchange));
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let f = f.clone();
            let mut consumer = lead(300);
            consumer.publisher_id = if n % 2 == 0 { "pub-1" } else { "pub-2" }.into();
            tokio::spawn(async move { f.exchange.run_lead(consumer).await })
        })
        .collect();
    let (mut to_b1, mut refused_while_pending) = (0, 0);
    for task in tasks {
        let outcome = task.await.expect("auction task");
        assert_eq!(outcome.sales.len(), 1, "{:?}", outcome.reason);
        if outcome.sales[0].buyer_id == "b1" {
            to_b1 += 1;
            continue;
        }
        assert_eq!(outcome.sales[0].campaign_id, "backup");
        // b1 was either skipped at eligibility (the sale was already committed) or refused at its post.
        let skipped = outcome.trace.campaigns.iter().any(|c| {
            c.campaign_id == "suppressing-http" && matches!(c.ineligible, Some(Ineligible::Suppressed { .. }))
        });
        let refused = outcome.trace.posts.iter().any(|p| {
            p.campaign_id == "suppressing-http"
                && matches!(&p.result, PostResult::NoLongerEligible { reason } if reason.contains("suppress"))
        });
        assert!(skipped || refused, "b1 neither skipped nor refused: {:?}", outcome.trace.posts);
        refused_while_pending += usize::from(outcome.trace.posts.iter().any(
            |p| matches!(&p.result, PostResult::NoLongerEligible { reason } if reason.contains("another auction")),
        ));
    }
    assert_eq!(to_b1, 1, "one consumer, one sale to the suppressing buyer");
    assert!(refused_while_pending > 0, "the auctions raced: some reached b1's post while its sale was pending");
    assert_eq!(server.posts().len(), 1, "the lead is posted to b1 once");
    assert_eq!(f.store.pending_reservations().expect("store"), 0);
}

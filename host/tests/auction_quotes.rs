//! A quote is a promise: a bid its campaign's caps cannot cover is never ranked (`cap_would_exceed`), a two-step
//! ping's quoted bids hold what their sale will spend until the post takes the hold or it expires, and concurrent
//! two-step auctions never promise one campaign's last unit twice: every post of a standing quote pays exactly the
//! quoted price (property test over generated caps, prices and interleavings, on a multi-threaded runtime).

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;
#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::sync::Arc;

use auction_fixture::{build, config, http_campaign, lead, publisher, wasm_campaign};
use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::store::CapKind;
use pingpost::auction::trace::Answer;
use pingpost::auction::{AuctionStore, Caps, Outcome, OutcomeStatus, PingOutcome, PingStatus, SelectionMode};
use pingpost::clock::Clock;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

fn answer_in<'a>(campaigns: &'a [pingpost::auction::trace::CampaignTrace], campaign: &str) -> Option<&'a Answer> {
    campaigns.iter().find(|c| c.campaign_id == campaign).and_then(|c| c.answer.as_ref())
}

fn sold_to(outcome: &Outcome) -> Vec<(&str, u32)> {
    outcome.sales.iter().map(|s| (s.campaign_id.as_str(), s.price_cents)).collect()
}

/// `big` bids 5000 under a 12000 daily spend cap; `small` bids 1500 uncapped.
fn big_and_small(mode: SelectionMode) -> auction_fixture::Fixture {
    let mut big = wasm_campaign("big", "b1", 5_000);
    big.caps = Caps { spend_per_day_cents: Some(12_000), ..Caps::default() };
    build(config(publisher(mode), &["b1", "b2"], vec![big, wasm_campaign("small", "b2", 1_500)]))
}

#[tokio::test]
async fn a_bid_its_spend_cap_cannot_cover_is_dropped_and_the_next_is_sold() {
    let f = big_and_small(SelectionMode::Exclusive);
    for n in 0..2 {
        assert_eq!(sold_to(&f.exchange.run_lead(lead(n)).await), [("big", 5_000)]);
    }
    let third = f.exchange.run_lead(lead(2)).await;
    assert_eq!(sold_to(&third), [("small", 1_500)]);
    assert_eq!(
        answer_in(&third.trace.campaigns, "big"),
        Some(&Answer::CapWouldExceed { price_cents: 5_000, cap: CapKind::SpendPerDay, left_cents: Some(2_000) })
    );
    assert!(third.trace.posts.iter().all(|p| p.campaign_id != "big"), "never posted to: {:?}", third.trace.posts);
}

#[tokio::test]
async fn a_ping_never_quotes_a_bid_its_campaign_cannot_cover_and_the_post_pays_the_quote() {
    let f = big_and_small(SelectionMode::Exclusive);
    for n in 0..2 {
        f.exchange.run_lead(lead(n)).await;
    }
    let ping = f.exchange.ping(lead(2)).await;
    assert_eq!((ping.status, ping.best_bid_cents, ping.payout_cents), (PingStatus::Bid, Some(1_500), Some(1_350)));
    assert!(matches!(
        answer_in(&ping.trace.campaigns, "big"),
        Some(Answer::CapWouldExceed { left_cents: Some(2_000), .. })
    ));
    let post = f.exchange.post(&ping.ping_id).await.expect("posts");
    assert_eq!(sold_to(&post), [("small", 1_500)]);
    assert_eq!(post.sales[0].payout_cents, 1_350);
}

#[tokio::test]
async fn a_standing_quote_holds_the_last_unit_until_it_is_posted_or_expires() {
    let f = big_and_small(SelectionMode::Exclusive);
    f.exchange.run_lead(lead(0)).await;
    // 7000 left: room for one more 5000 sale, which the first quote holds.
    let first = f.exchange.ping(lead(1)).await;
    assert_eq!(first.best_bid_cents, Some(5_000));
    let second = f.exchange.ping(lead(2)).await;
    assert_eq!(second.best_bid_cents, Some(1_500), "the held unit is not promised twice");
    assert_eq!(
        answer_in(&second.trace.campaigns, "big"),
        Some(&Answer::CapWouldExceed { price_cents: 5_000, cap: CapKind::SpendPerDay, left_cents: Some(2_000) }),
        "the hold counts in the usage the fan-out reads"
    );
    let one_shot = f.exchange.run_lead(lead(3)).await;
    assert_eq!(sold_to(&one_shot), [("small", 1_500)], "nor sold one-shot from under the quote");

    // Unposted, both quotes expire; their holds go back once a post begun before the expiry would have ended.
    let expires = first.expires_at_unix_ms.expect("an expiry");
    assert_eq!(second.expires_at_unix_ms, Some(expires));
    let post_deadline = publisher(SelectionMode::Exclusive).post_deadline_ms as i64;
    assert_eq!(f.store.release_expired_holds(expires + post_deadline - 1).await, Ok(0));
    f.clock.set(expires + post_deadline);
    assert_eq!(f.store.release_expired_holds(expires + post_deadline).await, Ok(2));
    let again = f.exchange.ping(lead(4)).await;
    assert_eq!(again.best_bid_cents, Some(5_000));
    let post = f.exchange.post(&again.ping_id).await.expect("posts");
    assert_eq!(sold_to(&post), [("big", 5_000)]);
    assert_eq!(f.store.pending_reservations(), Ok(0), "the post took its hold");
}

#[tokio::test]
async fn a_shared_quote_holds_one_bid_per_buyer_and_the_post_gives_back_what_it_did_not_take() {
    let mut big = wasm_campaign("big", "b1", 5_000);
    big.caps = Caps { leads_per_day: Some(1), ..Caps::default() };
    let mut big_too = wasm_campaign("big-too", "b1", 4_000);
    big_too.caps = Caps { leads_per_day: Some(1), ..Caps::default() };
    let campaigns = vec![big, big_too, wasm_campaign("small", "b2", 1_500), wasm_campaign("least", "b3", 100)];
    let mut shared = publisher(SelectionMode::Shared);
    shared.shared_max_buyers = 2;
    let f = build(config(shared, &["b1", "b2", "b3"], campaigns));
    let ping = f.exchange.ping(lead(1)).await;
    assert_eq!(ping.best_bid_cents, Some(5_000));
    assert_eq!(f.store.pending_reservations(), Ok(2), "big and small are held; big-too is b1's second, least is third");
    let post = f.exchange.post(&ping.ping_id).await.expect("posts");
    assert_eq!(sold_to(&post), [("big", 5_000), ("small", 1_500)]);
    assert_eq!(f.store.pending_reservations(), Ok(0));
}

#[tokio::test]
async fn a_held_http_bid_is_posted_on_its_hold_audited_and_a_refused_post_gives_the_hold_back() {
    let refusing = BuyerServer::scripted(
        Reply::json(serde_json::json!({"decision": "bid", "price_cents": 3000})),
        Reply::json(serde_json::json!({"result": "rejected", "reason": "not today"})),
    )
    .await;
    let mut http = http_campaign("http", "b1", refusing.endpoints(2_000));
    http.caps = Caps { leads_per_day: Some(1), ..Caps::default() };
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![http, wasm_campaign("small", "b2", 1_500)],
    ));
    let ping = f.exchange.ping(lead(1)).await;
    assert_eq!(ping.best_bid_cents, Some(3_000));
    let usage = |f: &auction_fixture::Fixture| {
        let windows = pingpost::auction::eligibility::cap_windows(chrono_tz::America::New_York, f.clock.now_unix_ms());
        futures_util::FutureExt::now_or_never(f.store.usage("http", &windows)).expect("ready").expect("usage")
    };
    assert_eq!(usage(&f).leads_day, 1, "the quote holds http's only lead");
    let post = f.exchange.post(&ping.ping_id).await.expect("posts");
    assert_eq!(sold_to(&post), [("small", 1_500)], "fell back past the refusal");
    assert_eq!(refusing.posts().len(), 1);
    let handed: Vec<_> = f.store.handovers().expect("audit").into_iter().map(|h| h.campaign_id).collect();
    assert_eq!(handed, ["http"], "the post on the hold is audited");
    assert_eq!((usage(&f).leads_day, f.store.pending_reservations()), (0, Ok(0)), "the refused post gave it back");
}

#[tokio::test]
async fn a_hold_its_post_cannot_use_is_given_back_before_the_fallback_to_the_same_buyer() {
    let suppressing = |mut campaign: pingpost::auction::Campaign| {
        campaign.suppression_days = 30;
        campaign
    };
    let campaigns = |paused: bool| {
        let mut best = suppressing(wasm_campaign("best", "b1", 5_000));
        if paused {
            best.status = pingpost::auction::CampaignStatus::Paused;
        }
        vec![best, suppressing(wasm_campaign("second", "b1", 4_000)), wasm_campaign("other", "b2", 1_000)]
    };
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1", "b2"], campaigns(false)));
    let ping = f.exchange.ping(lead(1)).await;
    assert_eq!(ping.best_bid_cents, Some(5_000));
    // The operator pauses `best` before the post: its hold, which also holds this consumer for b1, goes back first.
    let paused = auction_fixture::build_on(
        config(publisher(SelectionMode::Exclusive), &["b1", "b2"], campaigns(true)),
        f.store.clone(),
        f.clock.clone(),
    );
    let post = paused.post(&ping.ping_id).await.expect("posts");
    assert_eq!(sold_to(&post), [("second", 4_000)], "{:?}", post.trace.posts);
    assert_eq!(f.store.pending_reservations(), Ok(0));
}

/// One generated case: `big`'s price and caps, and the concurrent two-step auctions (posted or left to expire).
#[derive(Debug, Clone)]
struct QuoteCase {
    big_price: u32,
    spend_cap: u64,
    leads_cap: Option<u32>,
    small_price: u32,
    posts: Vec<bool>,
}

fn quote_case() -> impl Strategy<Value = QuoteCase> {
    (
        1_000u32..6_000,
        0u64..20_000,
        proptest::option::of(0u32..4),
        100u32..900,
        proptest::collection::vec(any::<bool>(), 2..10),
    )
        .prop_map(|(big_price, spend_cap, leads_cap, small_price, posts)| QuoteCase {
            big_price,
            spend_cap,
            leads_cap,
            small_price,
            posts,
        })
}

/// Runs `case`'s auctions at once; each ping that got a bid and is chosen posts straight away. Returns every ping's
/// answer with its post's outcome.
async fn run_case(case: &QuoteCase) -> (auction_fixture::Fixture, Vec<(PingOutcome, Option<Outcome>)>) {
    let mut big = wasm_campaign("big", "b1", case.big_price);
    big.caps = Caps { spend_per_day_cents: Some(case.spend_cap), leads_per_day: case.leads_cap, ..Caps::default() };
    let small = wasm_campaign("small", "b2", case.small_price);
    let f = Arc::new(build(config(publisher(SelectionMode::Exclusive), &["b1", "b2"], vec![big, small])));
    let tasks: Vec<_> = case
        .posts
        .iter()
        .enumerate()
        .map(|(n, post)| {
            let (f, post) = (f.clone(), *post);
            tokio::spawn(async move {
                let ping = f.exchange.ping(lead(500 + n as u32)).await;
                let outcome = match (ping.status, post) {
                    (PingStatus::Bid, true) => Some(f.exchange.post(&ping.ping_id).await.expect("posts")),
                    _ => None,
                };
                (ping, outcome)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("auction task"));
    }
    let f = Arc::into_inner(f).expect("every task is done");
    (f, results)
}

#[test]
fn concurrent_two_step_auctions_pay_exactly_what_they_quoted_and_never_exceed_a_cap() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    let mut runner = TestRunner::new(ProptestConfig { cases: 48, ..ProptestConfig::default() });
    runner
        .run(&quote_case(), |case| {
            let (f, results) = runtime.block_on(run_case(&case));
            let mut big_spend = 0u64;
            let mut big_leads = 0u32;
            for (ping, outcome) in &results {
                // The small campaign is uncapped: every ping gets a bid.
                prop_assert_eq!(ping.status, PingStatus::Bid, "{:?}", ping.reason);
                let Some(outcome) = outcome else { continue };
                prop_assert_eq!(outcome.status, OutcomeStatus::Sold);
                let sale = &outcome.sales[0];
                prop_assert_eq!(Some(sale.price_cents), ping.best_bid_cents, "a post pays its quote");
                prop_assert_eq!(Some(sale.payout_cents), ping.payout_cents);
                if sale.campaign_id == "big" {
                    big_spend += u64::from(sale.price_cents);
                    big_leads += 1;
                }
            }
            let quoted_big = results.iter().filter(|(ping, _)| ping.best_bid_cents == Some(case.big_price)).count();
            prop_assert!(
                quoted_big as u64 * u64::from(case.big_price) <= case.spend_cap,
                "quotes within the spend cap"
            );
            prop_assert!(case.leads_cap.is_none_or(|cap| quoted_big as u32 <= cap), "quotes within the lead cap");
            prop_assert!(big_spend <= case.spend_cap && case.leads_cap.is_none_or(|cap| big_leads <= cap));
            // Once every quote has expired nothing stays held.
            let later = f.clock.now_unix_ms() + 3_600_000;
            runtime.block_on(f.store.release_expired_holds(later)).expect("releases");
            prop_assert_eq!(f.store.pending_reservations(), Ok(0));
            Ok(())
        })
        .expect("the property holds");
}

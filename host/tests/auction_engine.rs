//! The auction engine end to end over real Wasm buyers (config-buyer), the real standard redactor and real HTTP
//! buyers on 127.0.0.1: selection modes, floor, eligibility, fallback, delivery, duplicates, suppression, caps, the
//! PII guard, and the two-step ping/post.

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;
#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::time::Duration;

use auction_fixture::{
    NOW, build, config, hostile_campaign, http_campaign, lead, pii_in, publisher, rejecting_campaign,
    verticals_with_agent_note, wasm_campaign, wasm_campaign_with, wasm_inputs,
};
use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::eligibility::Ineligible;
use pingpost::auction::store::CapKind;
use pingpost::auction::trace::TargetKind;
use pingpost::auction::{
    Answer, AuctionStore, CampaignStatus, Caps, Delivery, ErrorKind, Exclusivity, LeadOptions, OutcomeStatus, PiiKind,
    PiiLeak, PingStatus, PostError, PostResult, SaleDelivery, Schedule, SelectionMode,
};
use pingpost::model::RejectCode;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

fn answer_of<'a>(outcome: &'a pingpost::auction::Outcome, campaign: &str) -> Option<&'a Answer> {
    outcome.trace.campaigns.iter().find(|c| c.campaign_id == campaign).and_then(|c| c.answer.as_ref())
}

fn ineligible_of_ping<'a>(outcome: &'a pingpost::auction::PingOutcome, campaign: &str) -> Option<&'a Ineligible> {
    outcome.trace.campaigns.iter().find(|c| c.campaign_id == campaign).and_then(|c| c.ineligible.as_ref())
}

fn ineligible_of<'a>(outcome: &'a pingpost::auction::Outcome, campaign: &str) -> Option<&'a Ineligible> {
    outcome.trace.campaigns.iter().find(|c| c.campaign_id == campaign).and_then(|c| c.ineligible.as_ref())
}

fn sold_to(outcome: &pingpost::auction::Outcome) -> Vec<(&str, u32)> {
    outcome.sales.iter().map(|s| (s.campaign_id.as_str(), s.price_cents)).collect()
}

#[tokio::test]
async fn exclusive_sells_to_the_highest_bid_and_only_the_winner_gets_the_lead() {
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2", "b3", "b4"],
        vec![
            wasm_campaign("c800", "b1", 800),
            wasm_campaign("c2600", "b2", 2600),
            wasm_campaign("c1500", "b3", 1500),
            rejecting_campaign("ctx", "b4"),
        ],
    ));
    let lead = lead(1);
    let outcome = f.exchange.run_lead(lead.clone()).await;

    assert_eq!(outcome.status, OutcomeStatus::Sold, "{:?}", outcome.reason);
    assert_eq!(sold_to(&outcome), [("c2600", 2600)]);
    let sale = &outcome.sales[0];
    assert_eq!((sale.margin_cents, sale.payout_cents), (260, 2340));
    assert!(matches!(answer_of(&outcome, "ctx"), Some(Answer::Reject { code: RejectCode::Geography, .. })));

    let sales = f.store.all_sales().expect("sales");
    assert_eq!(sales.len(), 1);
    assert_eq!(sales[0].campaign_id, "c2600");
    assert_eq!(sales[0].delivery, SaleDelivery::Pickup);
    assert_eq!((sales[0].lead_id.as_str(), sales[0].price_cents), (outcome.ping_id.as_str(), 2600));
    let kept = sales[0].lead.as_ref().expect("the sale keeps the lead");
    assert_eq!(kept.consumer.phone, "+13055500001", "the winner gets the normalised full lead");
    let inputs = wasm_inputs(&outcome);
    assert_eq!(inputs.len(), 4, "every campaign was pinged once: {inputs:?}");
    for (campaign, input) in inputs {
        assert_eq!(pii_in(&input, &lead), Vec::<String>::new(), "{campaign} was given PII");
    }
}

#[tokio::test]
async fn waterfall_prefers_the_better_tier_over_a_higher_price() {
    let mut tier2 = wasm_campaign("rich-tier2", "b1", 3000);
    tier2.tier = 2;
    let f = build(config(
        publisher(SelectionMode::Waterfall),
        &["b1", "b2", "b3"],
        vec![tier2, wasm_campaign("cheap-tier1", "b2", 900), wasm_campaign("mid-tier1", "b3", 1200)],
    ));
    let outcome = f.exchange.run_lead(lead(2)).await;
    assert_eq!(sold_to(&outcome), [("mid-tier1", 1200)]);
}

#[tokio::test]
async fn shared_sells_to_n_distinct_buyers_each_at_its_own_bid() {
    let f = build(config(
        publisher(SelectionMode::Shared),
        &["b1", "b2", "b3", "b4"],
        vec![
            wasm_campaign("b1-high", "b1", 2000),
            wasm_campaign("b1-again", "b1", 1900),
            wasm_campaign("b2", "b2", 1500),
            wasm_campaign("b3", "b3", 1000),
            wasm_campaign("b4", "b4", 500),
        ],
    ));
    let outcome = f.exchange.run_lead(lead(3)).await;
    assert_eq!(sold_to(&outcome), [("b1-high", 2000), ("b2", 1500), ("b3", 1000)]);
    assert_eq!(outcome.revenue_cents(), 4500);

    let lowered =
        f.exchange.run_lead_with(lead(4), LeadOptions { shared_max_buyers: Some(2), ..LeadOptions::default() }).await;
    assert_eq!(sold_to(&lowered), [("b1-high", 2000), ("b2", 1500)]);
}

#[tokio::test]
async fn bids_below_the_publisher_floor_are_dropped_with_a_reason() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.floor_cents = 1000;
    let f = build(config(p, &["b1", "b2"], vec![wasm_campaign("low", "b1", 999), wasm_campaign("ok", "b2", 1000)]));
    let outcome = f.exchange.run_lead(lead(5)).await;
    assert_eq!(answer_of(&outcome, "low"), Some(&Answer::BelowFloor { price_cents: 999, floor_cents: 1000 }));
    assert_eq!(sold_to(&outcome), [("ok", 1000)]);
}

#[tokio::test]
async fn only_bids_below_the_floor_leave_the_lead_unsold_saying_why() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.floor_cents = 5000;
    let f = build(config(p, &["b1"], vec![wasm_campaign("low", "b1", 999)]));
    let outcome = f.exchange.run_lead(lead(6)).await;
    assert_eq!(outcome.status, OutcomeStatus::Unsold);
    assert!(outcome.reason.as_deref().is_some_and(|r| r.contains("below_floor")), "{:?}", outcome.reason);
}

#[tokio::test]
async fn ineligible_campaigns_are_recorded_with_their_reason_and_not_pinged() {
    let mut paused = wasm_campaign("paused", "b1", 5000);
    paused.status = CampaignStatus::Paused;
    let mut weekend = wasm_campaign("weekend", "b2", 5000);
    weekend.schedule = Schedule::parse(&["sat-sun"]).expect("a schedule");
    let mut evening = wasm_campaign("evening", "b3", 5000);
    evening.schedule = Schedule::parse(&["18:00-22:00"]).expect("a schedule");
    let mut exclusive_only = wasm_campaign("exclusive-only", "b4", 5000);
    exclusive_only.exclusivity = Exclusivity::ExclusiveOnly;
    let f = build(config(
        publisher(SelectionMode::Shared),
        &["b1", "b2", "b3", "b4", "b5"],
        vec![paused, weekend, evening, exclusive_only, wasm_campaign("open", "b5", 700)],
    ));
    let outcome = f.exchange.run_lead(lead(7)).await;

    assert_eq!(ineligible_of(&outcome, "paused"), Some(&Ineligible::Paused));
    assert!(
        matches!(ineligible_of(&outcome, "weekend"), Some(Ineligible::OutOfSchedule { local_time }) if local_time.contains("Wed"))
    );
    assert!(
        matches!(ineligible_of(&outcome, "evening"), Some(Ineligible::OutOfSchedule { local_time }) if local_time.contains("10:00"))
    );
    assert_eq!(ineligible_of(&outcome, "exclusive-only"), Some(&Ineligible::ExclusiveOnly));
    let pinged: Vec<String> = wasm_inputs(&outcome).into_iter().map(|(campaign, _)| campaign).collect();
    assert_eq!(pinged, ["open"]);
    assert_eq!(sold_to(&outcome), [("open", 700)]);
}

#[tokio::test]
async fn the_schedule_opens_in_the_buyers_time_zone() {
    let mut evening = wasm_campaign("evening", "b1", 5000);
    evening.schedule = Schedule::parse(&["18:00-22:00"]).expect("a schedule");
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![evening]));
    // 15:00 UTC is 10:00 in New York; 23:30 UTC is 18:30 there.
    f.clock.set(NOW + 8 * 3_600_000 + 30 * 60_000);
    let outcome = f.exchange.run_lead(lead(8)).await;
    assert_eq!(sold_to(&outcome), [("evening", 5000)]);
}

#[tokio::test]
async fn a_rejected_or_failed_post_falls_back_to_the_next_bidder_and_releases_its_cap() {
    let rejecting = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 3000})),
        Reply::json(json!({"result": "rejected", "reason": "consumer on our DNC list"})),
    )
    .await;
    let failing =
        BuyerServer::scripted(Reply::json(json!({"decision": "bid", "price_cents": 2500})), Reply::raw(500, "oops"))
            .await;
    let accepting = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2000, "buyer_ref": "ref-9"})),
        Reply::json(json!({"result": "accepted", "price_cents": 2000, "buyer_lead_id": "L-1"})),
    )
    .await;
    let mut capped = http_campaign("rejecting", "b1", rejecting.endpoints(2_000));
    capped.caps = Caps { leads_per_day: Some(1), ..Caps::default() };
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2", "b3"],
        vec![
            capped,
            http_campaign("failing", "b2", failing.endpoints(2_000)),
            http_campaign("accepting", "b3", accepting.endpoints(2_000)),
        ],
    ));
    let lead = lead(9);
    let outcome = f.exchange.run_lead(lead.clone()).await;

    assert_eq!(sold_to(&outcome), [("accepting", 2000)]);
    assert_eq!(outcome.sales[0].buyer_lead_id.as_deref(), Some("L-1"));
    let results: Vec<(&str, &PostResult)> =
        outcome.trace.posts.iter().map(|p| (p.campaign_id.as_str(), &p.result)).collect();
    assert!(matches!(results[0], ("rejecting", PostResult::Rejected { reason }) if reason.contains("DNC")));
    assert!(matches!(results[1], ("failing", PostResult::Failed { error }) if error.contains("500")));
    assert!(matches!(results[2], ("accepting", PostResult::Accepted { price_cents: 2000, .. })));
    assert_eq!(accepting.posts()[0]["buyer_ref"], "ref-9");
    assert_eq!(f.store.pending_reservations().expect("store"), 0);
    let windows = pingpost::auction::eligibility::cap_windows(chrono_tz::America::New_York, NOW);
    assert_eq!(
        f.store.usage("rejecting", &windows).await.expect("usage").leads_day,
        0,
        "the rejected post's reservation was released"
    );
    assert_eq!(f.store.usage("accepting", &windows).await.expect("usage").spend_day_cents, 2000);

    // Every HTTP buyer got the ping; only the three it was posted to got the lead, and the pings carry no PII.
    for server in [&rejecting, &failing, &accepting] {
        for ping in server.pings() {
            assert_eq!(pii_in(&ping.to_string(), &lead), Vec::<String>::new());
        }
        assert_eq!(server.posts()[0]["lead"]["consumer"]["email"], "zenobia.q9@example.net");
    }
}

#[tokio::test]
async fn a_slow_http_buyer_is_recorded_as_a_timeout_and_others_still_sell() {
    let slow = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 9000})).delayed(Duration::from_millis(1_500)),
        Reply::json(json!({"result": "accepted", "price_cents": 9000})),
    )
    .await;
    let mut p = publisher(SelectionMode::Exclusive);
    p.ping_deadline_ms = 400;
    let f = build(config(
        p,
        &["b1", "b2"],
        vec![http_campaign("slow", "b1", slow.endpoints(5_000)), wasm_campaign("wasm", "b2", 100)],
    ));
    let outcome = f.exchange.run_lead(lead(10)).await;
    assert_eq!(answer_of(&outcome, "slow"), Some(&Answer::Timeout));
    assert_eq!(sold_to(&outcome), [("wasm", 100)]);
    assert!(slow.posts().is_empty(), "a buyer that timed out is never posted to");
}

#[tokio::test]
async fn a_wasm_campaign_with_a_webhook_is_sold_at_its_bid_and_queued_for_the_outbox_not_posted_inline() {
    let hook = BuyerServer::scripted(
        Reply::raw(404, "no pings here"),
        Reply::json(json!({"result": "accepted", "price_cents": 1234})),
    )
    .await;
    let mut campaign = wasm_campaign("hooked", "b1", 1234);
    if let pingpost::auction::CampaignTarget::Wasm { delivery, .. } = &mut campaign.target {
        *delivery = Delivery::Webhook { url: hook.post_url() };
    }
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![campaign]));
    let outcome = f.exchange.run_lead(lead(11)).await;
    assert_eq!(sold_to(&outcome), [("hooked", 1234)]);
    assert_eq!(outcome.trace.posts[0].result, PostResult::Queued { price_cents: 1234 });
    assert!(hook.recorded().is_empty(), "the auction itself sends the webhook nothing (tests/outbox.rs delivers)");
    let sales = f.store.all_sales().expect("store");
    assert_eq!(sales.len(), 1);
    assert_eq!(sales[0].delivery, SaleDelivery::Webhook { url: hook.post_url() });
    assert_eq!(sales[0].lead.as_ref().map(|l| l.consumer.first_name.as_str()), Some("Zenobia"));
    assert_eq!(outcome.trace.campaigns[0].kind, TargetKind::Wasm);
}

#[tokio::test]
async fn a_lead_seen_from_the_same_publisher_within_its_window_is_a_duplicate_saying_so() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.dedupe_window_days = 30;
    let f = build(config(p, &["b1"], vec![wasm_campaign("c", "b1", 1000)]));
    assert_eq!(f.exchange.run_lead(lead(12)).await.status, OutcomeStatus::Sold);

    let mut same_email = lead(13);
    same_email.consumer.email = lead(12).consumer.email.to_uppercase();
    let duplicate = f.exchange.run_lead(same_email).await;
    assert_eq!(duplicate.status, OutcomeStatus::Duplicate);
    let reason = duplicate.reason.expect("a reason");
    assert!(reason.contains("duplicate") && reason.contains("30-day"), "{reason}");
    assert!(duplicate.trace.campaigns.is_empty(), "a duplicate is never pinged");

    f.clock.advance(31 * DAY_MS);
    assert_eq!(f.exchange.run_lead(lead(12)).await.status, OutcomeStatus::Sold, "outside the window it sells again");
}

#[tokio::test]
async fn an_invalid_lead_is_rejected_with_every_field_error() {
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![wasm_campaign("c", "b1", 1000)]));
    let mut bad = lead(14);
    bad.consumer.phone = "555-0100".into();
    bad.consumer.state = "ZZ".into();
    bad.consumer.date_of_birth = "2015-01-01".into();
    bad.consent.trusted_form_url = None;
    bad.consent.jornaya_leadid = None;
    let outcome = f.exchange.run_lead(bad).await;
    assert_eq!(outcome.status, OutcomeStatus::Rejected);
    let fields: Vec<&str> = outcome.field_errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["consumer.state", "consumer.phone", "consumer.date_of_birth", "consent.trusted_form_url"]);

    let mut medicare = lead(15);
    medicare.vertical = "medicare".into();
    let outcome = f.exchange.run_lead(medicare).await;
    assert!(
        outcome.field_errors.iter().any(|e| e.field == "consumer.date_of_birth" && e.reason.contains("64")),
        "{:?}",
        outcome.field_errors
    );

    let mut unknown = lead(16);
    unknown.publisher_id = "nobody".into();
    let outcome = f.exchange.run_lead(unknown).await;
    assert_eq!(outcome.field_errors[0].field, "publisher_id");
}

#[tokio::test]
async fn a_buyer_never_buys_the_same_consumer_twice_within_its_suppression_window() {
    let mut suppressing = wasm_campaign("suppressing", "b1", 3000);
    suppressing.suppression_days = 7;
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![suppressing, wasm_campaign("other", "b2", 1000)],
    ));
    assert_eq!(sold_to(&f.exchange.run_lead(lead(17)).await), [("suppressing", 3000)]);

    let mut same_phone = lead(18);
    same_phone.consumer.phone = lead(17).consumer.phone;
    let again = f.exchange.run_lead(same_phone.clone()).await;
    assert_eq!(ineligible_of(&again, "suppressing"), Some(&Ineligible::Suppressed { days: 7 }));
    assert_eq!(sold_to(&again), [("other", 1000)]);

    f.clock.advance(8 * DAY_MS);
    assert_eq!(sold_to(&f.exchange.run_lead(same_phone).await), [("suppressing", 3000)]);
}

#[tokio::test]
async fn a_full_daily_cap_sends_the_lead_to_the_next_buyer_until_local_midnight() {
    let mut capped = wasm_campaign("capped", "b1", 3000);
    capped.caps = Caps { leads_per_day: Some(2), ..Caps::default() };
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![capped, wasm_campaign("backup", "b2", 1000)],
    ));
    for n in 0..2 {
        assert_eq!(sold_to(&f.exchange.run_lead(lead(20 + n)).await), [("capped", 3000)]);
    }
    let third = f.exchange.run_lead(lead(22)).await;
    assert!(matches!(ineligible_of(&third, "capped"), Some(Ineligible::CapReached { .. })));
    assert_eq!(sold_to(&third), [("backup", 1000)]);

    // 04:59 UTC on the 26th is still the 25th in New York; 05:00 UTC is its midnight.
    f.clock.set(NOW + 13 * 3_600_000 + 59 * 60_000);
    assert_eq!(sold_to(&f.exchange.run_lead(lead(23)).await), [("backup", 1000)]);
    f.clock.set(NOW + 14 * 3_600_000);
    assert_eq!(sold_to(&f.exchange.run_lead(lead(24)).await), [("capped", 3000)]);
}

#[tokio::test]
async fn the_pii_guard_refuses_a_leaky_redactor_config_and_names_the_field() {
    let mut p = publisher(SelectionMode::Exclusive);
    // The operator made `agent_note` a free-text extra and let it through the standard redactor; the publisher put a
    // phone number in it.
    p.redactor_config = json!({"allow_extra": ["coverage_type", "agent_note"]}).to_string();
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 100})),
        Reply::json(json!({"result": "duplicate"})),
    )
    .await;
    let mut exchange = config(
        p,
        &["b1", "b2"],
        vec![wasm_campaign("wasm", "b1", 1000), http_campaign("http", "b2", server.endpoints(2_000))],
    );
    exchange.verticals = verticals_with_agent_note();
    let f = build(exchange);
    let mut leaky = lead(25);
    leaky.extra.insert("agent_note".into(), "call back on 305-550-0025 after 5pm".into());
    let outcome = f.exchange.run_lead(leaky).await;

    assert_eq!(outcome.status, OutcomeStatus::Error);
    assert!(outcome.pii_leaks.iter().all(|leak| leak.field == "extra.agent_note"), "{:?}", outcome.pii_leaks);
    assert!(outcome.pii_leaks.iter().any(|leak| leak.kind == PiiKind::Phone), "{:?}", outcome.pii_leaks);
    let reason = outcome.reason.clone().expect("a reason");
    assert!(reason.contains("extra.agent_note") && !reason.contains("550-0025"), "{reason}");
    assert!(wasm_inputs(&outcome).is_empty() && server.recorded().is_empty(), "nobody was pinged");

    let mut clean = lead(26);
    clean.extra.insert("agent_note".into(), "prefers mornings".into());
    assert_eq!(f.exchange.run_lead(clean).await.status, OutcomeStatus::Sold, "the same config passes a clean note");
}

#[tokio::test]
async fn a_ping_extra_outside_the_verticals_schema_is_refused_before_any_buyer_is_pinged() {
    let mut p = publisher(SelectionMode::Exclusive);
    // The redactor passes through extras the vertical's schema does not define, or values outside their types.
    p.redactor_config = json!({"allow_extra": ["coverage_type", "household_size", "agent_note"]}).to_string();
    let f = build(config(p, &["b1"], vec![wasm_campaign("c", "b1", 1000)]));
    let cases: [(&str, &str, &str); 4] = [
        ("agent_note", "prefers mornings", "extra[key #1]"),
        ("household_size", "3055550142", "extra.household_size"),
        ("household_size", "03", "extra.household_size"),
        ("coverage_type", "family of jane doe", "extra.coverage_type"),
    ];
    for (n, (key, value, field)) in cases.into_iter().enumerate() {
        let mut l = lead(40 + n as u32);
        l.extra.clear();
        l.extra.insert(key.into(), value.into());
        // What a lead names of the schema must be of its type: such a lead is invalid before it reaches the redactor.
        let outcome = f.exchange.run_lead(l.clone()).await;
        if key == "agent_note" {
            assert_eq!(outcome.status, OutcomeStatus::Error, "{key}={value}");
            assert_eq!(outcome.pii_leaks, [PiiLeak { field: field.into(), kind: PiiKind::OffSchema }]);
            let reason = outcome.reason.clone().expect("a reason");
            assert!(reason.contains(field) && !reason.contains(value), "{reason}");
        } else {
            assert_eq!(outcome.status, OutcomeStatus::Rejected, "{key}={value}");
            assert_eq!(outcome.field_errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), [field]);
        }
        assert!(wasm_inputs(&outcome).is_empty(), "nobody was pinged for {key}={value}");
    }
    let mut fine = lead(50);
    fine.extra = [("coverage_type", "family"), ("household_size", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(f.exchange.run_lead(fine).await.status, OutcomeStatus::Sold);
}

#[tokio::test]
async fn a_lead_the_pii_guard_refused_is_not_remembered_as_seen() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.dedupe_window_days = 30;
    p.redactor_config = json!({"allow_extra": ["agent_note"]}).to_string();
    let mut exchange = config(p, &["b1"], vec![wasm_campaign("c", "b1", 1000)]);
    exchange.verticals = verticals_with_agent_note();
    let f = build(exchange);
    let mut leaky = lead(27);
    leaky.extra.insert("agent_note".into(), "email zenobia.q27@example.net".into());
    assert_eq!(f.exchange.run_lead(leaky).await.status, OutcomeStatus::Error);
    assert_eq!(
        f.exchange.run_lead(lead(27)).await.status,
        OutcomeStatus::Sold,
        "the corrected lead is not a duplicate"
    );
}

#[tokio::test]
async fn two_step_ping_then_post_sells_at_the_bid_within_the_expiry() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.default_bid_ttl_ms = 30_000;
    let f =
        build(config(p, &["b1", "b2"], vec![wasm_campaign("best", "b1", 2600), wasm_campaign("second", "b2", 1800)]));
    let pinged = f.exchange.ping(lead(27)).await;
    assert_eq!(pinged.status, PingStatus::Bid, "{:?}", pinged.reason);
    assert_eq!((pinged.best_bid_cents, pinged.payout_cents), (Some(2600), Some(2340)));
    assert_eq!(pinged.expires_at_unix_ms, Some(NOW + 30_000));
    assert!(f.store.all_sales().expect("store").is_empty(), "nothing is sold before the post");

    f.clock.advance(29_000);
    let outcome = f.exchange.post(&pinged.ping_id).await.expect("post within the expiry");
    assert_eq!(sold_to(&outcome), [("best", 2600)]);
    assert_eq!(f.exchange.post(&pinged.ping_id).await.err(), Some(PostError::AlreadyPosted(pinged.ping_id.clone())));
    assert_eq!(f.exchange.post("p_nonexistent").await.err(), Some(PostError::UnknownPingId("p_nonexistent".into())));
}

#[tokio::test]
async fn two_step_post_after_the_expiry_is_a_typed_error() {
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![wasm_campaign("c", "b1", 2600)]));
    let pinged = f.exchange.ping(lead(28)).await;
    f.clock.advance(60_000);
    let error = f.exchange.post(&pinged.ping_id).await.err();
    assert_eq!(error, Some(PostError::Expired { ping_id: pinged.ping_id.clone(), expired_at_unix_ms: NOW + 60_000 }));
    assert!(f.store.all_sales().expect("store").is_empty());
}

#[tokio::test]
async fn a_second_ping_is_not_promised_the_unit_the_first_quote_holds() {
    let mut capped = wasm_campaign("capped", "b1", 2600);
    capped.caps = Caps { leads_per_hour: Some(1), ..Caps::default() };
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![capped, wasm_campaign("second", "b2", 1800)],
    ));
    let first = f.exchange.ping(lead(29)).await;
    let second = f.exchange.ping(lead(30)).await;
    assert_eq!((first.best_bid_cents, second.best_bid_cents), (Some(2600), Some(1800)));
    assert_eq!(ineligible_of_ping(&second, "capped"), Some(&Ineligible::CapReached { cap: CapKind::LeadsPerHour }));

    // Posted in the other order, each still pays what it was quoted.
    assert_eq!(sold_to(&f.exchange.post(&second.ping_id).await.expect("post")), [("second", 1800)]);
    assert_eq!(sold_to(&f.exchange.post(&first.ping_id).await.expect("post")), [("capped", 2600)]);
}

#[tokio::test]
async fn a_two_step_ping_without_bids_says_why() {
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![rejecting_campaign("tx-only", "b1")]));
    let pinged = f.exchange.ping(lead(31)).await;
    assert_eq!(pinged.status, PingStatus::NoBid);
    assert!(pinged.reason.as_deref().is_some_and(|r| r.contains("1 reject")), "{:?}", pinged.reason);
    assert_eq!(f.exchange.post(&pinged.ping_id).await.err(), Some(PostError::UnknownPingId(pinged.ping_id)));
}

#[tokio::test]
async fn wasm_buyers_receive_caps_left_and_the_clock_time() {
    let mut capped = wasm_campaign_with("capped", "b1", json!({"base_price_cents": 100, "echo_input": true}));
    capped.caps = Caps { leads_per_day: Some(10), spend_per_month_cents: Some(50_000), ..Caps::default() };
    let f = build(config(publisher(SelectionMode::Exclusive), &["b1"], vec![capped]));
    f.exchange.run_lead(lead(32)).await;
    let outcome = f.exchange.run_lead(lead(33)).await;
    let (_, input) = &wasm_inputs(&outcome)[0];
    let input: serde_json::Value = serde_json::from_str(input).expect("echo is JSON");
    assert_eq!(input["context"]["now_unix_ms"], NOW);
    assert_eq!(input["context"]["caps_left"]["leads_day"], 9);
    assert_eq!(input["context"]["caps_left"]["spend_month_cents"], 49_900);
    assert_eq!(input["ping"]["age"], 58);
}

#[tokio::test]
async fn a_looping_or_trapping_wasm_buyer_is_recorded_and_then_suspended_while_others_sell() {
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2", "b3"],
        vec![
            hostile_campaign("looping", "b1", "loop"),
            hostile_campaign("panicking", "b2", "panic"),
            wasm_campaign("sane", "b3", 700),
        ],
    ));
    let first = f.exchange.run_lead(lead(40)).await;
    assert_eq!(answer_of(&first, "looping"), Some(&Answer::Timeout));
    assert!(
        matches!(answer_of(&first, "panicking"), Some(Answer::Error { kind: ErrorKind::Trap, .. })),
        "{:?}",
        answer_of(&first, "panicking")
    );
    assert_eq!(sold_to(&first), [("sane", 700)]);

    // The runtime's breaker opens after five failures in a row; the engine records the suspension.
    let mut last = first;
    for n in 1..6 {
        last = f.exchange.run_lead(lead(40 + n)).await;
    }
    assert!(
        matches!(answer_of(&last, "panicking"), Some(Answer::Suspended { .. })),
        "{:?}",
        answer_of(&last, "panicking")
    );
    assert_eq!(sold_to(&last), [("sane", 700)]);
}

#[tokio::test]
async fn a_quick_buyer_earns_inline_calls_while_a_looping_or_trapping_one_never_does() {
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2", "b3"],
        vec![
            hostile_campaign("looping", "b1", "loop"),
            hostile_campaign("panicking", "b2", "panic"),
            wasm_campaign("sane", "b3", 700),
        ],
    ));
    let trusted = |campaign: &str| f.exchange.campaign_slot(campaign).expect("campaign").current().inline_trusted();
    let redactor = f.exchange.redactor_slot("pub-1").expect("publisher").current();
    // The streak counts calls under a wall-time threshold, so a loaded machine may need a few more auctions than
    // three; the looping and trapping buyers must stay on the lanes whatever happens.
    let mut auctions = 0;
    while auctions < 20 && !(trusted("sane") && redactor.inline_trusted()) {
        assert!(auctions >= 3 || !trusted("sane"), "trusted after only {auctions} calls");
        let outcome = f.exchange.run_lead(lead(60 + auctions)).await;
        assert_eq!(sold_to(&outcome), [("sane", 700)], "auction {auctions}");
        assert!(!trusted("looping"), "auction {auctions}: a looping buyer is never run inline");
        assert!(!trusted("panicking"), "auction {auctions}: a trapping buyer is never run inline");
        auctions += 1;
    }
    assert!(trusted("sane"), "a streak of quick successes earns inline calls");
    assert!(redactor.inline_trusted(), "the redactor earns inline calls the same way");
    // Once the sane buyer runs inline, the others still answer from the lanes.
    let outcome = f.exchange.run_lead(lead(90)).await;
    assert_eq!(sold_to(&outcome), [("sane", 700)]);
    assert!(!trusted("looping") && !trusted("panicking"));
}

#[tokio::test]
async fn two_step_post_rechecks_the_schedule() {
    let mut until_eleven = wasm_campaign("until-eleven", "b1", 2600);
    until_eleven.schedule = Schedule::parse(&["00:00-11:00"]).expect("a schedule");
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![until_eleven, wasm_campaign("all-day", "b2", 1000)],
    ));
    // 10:59:45 in New York at the ping, 11:00:15 at the post, well within the bid's 60 s.
    f.clock.set(NOW + 59 * 60_000 + 45_000);
    let pinged = f.exchange.ping(lead(50)).await;
    assert_eq!(pinged.best_bid_cents, Some(2600));
    f.clock.advance(30_000);
    let outcome = f.exchange.post(&pinged.ping_id).await.expect("post");
    assert!(
        matches!(&outcome.trace.posts[0].result, PostResult::NoLongerEligible { reason } if reason.contains("schedule"))
    );
    assert_eq!(sold_to(&outcome), [("all-day", 1000)]);
}

#[tokio::test]
async fn a_bid_above_the_campaigns_maximum_is_an_error_answer_and_never_sells() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": u32::MAX})),
        Reply::json(json!({"result": "accepted", "price_cents": u32::MAX})),
    )
    .await;
    let mut capped = wasm_campaign("capped", "b2", 1000);
    capped.max_bid_cents = Some(500);
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1", "b2"],
        vec![http_campaign("greedy", "b1", server.endpoints(2_000)), capped],
    ));
    let outcome = f.exchange.run_lead(lead(40)).await;
    assert_eq!(outcome.status, OutcomeStatus::Unsold, "{:?}", outcome.reason);
    for campaign in ["greedy", "capped"] {
        assert!(
            matches!(answer_of(&outcome, campaign), Some(Answer::Error { kind: ErrorKind::BidTooHigh, .. })),
            "{campaign}: {:?}",
            answer_of(&outcome, campaign)
        );
    }
    assert!(server.posts().is_empty(), "nothing was posted");
}

#[tokio::test]
async fn a_buyers_huge_reject_message_is_cut_in_the_trace() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "reject", "code": "other", "message": "x".repeat(60 * 1024)})),
        Reply::json(json!({"result": "duplicate"})),
    )
    .await;
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1"],
        vec![http_campaign("chatty", "b1", server.endpoints(2_000))],
    ));
    let outcome = f.exchange.run_lead(lead(41)).await;
    let Some(Answer::Reject { message, .. }) = answer_of(&outcome, "chatty") else { panic!("a reject") };
    assert!(message.len() <= pingpost::auction::text::MAX_STORED_TEXT + 32, "{} bytes kept", message.len());
    assert!(message.ends_with("(61440 bytes)"), "{message}");
}

#[tokio::test]
async fn a_post_rejection_that_repeats_the_consumers_pii_is_withheld_from_the_trace() {
    let lead = lead(42);
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900})),
        Reply::json(json!({"result": "rejected", "reason": format!("phone {} is disconnected", lead.consumer.phone)})),
    )
    .await;
    let f = build(config(
        publisher(SelectionMode::Exclusive),
        &["b1"],
        vec![http_campaign("picky", "b1", server.endpoints(2_000))],
    ));
    let outcome = f.exchange.run_lead(lead.clone()).await;
    let PostResult::Rejected { reason } = &outcome.trace.posts[0].result else { panic!("{:?}", outcome.trace.posts) };
    assert!(reason.starts_with("[withheld"), "{reason}");
    let trace = serde_json::to_string(&outcome).expect("serialises");
    assert!(pii_in(&trace, &lead).is_empty(), "{:?}", pii_in(&trace, &lead));
}

#[tokio::test]
async fn a_lead_nobody_answered_in_time_is_not_a_duplicate_when_sent_again_but_one_buyers_passed_on_is() {
    let mut p = publisher(SelectionMode::Exclusive);
    p.dedupe_window_days = 30;
    p.ping_deadline_ms = 300;
    let late = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2000})).delayed(Duration::from_millis(1_500)),
        Reply::json(json!({"result": "accepted", "price_cents": 2000})),
    )
    .await;
    let f = build(config(p.clone(), &["b1"], vec![http_campaign("slow", "b1", late.endpoints(2_000))]));
    let unanswered = f.exchange.run_lead(lead(61)).await;
    assert_eq!(unanswered.status, OutcomeStatus::Unsold, "{:?}", unanswered.reason);
    assert_eq!(unanswered.trace.campaigns[0].answer, Some(Answer::Timeout));
    let again = f.exchange.run_lead(lead(61)).await;
    assert_eq!(again.status, OutcomeStatus::Unsold, "auctioned again, not a duplicate: {:?}", again.reason);

    let passed = build(config(p, &["b1"], vec![rejecting_campaign("no", "b1")]));
    assert_eq!(passed.exchange.run_lead(lead(62)).await.status, OutcomeStatus::Unsold);
    assert_eq!(
        passed.exchange.run_lead(lead(62)).await.status,
        OutcomeStatus::Duplicate,
        "the buyers saw it and passed"
    );
}

//! The first-party plugins through the runtime: a table of pings with the decisions each buyer must give, the
//! redactor's ping for a lead, the same answers from warm and fresh instances, the contract types crossing the
//! boundary intact, and campaigns of one module kept apart.

mod common;

use std::time::Duration;

use common::{NOW, lead, ping, plugin, runtime, wasm, with_cache};
use pingpost::model::{
    Bid, BidContext, CapsLeft, ConsentFlags, Decision, Gender, Ping, PingRequest, RejectCode, SaleKind,
};
use pingpost::plugin::{
    Allocator, BuyerPlugin, CallError, InstanceMode, Limits, LoadError, PreparedPing, Runtime, RuntimeConfig,
};
use serde_json::Value;

/// Florida and Texas, 25-64, health insurance, TrustedForm required, weekdays 9-17 in New York, floor 5 dollars.
const CONFIG_BUYER: &str = r#"{
    "states": ["FL", "TX"], "min_age": 25, "max_age": 64, "verticals": ["health-insurance"],
    "require_consent": ["trusted_form"], "base_price_cents": 1000, "floor_cents": 500,
    "modifiers": {
        "state": {"FL": {"add_cents": 200}},
        "age_bands": [{"min_age": 30, "max_age": 49, "modifier": {"percent": 10}}],
        "consent": {"jornaya": {"add_cents": 50}}
    },
    "schedule": {"time_zone": "America/New_York",
                 "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start_hour": 9, "end_hour": 17}]}
}"#;

const HOUR: i64 = 3_600_000;

fn bid(price_cents: u32) -> Decision {
    Decision::Bid(Bid { price_cents, buyer_ref: None, ttl_ms: None })
}

fn decide(buyer: &BuyerPlugin, ping: &Ping, now: i64) -> Decision {
    buyer.bid(ping, &BidContext::at(now)).expect("the buyer answers").value
}

fn code(decision: &Decision) -> Option<RejectCode> {
    match decision {
        Decision::Reject(rejection) => Some(rejection.code),
        Decision::Bid(_) => None,
    }
}

/// (what, ping, time, expected price or reject code)
fn config_buyer_table() -> Vec<(&'static str, Ping, i64, Result<u32, RejectCode>)> {
    let base = ping();
    vec![
        ("FL 40 with all consent: (1000 + 200 + 50) * 110%", base.clone(), NOW, Ok(1375)),
        (
            "TX 55 without Jornaya: the base price",
            Ping {
                state: "TX".into(),
                age: 55,
                consent: ConsentFlags { jornaya: false, ..base.consent },
                ..base.clone()
            },
            NOW,
            Ok(1000),
        ),
        ("a state not bought", Ping { state: "GA".into(), ..base.clone() }, NOW, Err(RejectCode::Geography)),
        ("too young", Ping { age: 22, ..base.clone() }, NOW, Err(RejectCode::Age)),
        ("too old", Ping { age: 65, ..base.clone() }, NOW, Err(RejectCode::Age)),
        ("a vertical not bought", Ping { vertical: "solar".into(), ..base.clone() }, NOW, Err(RejectCode::Vertical)),
        (
            "no TrustedForm",
            Ping { consent: ConsentFlags { trusted_form: false, ..base.consent }, ..base.clone() },
            NOW,
            Err(RejectCode::Consent),
        ),
        ("18:00 in New York", base.clone(), NOW + 8 * HOUR, Err(RejectCode::Schedule)),
        ("Saturday", base.clone(), NOW + 3 * 24 * HOUR, Err(RejectCode::Schedule)),
    ]
}

fn assert_table(buyer: &BuyerPlugin) {
    for (what, ping, now, expected) in config_buyer_table() {
        let decision = decide(buyer, &ping, now);
        match expected {
            Ok(price) => assert_eq!(decision, bid(price), "{what}"),
            Err(expected_code) => assert_eq!(code(&decision), Some(expected_code), "{what}: {decision:?}"),
        }
    }
}

#[test]
fn the_config_buyer_decides_the_table_of_pings_on_warm_instances() {
    let buyer = runtime().buyer(plugin("config-buyer"), "campaign-1", CONFIG_BUYER).expect("buyer");
    assert_table(&buyer);
}

#[test]
fn fresh_instances_decide_the_table_exactly_like_warm_ones() {
    let limits = Limits { deadline: Duration::from_secs(5), ..Limits::default() };
    let fresh =
        Runtime::new(with_cache(RuntimeConfig { instance_mode: InstanceMode::Fresh, limits, ..Default::default() }))
            .expect("runtime");
    let plugin = fresh.load(&wasm("config-buyer")).expect("loads");
    assert_table(&fresh.buyer(plugin, "campaign-1", CONFIG_BUYER).expect("buyer"));
}

#[test]
fn the_pooling_allocator_decides_the_table_like_on_demand_memory() {
    let config = RuntimeConfig {
        allocator: Allocator::Pooling { total_instances: 16 },
        limits: Limits { deadline: Duration::from_secs(5), ..Limits::default() },
        ..Default::default()
    };
    let pooled = Runtime::new(with_cache(config)).expect("runtime");
    let plugin = pooled.load(&wasm("config-buyer")).expect("loads");
    assert_table(&pooled.buyer(plugin, "campaign-1", CONFIG_BUYER).expect("buyer"));
}

#[test]
fn an_invalid_campaign_config_is_refused_when_the_buyer_is_created() {
    match runtime().buyer(plugin("config-buyer"), "broken", "{not json") {
        Err(LoadError::Config { reason }) => assert!(reason.contains("config-buyer config"), "{reason}"),
        Err(other) => panic!("expected the plugin's config refusal, got {other}"),
        Ok(_) => panic!("a config that is not JSON was accepted"),
    }
}

#[test]
fn an_invalid_publisher_config_is_refused_when_the_redactor_is_created() {
    match runtime().redactor(plugin("standard-redactor"), "pub-1", r#"{"allow_extra": "all"}"#) {
        Err(LoadError::Config { reason }) => assert!(reason.contains("standard-redactor config"), "{reason}"),
        Err(other) => panic!("expected the plugin's config refusal, got {other}"),
        Ok(_) => panic!("an allow_extra that is not a list was accepted"),
    }
}

#[test]
fn a_new_buyer_is_configured_once_and_its_first_instance_serves_warm() {
    let buyer = runtime().buyer(plugin("config-buyer"), "eager", r#"{"base_price_cents": 400}"#).expect("buyer");
    assert_eq!(buyer.idle_instances(), 1, "the instance configured at creation is kept warm");
    assert_eq!(decide(&buyer, &ping(), NOW).price_cents(), Some(400));
    assert_eq!(buyer.idle_instances(), 1, "the first call ran on that instance and gave it back");
}

#[test]
fn the_scorecard_buyer_prices_by_score_with_its_default_card() {
    let buyer = runtime().buyer(plugin("scorecard-buyer"), "score-1", "{}").expect("buyer");
    // age 26-44: 25, TrustedForm 20 + Jornaya 15 + TCPA 10, FL tier: 20 = 90 points at 20 cents.
    assert_eq!(
        decide(&buyer, &ping(), NOW),
        Decision::Bid(Bid { price_cents: 1800, buyer_ref: Some("score-90".into()), ttl_ms: None })
    );
    let family = Ping {
        extra: [("coverage_type".to_owned(), "family".to_owned()), ("household_size".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
        ..ping()
    };
    // + family 15 + household 3 * 4 = 117 points.
    assert_eq!(decide(&buyer, &family, NOW).price_cents(), Some(2340));
    assert_eq!(code(&decide(&buyer, &Ping { age: 17, ..ping() }, NOW)), Some(RejectCode::Age));
    let weak = Ping { age: 20, state: "WY".into(), consent: ConsentFlags::default(), ..ping() };
    assert_eq!(code(&decide(&buyer, &weak, NOW)), Some(RejectCode::Price), "5 + 5 points is under the floor of 50");
}

#[test]
fn the_standard_redactor_keeps_only_what_buyers_need() {
    let redactor = runtime()
        .redactor(plugin("standard-redactor"), "pub-1", r#"{"allow_extra": ["coverage_type"]}"#)
        .expect("redactor");
    let report = redactor.redact(&lead(), NOW).expect("the redactor answers");
    let expected = Ping {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 40,
        gender: None,
        consent: ConsentFlags { trusted_form: true, jornaya: false, tcpa_text: true },
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: String::new(),
        extra: [("coverage_type".to_owned(), "family".to_owned())].into_iter().collect(),
    };
    assert_eq!(report.value, Ok(expected));
}

#[test]
fn the_standard_redactor_refuses_a_lead_it_cannot_age() {
    let redactor = runtime().redactor(plugin("standard-redactor"), "pub-1", "").expect("redactor");
    let mut bad = lead();
    bad.consumer.date_of_birth = "yesterday".into();
    let answer = redactor.redact(&bad, NOW).expect("a refusal is an answer, not a failure").value;
    assert!(answer.is_err_and(|reason| reason.contains("date_of_birth")));
}

#[test]
fn the_ping_and_context_cross_the_boundary_intact() {
    let config = r#"{"base_price_cents": 100, "echo_input": true}"#;
    let buyer = runtime().buyer(plugin("config-buyer"), "echo-1", config).expect("buyer");
    let sent = Ping {
        gender: Some(Gender::NonBinary),
        sub_id: "aff-3".into(),
        extra: [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "two".to_owned())].into_iter().collect(),
        ..ping()
    };
    let caps = CapsLeft {
        leads_hour: Some(3),
        leads_day: None,
        leads_month: Some(90),
        spend_day_cents: Some(12_345),
        spend_month_cents: None,
    };
    let sent_context = BidContext { now_unix_ms: NOW, caps_left: caps, sale: SaleKind::Shared, floor_cents: 750 };
    let report = buyer.bid(&sent, &sent_context).expect("answers");
    let line: Value = serde_json::from_str(&report.logs[0].message).expect("the echo is JSON");
    let received: Ping = serde_json::from_value(line["ping"].clone()).expect("a ping");
    let context: BidContext = serde_json::from_value(line["context"].clone()).expect("a context");
    assert_eq!(received, sent);
    assert_eq!(context, sent_context);
}

#[test]
fn two_campaigns_of_one_module_answer_by_their_own_config_and_share_no_instance() {
    let cheap = runtime().buyer(plugin("config-buyer"), "cheap", r#"{"base_price_cents": 300}"#).expect("buyer");
    let dear = runtime().buyer(plugin("config-buyer"), "dear", r#"{"base_price_cents": 900}"#).expect("buyer");
    for _ in 0..5 {
        assert_eq!(decide(&cheap, &ping(), NOW), bid(300));
        assert_eq!(decide(&dear, &ping(), NOW), bid(900));
    }
    assert_eq!((cheap.idle_instances(), dear.idle_instances()), (1, 1), "one warm instance each");
}

#[test]
fn guest_state_of_one_campaign_never_reaches_another() {
    // A campaign whose guest traps after every call shares the module with a healthy one. Were their instances
    // shared, the healthy campaign would hit the trapped instance ("cannot enter component instance").
    let broken = runtime().buyer(plugin("hostile-buyer"), "broken", "panic").expect("buyer");
    let healthy = runtime().buyer(plugin("hostile-buyer"), "healthy", "ok").expect("buyer");
    for _ in 0..5 {
        assert!(broken.bid(&ping(), &BidContext::at(NOW)).is_err());
        assert_eq!(decide(&healthy, &ping(), NOW), bid(100));
    }
}

#[test]
fn a_0_2_redactor_redacts_a_pii_free_ping_request_and_a_0_1_one_is_not_called() {
    let request = PingRequest {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: "fb".into(),
        sub_id: "ad-7".into(),
        state: "FL".into(),
        zip: "331".into(),
        age: 58,
        tcpa_text: true,
        ..PingRequest::default()
    };
    let standard = runtime().redactor(plugin("standard-redactor"), "pub-1", "").expect("redactor");
    assert!(standard.redacts_pings());
    let ping = standard.redact_ping(&request, NOW).expect("answers").value.expect("a ping");
    assert_eq!((ping.state.as_str(), ping.zip3.as_str(), ping.age, ping.sub_id.as_str()), ("FL", "331", 58, "ad-7"));
    assert!(ping.consent.tcpa_text && !ping.consent.trusted_form);

    let old = runtime().redactor(plugin("plain-redactor-0-1"), "pub-1", "").expect("redactor");
    assert!(!old.redacts_pings());
    let refused = old.redact_ping(&request, NOW).expect_err("0.1.0 has no redact-ping");
    assert_eq!(refused, CallError::Unsupported { export: "redaction.redact-ping", version: "0.1.0" });
    // Not a failure of the plugin: its breaker stays closed, and it still redacts full leads.
    assert_eq!(old.breaker_status().state, pingpost::plugin::BreakerState::Closed);
    let from_lead = old.redact(&lead(), NOW).expect("answers").value.expect("a ping");
    assert_eq!((from_lead.state.as_str(), from_lead.sub_id.as_str()), ("FL", ""));
}

#[test]
fn a_buyer_of_each_contract_version_answers_the_same_prepared_ping() {
    let new = runtime().buyer(plugin("config-buyer"), "c-new", r#"{"base_price_cents": 700}"#).expect("buyer");
    let old = runtime().buyer(plugin("flat-buyer-0-1"), "c-old", "450").expect("buyer");
    assert_eq!((new.plugin().contract_version(), old.plugin().contract_version()), ("0.2.0", "0.1.0"));
    let prepared = PreparedPing::new(&ping()).expect("a valid ping");
    let context = BidContext { sale: SaleKind::Shared, floor_cents: 100, ..BidContext::at(NOW) };
    for _ in 0..3 {
        assert_eq!(new.bid_prepared(&prepared, &context).expect("answers").value.price_cents(), Some(700));
        let old_bid = old.bid_prepared(&prepared, &context).expect("answers").value;
        let Decision::Bid(bid) = old_bid else { panic!("the flat buyer bids: {old_bid:?}") };
        let p = ping();
        assert_eq!((bid.price_cents, bid.buyer_ref), (450, Some(format!("{}-{}-{}", p.state, p.zip3, p.age))));
    }
}

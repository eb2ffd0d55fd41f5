//! Decisions on a table of pings, with the default weights and with a custom scorecard.

use pingpost_sdk::{BidContext, Buyer, ConsentFlags, Decision, LogLevel, Ping, RejectCode, UsState};

use crate::ScorecardBuyer;

fn ping(state: &str, age: u8, consent: [bool; 3], extra: &[(&str, &str)]) -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: UsState::from_code(state).expect("a state code"),
        zip3: 331,
        age,
        gender: None,
        consent: ConsentFlags { trusted_form: consent[0], jornaya: consent[1], tcpa_text: consent[2] },
        publisher_id: "pub-1".into(),
        source_id: "src-1".into(),
        sub_id: String::new(),
        extra: Ping::encode_extra(extra.iter().copied()),
    }
}

#[derive(Debug, PartialEq)]
enum Expect {
    Bid(u32),
    Reject(RejectCode),
}

fn decide(config: &str, ping: &Ping) -> Expect {
    let buyer = ScorecardBuyer::new(config).unwrap_or_else(|e| panic!("config refused: {e}"));
    match buyer.bid(ping, &BidContext::default()) {
        Decision::Bid(bid) => Expect::Bid(bid.price_cents),
        Decision::Reject(r) => Expect::Reject(r.code),
    }
}

const ALL: [bool; 3] = [true, true, true];
const TF: [bool; 3] = [true, false, false];
const NONE: [bool; 3] = [false, false, false];

#[test]
fn default_weights_price_a_table_of_pings() {
    use Expect::*;
    let rows = [
        // age 26-44 (25) + all consent (45) + tier 1 (20) + family (15) + household 4 (16) = 121 points × 20 cents
        ("a strong lead", ping("FL", 40, ALL, &[("coverage_type", "family"), ("household_size", "4")]), Bid(2420)),
        // age 18-25 (5) + tier 1 (20) = 25 points, under the floor of 50
        ("a weak lead", ping("TX", 22, NONE, &[]), Reject(RejectCode::Price)),
        // age 45-64 (20) + TrustedForm (20) + tier 2 (12) = 52
        ("just over the floor", ping("OH", 50, TF, &[]), Bid(1040)),
        // age 26-44 (25) + TrustedForm and Jornaya (35) + other state (5) = 65
        ("a state in no tier", ping("WY", 30, [true, true, false], &[]), Bid(1300)),
        // 25 + 20 + 20 + household capped at 20 = 85
        ("household points are capped", ping("FL", 40, TF, &[("household_size", "10")]), Bid(1700)),
        // 25 + 20 + 20, the unreadable household size scores nothing = 65
        ("an unreadable number scores nothing", ping("FL", 40, TF, &[("household_size", "four")]), Bid(1300)),
        ("an unknown coverage type scores nothing", ping("FL", 40, TF, &[("coverage_type", "pets")]), Bid(1300)),
        // 65+ (10) + 45 + 20 = 75
        ("seniors score less", ping("NY", 70, ALL, &[]), Bid(1500)),
        ("minors are never bought", ping("FL", 17, ALL, &[("coverage_type", "family")]), Reject(RejectCode::Age)),
    ];
    for (name, p, expected) in rows {
        assert_eq!(decide("{}", &p), expected, "{name}");
    }
}

#[test]
fn an_empty_config_means_the_defaults() {
    let p = ping("FL", 40, ALL, &[("coverage_type", "family")]);
    assert_eq!(decide("", &p), decide("{}", &p));
}

#[test]
fn the_bid_carries_the_score_as_its_reference() {
    let buyer = ScorecardBuyer::new("{}").expect("defaults");
    match buyer.bid(&ping("OH", 50, TF, &[]), &BidContext::default()) {
        Decision::Bid(bid) => assert_eq!(bid.buyer_ref.as_deref(), Some("score-52")),
        other => panic!("expected a bid, got {other:?}"),
    }
}

#[test]
fn a_custom_scorecard_changes_weights_floor_cap_and_verticals() {
    let config = r#"{"verticals": ["medicare"], "cents_per_point": 50, "min_score": 10, "max_price_cents": 3000,
        "consent_points": {"jornaya": 40}, "state_tiers": [], "other_state_points": 1,
        "age_points": [{"min_age": 65, "max_age": 120, "points": 30}]}"#;
    let medicare = |p: Ping| Ping { vertical: "medicare".into(), ..p };
    // 30 + TrustedForm default 20 + Jornaya 40 + 1 = 91 points × 50 = 4550, capped at 3000
    assert_eq!(decide(config, &medicare(ping("FL", 70, [true, true, false], &[]))), Expect::Bid(3000));
    // Age outside every band: 0 + 10 (TCPA default) + 1 = 11 points
    assert_eq!(decide(config, &medicare(ping("FL", 40, [false, false, true], &[]))), Expect::Bid(550));
    // 0 + 0 + 1 = 1 point, under the floor of 10
    assert_eq!(decide(config, &medicare(ping("FL", 40, NONE, &[]))), Expect::Reject(RejectCode::Price));
    assert_eq!(decide(config, &ping("FL", 70, ALL, &[])), Expect::Reject(RejectCode::Vertical));
}

#[test]
fn a_score_worth_nothing_is_never_bid() {
    let config = r#"{"min_score": -100, "other_state_points": -10, "age_points": []}"#;
    assert_eq!(decide(config, &ping("WY", 40, NONE, &[])), Expect::Reject(RejectCode::Price));
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    let bad = [
        (r#"{"cents_per_point": 0}"#, "cents_per_point"),
        (r#"{"min_scor": 3}"#, "unknown field"),
        (r#"{"age_points": [{"min_age": 40, "max_age": 30, "points": 1}]}"#, "age band 40-30"),
        (r#"{"consent_points": {"jornaya": "many"}}"#, "invalid type"),
        ("[1, 2]", "scorecard-buyer config"),
    ];
    for (config, reason) in bad {
        match ScorecardBuyer::new(config) {
            Ok(_) => panic!("accepted {config}"),
            Err(message) => assert!(message.contains(reason), "{config}: {message}"),
        }
    }
}

#[test]
fn the_score_is_logged_only_when_the_config_asks_for_it() {
    let p = ping("OH", 50, TF, &[]);
    pingpost_sdk::take_native_log();
    ScorecardBuyer::new("{}").expect("defaults").bid(&p, &BidContext::default());
    assert!(pingpost_sdk::take_native_log().is_empty(), "logging is off by default");

    ScorecardBuyer::new(r#"{"log_score": true}"#).expect("log on").bid(&p, &BidContext::default());
    let lines = pingpost_sdk::take_native_log();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0], (LogLevel::Debug, "score 52: age 45-64: +20, trusted_form: +20, state OH: +12".to_owned()));
}

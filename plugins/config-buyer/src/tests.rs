//! Decisions on a table of pings, and the config's edge cases.

use pingpost_sdk::time::CivilDate;
use pingpost_sdk::{
    BidContext, Buyer, CapsLeft, ConsentFlags, Decision, Gender, LogLevel, Ping, RejectCode, Sale, UsState,
};

use crate::ConfigBuyer;

const CAMPAIGN: &str = r#"{
    "states": ["FL", "tx"],
    "min_age": 21,
    "max_age": 64,
    "verticals": ["health-insurance"],
    "require_consent": ["trusted_form"],
    "base_price_cents": 2000,
    "modifiers": {
        "state": {"TX": {"percent": -10}},
        "age_bands": [{"min_age": 21, "max_age": 29, "modifier": {"add_cents": -500}}],
        "consent": {"jornaya": {"add_cents": 300}}
    },
    "schedule": {
        "time_zone": "America/New_York",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start_hour": 9, "end_hour": 17}]
    },
    "floor_cents": 1200
}"#;

/// Milliseconds since the epoch of a UTC date and time.
fn utc(year: i32, month: u8, day: u8, hour: i64, minute: i64) -> i64 {
    let date = CivilDate { year, month, day };
    (date.days_since_epoch() * 24 * 60 + hour * 60 + minute) * 60_000
}

/// Wednesday 2024-07-10, 11:00 in New York (EDT).
fn wednesday_morning() -> i64 {
    utc(2024, 7, 10, 15, 0)
}

fn ping(state: &str, age: u8, trusted_form: bool, jornaya: bool) -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: UsState::from_code(state).expect("a state code"),
        zip3: 331,
        age,
        gender: Some(Gender::Female),
        consent: ConsentFlags { trusted_form, jornaya, tcpa_text: true },
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: String::new(),
        extra: String::new(),
    }
}

fn decide(config: &str, ping: &Ping, now_unix_ms: i64) -> Decision {
    let buyer = ConfigBuyer::new(config).unwrap_or_else(|e| panic!("config refused: {e}"));
    let context = BidContext { now_unix_ms, ..BidContext::default() };
    buyer.bid(ping, &context)
}

#[test]
fn a_source_modifier_prices_by_source_and_the_most_specific_key_wins() {
    let config = r#"{"base_price_cents": 2000, "modifiers": {"source": {"src-9": {"percent": 10}, "src-9/aff-3": {"add_cents": -1000}}}}"#;
    let from =
        |source: &str, sub: &str| Ping { source_id: source.into(), sub_id: sub.into(), ..ping("FL", 58, true, false) };
    let price = |p: &Ping| match decide(config, p, wednesday_morning()) {
        Decision::Bid(bid) => bid.price_cents,
        other => panic!("expected a bid, got {other:?}"),
    };
    assert_eq!(price(&from("src-9", "")), 2200);
    assert_eq!(price(&from("src-9", "aff-7")), 2200, "no key for this sub id: the source's applies");
    assert_eq!(price(&from("src-9", "aff-3")), 1000, "the source/sub key replaces the source's");
    assert_eq!(price(&from("src-1", "aff-3")), 2000);
    for bad in ["", "a/", "a/b/c"] {
        let config = serde_json::json!({"base_price_cents": 1, "modifiers": {"source": {bad: {"percent": 1}}}});
        assert!(ConfigBuyer::new(&config.to_string()).is_err(), "{bad:?} is refused");
    }
}

#[test]
fn a_shared_sale_is_priced_with_the_shared_modifier() {
    let config = r#"{"base_price_cents": 2000, "modifiers": {"shared": {"percent": -40}}}"#;
    let buyer = ConfigBuyer::new(config).expect("a valid config");
    let p = ping("FL", 40, true, false);
    let at = |sale| BidContext { sale, floor_cents: 500, ..BidContext::default() };
    assert_eq!(buyer.bid(&p, &at(Sale::Exclusive)), Decision::bid(2000));
    assert_eq!(buyer.bid(&p, &at(Sale::Shared)), Decision::bid(1200));
    let without = ConfigBuyer::new(r#"{"base_price_cents": 2000}"#).expect("a valid config");
    assert_eq!(without.bid(&p, &at(Sale::Shared)), Decision::bid(2000));
    assert!(ConfigBuyer::new(r#"{"base_price_cents": 1, "modifiers": {"shared": {"percent": -101}}}"#).is_err());
}

#[derive(Debug, PartialEq)]
enum Expect {
    Bid(u32),
    Reject(RejectCode),
}

fn outcome(decision: &Decision) -> Expect {
    match decision {
        Decision::Bid(bid) => Expect::Bid(bid.price_cents),
        Decision::Reject(r) => Expect::Reject(r.code),
    }
}

#[test]
fn decides_a_table_of_pings() {
    use Expect::*;
    let wed = wednesday_morning();
    let solar = Ping { vertical: "solar".into(), ..ping("FL", 40, true, false) };
    let rows: Vec<(&str, Ping, i64, Expect)> = vec![
        ("base price in Florida", ping("FL", 40, true, false), wed, Bid(2000)),
        ("Texas is 10% less", ping("TX", 40, true, false), wed, Bid(1800)),
        ("ages 21-29 are 5 dollars less", ping("FL", 25, true, false), wed, Bid(1500)),
        ("Jornaya evidence adds 3 dollars", ping("FL", 40, true, true), wed, Bid(2300)),
        ("additions first, then the percentage", ping("TX", 25, true, true), wed, Bid(1620)),
        ("edges of the age range are bought", ping("FL", 64, true, false), wed, Bid(2000)),
        ("California is not bought", ping("CA", 40, true, false), wed, Reject(RejectCode::Geography)),
        ("too young", ping("FL", 20, true, false), wed, Reject(RejectCode::Age)),
        ("too old", ping("FL", 65, true, false), wed, Reject(RejectCode::Age)),
        ("another vertical", solar, wed, Reject(RejectCode::Vertical)),
        ("no TrustedForm certificate", ping("FL", 40, false, true), wed, Reject(RejectCode::Consent)),
        ("Saturday", ping("FL", 40, true, false), utc(2024, 7, 13, 15, 0), Reject(RejectCode::Schedule)),
        (
            "Wednesday 18:00 New York",
            ping("FL", 40, true, false),
            utc(2024, 7, 10, 22, 0),
            Reject(RejectCode::Schedule),
        ),
        ("09:00 EDT opens", ping("FL", 40, true, false), utc(2024, 7, 10, 13, 0), Bid(2000)),
        ("08:59 EDT is closed", ping("FL", 40, true, false), utc(2024, 7, 10, 12, 59), Reject(RejectCode::Schedule)),
        (
            "13:30 UTC is 08:30 EST in winter",
            ping("FL", 40, true, false),
            utc(2024, 1, 10, 13, 30),
            Reject(RejectCode::Schedule),
        ),
        ("13:30 UTC is 09:30 EDT in summer", ping("FL", 40, true, false), utc(2024, 7, 10, 13, 30), Bid(2000)),
    ];
    for (name, ping, now, expected) in rows {
        assert_eq!(outcome(&decide(CAMPAIGN, &ping, now)), expected, "{name}");
    }
}

#[test]
fn the_first_failing_filter_names_the_reason() {
    // Wrong vertical and wrong state: the vertical is asked first.
    let p = Ping { vertical: "solar".into(), ..ping("CA", 40, true, false) };
    match decide(CAMPAIGN, &p, wednesday_morning()) {
        Decision::Reject(r) => {
            assert_eq!((r.code, r.message.as_str()), (RejectCode::Vertical, "vertical \"solar\" is not bought"))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_price_under_the_floor_is_a_price_rejection() {
    let config = r#"{"base_price_cents": 1000, "modifiers": {"state": {"NY": {"percent": -50}}}, "floor_cents": 600}"#;
    assert_eq!(outcome(&decide(config, &ping("FL", 40, false, false), 0)), Expect::Bid(1000));
    assert_eq!(outcome(&decide(config, &ping("NY", 40, false, false), 0)), Expect::Reject(RejectCode::Price));
}

#[test]
fn a_price_that_works_out_to_nothing_is_never_bid() {
    let config = r#"{"base_price_cents": 100, "modifiers": {"state": {"NY": {"add_cents": -500}}}}"#;
    assert_eq!(outcome(&decide(config, &ping("NY", 40, false, false), 0)), Expect::Reject(RejectCode::Price));
}

#[test]
fn a_minimal_config_buys_everything_at_the_base_price() {
    let config = r#"{"base_price_cents": 750}"#;
    for p in [ping("AK", 18, false, false), Ping::default()] {
        assert_eq!(outcome(&decide(config, &p, i64::MIN)), Expect::Bid(750));
    }
}

#[test]
fn an_overnight_window_counts_its_early_hours_on_the_next_day() {
    let config = r#"{"base_price_cents": 100,
        "schedule": {"time_zone": "UTC", "windows": [{"days": ["fri"], "start_hour": 22, "end_hour": 6}]}}"#;
    let p = ping("FL", 40, false, false);
    let rows = [
        (utc(2024, 7, 12, 21, 59), false), // Friday before the window
        (utc(2024, 7, 12, 23, 0), true),   // Friday late
        (utc(2024, 7, 13, 2, 0), true),    // Saturday early, still Friday's window
        (utc(2024, 7, 13, 6, 0), false),   // the end hour is exclusive
        (utc(2024, 7, 13, 22, 0), false),  // Saturday late is not Friday
        (utc(2024, 7, 12, 2, 0), false),   // Friday early belongs to Thursday's (absent) window
    ];
    for (now, open) in rows {
        let expected = if open { Expect::Bid(100) } else { Expect::Reject(RejectCode::Schedule) };
        assert_eq!(outcome(&decide(config, &p, now)), expected, "at {now}");
    }
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    let bad = [
        ("", "EOF"),
        ("{}", "base_price_cents"),
        (r#"{"base_price_cents": 100, "state": ["FL"]}"#, "unknown field"),
        (
            r#"{"base_price_cents": 100, "states": ["FL", "PR"]}"#,
            "invalid value: string \"PR\", expected the USPS code of a US state or DC",
        ),
        (r#"{"base_price_cents": 100, "modifiers": {"state": {"Florida": {"percent": 5}}}}"#, "\"Florida\""),
        (r#"{"base_price_cents": -1}"#, "invalid value"),
        (r#"{"base_price_cents": 100, "min_age": 50, "max_age": 30}"#, "min_age 50"),
        (r#"{"base_price_cents": 100, "require_consent": ["notarized"]}"#, "unknown variant"),
        (
            r#"{"base_price_cents": 100, "modifiers": {"state": {"FL": {"add_cents": 1, "percent": 2}}}}"#,
            "config-buyer config",
        ),
        (
            r#"{"base_price_cents": 100, "modifiers": {"age_bands": [{"min_age": 9, "max_age": 3, "modifier": {"percent": 1}}]}}"#,
            "age band",
        ),
        (r#"{"base_price_cents": 100, "schedule": {"time_zone": "Mars/Olympus", "windows": []}}"#, "unknown time zone"),
        (r#"{"base_price_cents": 100, "schedule": {"time_zone": "UTC", "windows": []}}"#, "no windows"),
        (r#"{"base_price_cents": 100, "modifiers": {"state": {"FL": {"percent": 9223372036854775807}}}}"#, "percent"),
        (
            r#"{"base_price_cents": 100, "modifiers": {"consent": {"jornaya": {"add_cents": -9999999999}}}}"#,
            "add_cents",
        ),
        (
            r#"{"base_price_cents": 100, "schedule": {"time_zone": "UTC", "windows": [{"days": ["mon"], "start_hour": 9, "end_hour": 9}]}}"#,
            "different end hour",
        ),
        (
            r#"{"base_price_cents": 100, "schedule": {"time_zone": "UTC", "windows": [{"days": ["mon"], "start_hour": 24, "end_hour": 9}]}}"#,
            "start hour",
        ),
    ];
    for (config, reason) in bad {
        match ConfigBuyer::new(config) {
            Ok(_) => panic!("accepted {config}"),
            Err(message) => assert!(message.contains(reason), "{config}: {message}"),
        }
    }
}

#[test]
fn echo_input_logs_the_ping_and_context_as_json() {
    let config = r#"{"base_price_cents": 100, "echo_input": true}"#;
    let buyer = ConfigBuyer::new(config).expect("valid config");
    let extra = Ping::encode_extra([("coverage_type", "family")]);
    let p = Ping { extra, sub_id: "aff-3".into(), ..ping("FL", 40, true, false) };
    let caps = CapsLeft { leads_day: Some(7), spend_month_cents: Some(90_000), ..CapsLeft::default() };
    let context = BidContext { now_unix_ms: 1_720_623_600_000, caps_left: caps, sale: Sale::Shared, floor_cents: 800 };
    pingpost_sdk::take_native_log();

    assert_eq!(buyer.bid(&p, &context), Decision::bid(100));

    let log = pingpost_sdk::take_native_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, LogLevel::Info);
    let logged: serde_json::Value = serde_json::from_str(&log[0].1).expect("the line is JSON");
    let expected = serde_json::json!({
        "ping": {
            "vertical": "health-insurance", "state": "FL", "zip3": "331", "age": 40, "gender": "female",
            "consent": {"trusted_form": true, "jornaya": false, "tcpa_text": true},
            "publisher_id": "pub-1", "source_id": "src-9", "sub_id": "aff-3", "extra": {"coverage_type": "family"}
        },
        "context": {
            "now_unix_ms": 1_720_623_600_000i64,
            "caps_left": {"leads_hour": null, "leads_day": 7, "leads_month": null, "spend_day_cents": null, "spend_month_cents": 90000},
            "sale": "shared", "floor_cents": 800
        }
    });
    assert_eq!(logged, expected);
}

#[test]
fn without_echo_input_nothing_is_logged() {
    pingpost_sdk::take_native_log();
    decide(CAMPAIGN, &ping("FL", 40, true, false), wednesday_morning());
    assert!(pingpost_sdk::take_native_log().is_empty());
}

//! The host (chrono, `auction::age::age_on`) and the guest SDK (its own calendar, `pingpost_sdk::time::age_on`)
//! compute a consumer's age the same way: a buyer plugin filtering on age sees the age the exchange validated.

use pingpost::auction::Verticals;
use pingpost::auction::age::age_on as host_age;
use pingpost::auction::validate::validate_lead;
use pingpost_sdk::time::age_on as sdk_age;
use proptest::prelude::*;

/// The host's answer in the SDK's terms: an age of 0 to 255, or none.
fn host(date_of_birth: &str, now_unix_ms: i64) -> Option<u8> {
    host_age(date_of_birth, now_unix_ms).ok().and_then(|age| u8::try_from(age).ok())
}

const DAY_MS: i64 = 86_400_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn every_date_of_birth_gives_the_same_age_on_every_day(
        year in 1850i32..2100, month in 1u32..=12, day in 1u32..=31,
        // 1970 to 2100, at any time of day.
        now_unix_ms in 0i64..4_102_444_800_000,
    ) {
        let date_of_birth = format!("{year:04}-{month:02}-{day:02}");
        prop_assert_eq!(host(&date_of_birth, now_unix_ms), sdk_age(&date_of_birth, now_unix_ms), "{} at {}", date_of_birth, now_unix_ms);
    }
}

#[test]
fn leap_day_birthdays_and_the_edges_of_a_day_agree() {
    // 2027-02-28, 2027-03-01 and 2028-02-29, each at its first and last millisecond (UTC).
    let days = [1_803_772_800_000i64, 1_803_859_200_000, 1_835_395_200_000];
    for day in days {
        for now in [day, day + DAY_MS - 1] {
            for date_of_birth in ["2000-02-29", "1968-02-28", "1968-03-01", "2027-03-01", "2028-02-29"] {
                assert_eq!(host(date_of_birth, now), sdk_age(date_of_birth, now), "{date_of_birth} at {now}");
            }
        }
    }
    assert_eq!(sdk_age("2000-02-29", days[0]), Some(26), "not yet 27 on 28 February of a common year");
    assert_eq!(sdk_age("2000-02-29", days[1]), Some(27), "27 on 1 March");
}

#[test]
fn malformed_dates_are_refused_by_both() {
    let now = 1_803_772_800_000;
    for bad in
        ["", "1968-13-01", "1968-02-30", "1968-00-10", "68-02-01", "1968/02/01", "02/01/1968", "1968-02", "tomorrow"]
    {
        assert_eq!((host(bad, now), sdk_age(bad, now)), (None, None), "{bad:?}");
    }
}

#[test]
fn the_date_a_plugin_reads_is_the_one_the_exchange_validated() {
    let now = 1_803_772_800_000;
    let mut lead: pingpost::model::Lead = serde_json::from_str(
        &std::fs::read_to_string(pingpost_plugins::workspace_root().join("examples/florida/lead.json")).expect("reads"),
    )
    .expect("the Florida lead");
    lead.consumer.date_of_birth = format!(" {} ", lead.consumer.date_of_birth);
    let valid = validate_lead(&lead, now, true, &Verticals::default()).expect("valid, spaces and all");
    assert_eq!(sdk_age(&valid.lead.consumer.date_of_birth, now), Some(valid.age), "the SDK reads the normalised date");
}

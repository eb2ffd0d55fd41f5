//! Eligibility: whether a campaign is pinged for a lead at all. A campaign that is paused (or whose buyer is), not
//! buying from the lead's publisher or source, exclusive-only in a shared auction, out of its schedule, at a cap, or
//! suppressed for this consumer, or whose buyer has no funds left is not pinged; the trace says why.
//! Schedules and cap windows are read in the buyer's time zone.

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;

use super::config::{Campaign, CampaignStatus, Caps, Exclusivity, Origin, Schedule, SelectionMode};
use super::store::{CapKind, CapWindows, Usage};
use pingpost_model::CapsLeft;

/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Why a campaign was not pinged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ineligible {
    Paused,
    /// The buyer paused the campaign itself.
    PausedByBuyer,
    /// The campaign's buyer is paused.
    BuyerPaused,
    /// Outside its buying days or hours; `local_time` is the buyer's local time then.
    OutOfSchedule {
        local_time: String,
    },
    CapReached {
        cap: CapKind,
    },
    /// The buyer bought this consumer within the suppression window.
    Suppressed {
        days: u32,
    },
    /// The campaign buys exclusive leads only and the auction is shared.
    ExclusiveOnly,
    /// The campaign does not buy from this publisher or source: `denied_by` names the deny rule that matched, else
    /// no allow rule did.
    SourceRefused {
        #[serde(skip_serializing_if = "Option::is_none")]
        denied_by: Option<String>,
    },
    /// The buyer's funds are spent: balance + credit limit − what its pending sales hold leaves nothing to buy with.
    InsufficientFunds {
        available_cents: i64,
    },
    /// Its plugin is disabled by the operator.
    PluginDisabled {
        plugin: String,
    },
    /// Its plugin or endpoint could not be used (e.g. the plugin is suspended).
    Unavailable {
        detail: String,
    },
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::Paused => write!(f, "paused"),
            Ineligible::PausedByBuyer => write!(f, "paused by its buyer"),
            Ineligible::BuyerPaused => write!(f, "buyer paused"),
            Ineligible::OutOfSchedule { local_time } => write!(f, "out of schedule (buyer time {local_time})"),
            Ineligible::CapReached { cap } => write!(f, "cap {} reached", cap.as_str()),
            Ineligible::Suppressed { days } => write!(f, "buyer bought this consumer within {days} days"),
            Ineligible::ExclusiveOnly => write!(f, "exclusive-only campaign in a shared auction"),
            Ineligible::SourceRefused { denied_by: Some(rule) } => write!(f, "source denied by rule {rule:?}"),
            Ineligible::SourceRefused { denied_by: None } => write!(f, "source not in the campaign's allow list"),
            Ineligible::InsufficientFunds { available_cents } => {
                write!(f, "insufficient funds ({available_cents} cents available)")
            }
            Ineligible::PluginDisabled { plugin } => write!(f, "plugin {plugin:?} disabled"),
            Ineligible::Unavailable { detail } => write!(f, "unavailable: {detail}"),
        }
    }
}

/// The buyer's local time at `now_unix_ms` (UTC if the clock is out of range).
pub fn local_time(time_zone: Tz, now_unix_ms: i64) -> chrono::DateTime<Tz> {
    let utc = chrono::DateTime::from_timestamp_millis(now_unix_ms).unwrap_or_default();
    time_zone.from_utc_datetime(&utc.naive_utc())
}

/// The cap windows `now_unix_ms` falls in, in `time_zone`.
pub fn cap_windows(time_zone: Tz, now_unix_ms: i64) -> CapWindows {
    let local = local_time(time_zone, now_unix_ms);
    CapWindows {
        hour: local.format("%Y-%m-%dT%H").to_string(),
        day: local.format("%Y-%m-%d").to_string(),
        month: local.format("%Y-%m").to_string(),
    }
}

/// Whether `schedule` is open at `now_unix_ms` in `time_zone`.
pub fn in_schedule(schedule: &Schedule, time_zone: Tz, now_unix_ms: i64) -> bool {
    // Most campaigns buy always: no local time is worked out for them.
    schedule.windows.is_empty() || schedule.is_open(&local_time(time_zone, now_unix_ms))
}

/// What is left of `caps` after `usage`.
pub fn caps_left(caps: &Caps, usage: &Usage) -> CapsLeft {
    CapsLeft {
        leads_hour: caps.leads_per_hour.map(|cap| cap.saturating_sub(usage.leads_hour)),
        leads_day: caps.leads_per_day.map(|cap| cap.saturating_sub(usage.leads_day)),
        leads_month: caps.leads_per_month.map(|cap| cap.saturating_sub(usage.leads_month)),
        spend_day_cents: caps.spend_per_day_cents.map(|cap| cap.saturating_sub(usage.spend_day_cents)),
        spend_month_cents: caps.spend_per_month_cents.map(|cap| cap.saturating_sub(usage.spend_month_cents)),
    }
}

/// Everything eligibility depends on besides the campaign, gathered by the engine.
#[derive(Debug, Clone, Copy)]
pub struct EligibilityInput<'a> {
    pub mode: SelectionMode,
    pub time_zone: Tz,
    pub now_unix_ms: i64,
    pub usage: &'a Usage,
    /// Whether the buyer bought this consumer within the campaign's suppression window.
    pub suppressed: bool,
    /// Whether the campaign's buyer is paused.
    pub buyer_paused: bool,
    /// Where the lead comes from (the campaign's source rules).
    pub origin: Origin<'a>,
    /// What the buyer may still spend, when the exchange manages its funds.
    pub available_cents: Option<i64>,
}

/// Checks `campaign`; when it may be pinged, returns what is left of its caps (passed to the buyer).
pub fn check(campaign: &Campaign, input: EligibilityInput<'_>) -> Result<CapsLeft, Ineligible> {
    if campaign.status == CampaignStatus::Paused {
        return Err(Ineligible::Paused);
    }
    if campaign.paused_by_buyer {
        return Err(Ineligible::PausedByBuyer);
    }
    if input.buyer_paused {
        return Err(Ineligible::BuyerPaused);
    }
    if let Err(denied_by) = campaign.sources.refuses(input.origin) {
        return Err(Ineligible::SourceRefused { denied_by: denied_by.map(str::to_owned) });
    }
    if input.mode == SelectionMode::Shared && campaign.exclusivity == Exclusivity::ExclusiveOnly {
        return Err(Ineligible::ExclusiveOnly);
    }
    if !in_schedule(&campaign.schedule, input.time_zone, input.now_unix_ms) {
        let local_time = local_time(input.time_zone, input.now_unix_ms).format("%a %Y-%m-%d %H:%M %Z").to_string();
        return Err(Ineligible::OutOfSchedule { local_time });
    }
    // A lead at any price would exceed a lead cap; a spend cap is full when nothing is left of it.
    if let Some(cap) = input.usage.exceeded_by(&campaign.caps, 1) {
        return Err(Ineligible::CapReached { cap });
    }
    if input.suppressed {
        return Err(Ineligible::Suppressed { days: campaign.suppression_days });
    }
    if let Some(available_cents) = input.available_cents.filter(|available| *available <= 0) {
        return Err(Ineligible::InsufficientFunds { available_cents });
    }
    Ok(caps_left(&campaign.caps, input.usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sources;

    // 2026-03-14 (a Saturday) 14:30 UTC = 10:30 in New York (EDT), 07:30 in Los Angeles (PDT).
    const SAT_1430_UTC: i64 = 1_773_498_600_000;

    #[test]
    fn schedule_is_read_in_the_buyers_time_zone() {
        let nine_to_five = Schedule::parse(&["09:00-17:00"]).expect("a schedule");
        assert!(in_schedule(&nine_to_five, chrono_tz::America::New_York, SAT_1430_UTC));
        assert!(!in_schedule(&nine_to_five, chrono_tz::America::Los_Angeles, SAT_1430_UTC));
    }

    #[test]
    fn every_iana_zone_is_known_outside_the_united_states_too() {
        // 14:30 UTC is 23:30 in Tokyo (no daylight saving) and, in March before the change, 14:30 in London.
        let evening = Schedule::parse(&["sat 23:00-24:00"]).expect("a schedule");
        let tokyo: Tz = "Asia/Tokyo".parse().expect("Asia/Tokyo is compiled in");
        let london: Tz = "Europe/London".parse().expect("Europe/London is compiled in");
        assert!(in_schedule(&evening, tokyo, SAT_1430_UTC));
        assert!(!in_schedule(&evening, london, SAT_1430_UTC));
        assert_eq!(local_time(london, SAT_1430_UTC).format("%H:%M %Z").to_string(), "14:30 GMT");
    }

    #[test]
    fn schedule_days_are_local_days() {
        let weekdays = Schedule::parse(&["mon-fri"]).expect("a schedule");
        assert!(!in_schedule(&weekdays, chrono_tz::America::New_York, SAT_1430_UTC));
        // The same instant is 04:30 Saturday in Honolulu but 00:30 Sunday in Guam.
        let saturday_only = Schedule::parse(&["sat"]).expect("a schedule");
        assert!(in_schedule(&saturday_only, chrono_tz::Pacific::Honolulu, SAT_1430_UTC));
        assert!(!in_schedule(&saturday_only, chrono_tz::Pacific::Guam, SAT_1430_UTC));
    }

    #[test]
    fn overnight_schedule_counts_the_day_it_opened() {
        // A Friday-night shift, 20:00 → 06:00: 03:00 Saturday is in it, 14:30 Saturday is not.
        let friday_night = Schedule::parse(&["fri 20:00-06:00"]).expect("a schedule");
        let sat_0300_utc = SAT_1430_UTC - 11 * 3_600_000 - 30 * 60_000;
        assert!(in_schedule(&friday_night, chrono_tz::UTC, sat_0300_utc));
        assert!(!in_schedule(&friday_night, chrono_tz::UTC, SAT_1430_UTC));
    }

    #[test]
    fn cap_windows_reset_at_local_midnight() {
        // 02:30 UTC on the 15th is still the 14th in New York.
        let windows = cap_windows(chrono_tz::America::New_York, SAT_1430_UTC + 12 * 3_600_000);
        assert_eq!(windows.day, "2026-03-14");
        assert_eq!(windows.hour, "2026-03-14T22");
        assert_eq!(windows.month, "2026-03");
        assert_eq!(cap_windows(chrono_tz::UTC, SAT_1430_UTC + 12 * 3_600_000).day, "2026-03-15");
    }

    #[test]
    fn a_full_cap_makes_a_campaign_ineligible_and_names_the_cap() {
        let caps = Caps { leads_per_day: Some(2), spend_per_month_cents: Some(10_000), ..Caps::default() };
        let campaign = campaign_with(caps);
        let usage = Usage { leads_day: 1, spend_month_cents: 4_000, ..Usage::default() };
        let left = check(&campaign, input(&usage)).expect("eligible");
        assert_eq!((left.leads_day, left.spend_month_cents, left.leads_hour), (Some(1), Some(6_000), None));
        let full = Usage { leads_day: 2, ..Usage::default() };
        assert_eq!(check(&campaign, input(&full)), Err(Ineligible::CapReached { cap: CapKind::LeadsPerDay }));
        let spent = Usage { spend_month_cents: 10_000, ..Usage::default() };
        assert_eq!(check(&campaign, input(&spent)), Err(Ineligible::CapReached { cap: CapKind::SpendPerMonth }));
    }

    #[test]
    fn paused_suppressed_and_exclusive_only_campaigns_are_not_pinged() {
        let usage = Usage::default();
        let input = |mode, suppressed| EligibilityInput { mode, suppressed, ..input(&usage) };
        let mut campaign = campaign_with(Caps::default());
        assert!(check(&campaign, input(SelectionMode::Shared, false)).is_ok());
        assert_eq!(check(&campaign, input(SelectionMode::Exclusive, true)), Err(Ineligible::Suppressed { days: 30 }));
        campaign.exclusivity = Exclusivity::ExclusiveOnly;
        assert_eq!(check(&campaign, input(SelectionMode::Shared, false)), Err(Ineligible::ExclusiveOnly));
        assert!(check(&campaign, input(SelectionMode::Waterfall, false)).is_ok());
        campaign.status = CampaignStatus::Paused;
        assert_eq!(check(&campaign, input(SelectionMode::Exclusive, false)), Err(Ineligible::Paused));
    }

    #[test]
    fn a_paused_buyers_campaigns_are_not_pinged() {
        let usage = Usage::default();
        let input = EligibilityInput { buyer_paused: true, ..input(&usage) };
        let campaign = campaign_with(Caps::default());
        assert_eq!(check(&campaign, input), Err(Ineligible::BuyerPaused));
        assert_eq!(Ineligible::BuyerPaused.to_string(), "buyer paused");
        assert_eq!(
            serde_json::to_value(Ineligible::BuyerPaused).unwrap(),
            serde_json::json!({"reason": "buyer_paused"})
        );
        assert!(check(&campaign, EligibilityInput { buyer_paused: false, ..input }).is_ok());
    }

    #[test]
    fn a_buyer_with_nothing_available_is_not_pinged() {
        let campaign = campaign_with(Caps::default());
        let usage = Usage::default();
        let spent = EligibilityInput { available_cents: Some(0), ..input(&usage) };
        assert_eq!(check(&campaign, spent), Err(Ineligible::InsufficientFunds { available_cents: 0 }));
        assert_eq!(
            serde_json::to_value(Ineligible::InsufficientFunds { available_cents: -40 }).unwrap(),
            serde_json::json!({"reason": "insufficient_funds", "available_cents": -40})
        );
        assert!(check(&campaign, EligibilityInput { available_cents: Some(1), ..input(&usage) }).is_ok());
    }

    const ORIGIN: Origin<'static> = Origin { publisher_id: "pub-2", source_id: "google", sub_id: "ad-7" };

    /// An exclusive auction on Saturday 14:30 UTC of a lead from [`ORIGIN`], with `usage`.
    fn input(usage: &Usage) -> EligibilityInput<'_> {
        EligibilityInput {
            mode: SelectionMode::Exclusive,
            time_zone: chrono_tz::UTC,
            now_unix_ms: SAT_1430_UTC,
            usage,
            suppressed: false,
            buyer_paused: false,
            origin: ORIGIN,
            available_cents: None,
        }
    }

    #[test]
    fn source_rules_allow_and_deny_by_publisher_source_and_sub_id() {
        let rules = |allow: &[&str], deny: &[&str]| Sources {
            allow: allow.iter().map(|r| r.to_string()).collect(),
            deny: deny.iter().map(|r| r.to_string()).collect(),
        };
        let table: [(Sources, Result<(), Option<&str>>); 8] = [
            (rules(&[], &[]), Ok(())),
            (rules(&["pub-2"], &[]), Ok(())),
            (rules(&["pub-2/google"], &[]), Ok(())),
            (rules(&["pub-2/google/ad-7"], &[]), Ok(())),
            (rules(&["pub-1", "pub-2/bing"], &[]), Err(None)),
            (rules(&["pub-2/goo"], &[]), Err(None)),
            (rules(&["pub-2"], &["pub-2/google/ad-7"]), Err(Some("pub-2/google/ad-7"))),
            (rules(&[], &["pub-2/google/ad-8", "pub-2"]), Err(Some("pub-2"))),
        ];
        for (sources, expected) in table {
            assert_eq!(sources.refuses(ORIGIN), expected, "{sources:?}");
        }
        let mut campaign = campaign_with(Caps::default());
        campaign.sources = rules(&[], &["pub-2/google"]);
        let usage = Usage::default();
        let input = input(&usage);
        let refused = Ineligible::SourceRefused { denied_by: Some("pub-2/google".into()) };
        assert_eq!(check(&campaign, input), Err(refused.clone()));
        assert_eq!(
            serde_json::to_value(refused).unwrap(),
            serde_json::json!({"reason": "source_refused", "denied_by": "pub-2/google"})
        );
        for bad in ["", "pub-1/", "a/b/c/d", "pub 1", "/google"] {
            assert!(rules(&[bad], &[]).check().is_err(), "{bad:?}");
        }
        assert!(rules(&["pub-1", "pub-1/s", "pub-1/s/t"], &["x"]).check().is_ok());
    }

    fn campaign_with(caps: Caps) -> Campaign {
        Campaign {
            id: "c1".into(),
            buyer_id: "b1".into(),
            status: CampaignStatus::Active,
            tier: 1,
            exclusivity: Exclusivity::SharedAllowed,
            caps,
            schedule: Schedule::default(),
            sources: Sources::default(),
            paused_by_buyer: false,
            suppression_days: 30,
            max_bid_cents: None,
            target: crate::config::CampaignTarget::Wasm {
                plugin: "config-buyer".into(),
                config: serde_json::Value::Null,
                delivery: crate::config::Delivery::Pickup,
            },
        }
    }
}

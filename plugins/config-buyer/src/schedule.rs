//! Buying hours: days of the week and an hour range, in the buyer's own IANA time zone.

use chrono::{DateTime, Datelike, Timelike, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// When a campaign buys. A ping is in schedule when any window holds the local time of `now_unix_ms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA time zone name, e.g. `America/Chicago`; daylight saving time is applied.
    pub time_zone: String,
    /// The buying windows.
    pub windows: Vec<Window>,
}

/// Buying hours on some days of the week.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Local days of the week (`mon` ... `sun`).
    pub days: Vec<Day>,
    /// First local hour bought, 0–23, inclusive.
    pub start_hour: u8,
    /// Local hour buying stops, 1–24, exclusive. Below `start_hour` the window runs past midnight; its late hours
    /// still count on the day it started, its early hours on the next day.
    pub end_hour: u8,
}

/// A day of the week, written `mon` ... `sun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn of(weekday: Weekday) -> Day {
        match weekday {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

impl Schedule {
    /// Checks the time zone name and the hours.
    pub fn check(&self) -> Result<(), String> {
        self.zone()?;
        if self.windows.is_empty() {
            return Err("schedule has no windows; leave it out to buy at any time".to_owned());
        }
        for w in &self.windows {
            if w.start_hour > 23 || w.end_hour > 24 || w.start_hour == w.end_hour || w.days.is_empty() {
                return Err(format!(
                    "schedule window {:?} {}-{} needs days, a start hour 0-23 and a different end hour 1-24",
                    w.days, w.start_hour, w.end_hour
                ));
            }
        }
        Ok(())
    }

    fn zone(&self) -> Result<Tz, String> {
        self.time_zone.parse::<Tz>().map_err(|_| format!("unknown time zone {:?}", self.time_zone))
    }

    /// Whether the campaign buys at `now_unix_ms`; the error says why not, in the buyer's local time.
    pub fn admits(&self, now_unix_ms: i64) -> Result<(), String> {
        let zone = self.zone()?;
        let utc = DateTime::from_timestamp_millis(now_unix_ms)
            .ok_or_else(|| format!("time {now_unix_ms} ms is out of range"))?;
        let local = utc.with_timezone(&zone);
        let (today, yesterday, hour) = (Day::of(local.weekday()), Day::of(local.weekday().pred()), local.hour() as u8);
        let open = self.windows.iter().any(|w| {
            if w.start_hour < w.end_hour {
                w.days.contains(&today) && (w.start_hour..w.end_hour).contains(&hour)
            } else {
                (w.days.contains(&today) && hour >= w.start_hour) || (w.days.contains(&yesterday) && hour < w.end_hour)
            }
        });
        if open {
            Ok(())
        } else {
            Err(format!("closed at {:?} {:02}:{:02} {}", local.weekday(), local.hour(), local.minute(), self.time_zone))
        }
    }
}

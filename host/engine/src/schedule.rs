//! A campaign's buying hours: windows of days and minutes in the buyer's local time, written as buyers say them —
//! `mon-fri 08:30-17:45`, `sat 10:00-14:00`, `fri 20:00-06:00` (overnight: its early hours belong to the day it
//! opened), `sat-sun` (all day), `09:00-17:00` (every day). The campaign buys while any window is open; a schedule
//! without windows is always open. The older form `{"days", "from_hour", "to_hour"}` (one window of whole hours) is
//! still read; one whose hours are equal (never open) reads as the window `never`.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Timelike, Weekday};
use serde::{Deserialize, Serialize};

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
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
    /// The chrono weekday for this day.
    pub fn weekday(self) -> chrono::Weekday {
        match self {
            Day::Mon => chrono::Weekday::Mon,
            Day::Tue => chrono::Weekday::Tue,
            Day::Wed => chrono::Weekday::Wed,
            Day::Thu => chrono::Weekday::Thu,
            Day::Fri => chrono::Weekday::Fri,
            Day::Sat => chrono::Weekday::Sat,
            Day::Sun => chrono::Weekday::Sun,
        }
    }
}

/// The most windows a schedule may hold.
pub const MAX_WINDOWS: usize = 50;

/// Minutes in a day: a window's end may be `24:00`.
const DAY_MINUTES: u16 = 24 * 60;

/// When a campaign buys, in its buyer's time zone: while any window is open; always when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "ScheduleFields")]
pub struct Schedule {
    /// Absent or null: no windows (always open). Read through `ScheduleFields`; the attributes tell the schema so.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, example = json!(["mon-fri 08:30-17:45", "sat 10:00-14:00"]))]
    pub windows: Vec<Window>,
}

/// Days and a time range, in local time; `from_minute == to_minute` never opens (written `never`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The days it opens on, Monday first; empty means every day.
    pub days: Vec<Day>,
    /// Minute of the day it opens at (0–1439).
    pub from_minute: u16,
    /// Minute of the day it closes at, exclusive (1–1440); below `from_minute` it closes the next day.
    pub to_minute: u16,
}

/// Why a schedule or a window is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "window {window:?}: {reason} (expected days and times like \"mon-fri 08:30-17:45\", \"sat 10:00-14:00\", \
         \"sat-sun\" or \"09:00-17:00\")"
    )]
    Window { window: String, reason: String },
    #[error("a schedule holds at most {MAX_WINDOWS} windows, not {0}")]
    TooManyWindows(usize),
    #[error("schedule hours: from_hour 0–23, to_hour 1–24")]
    Hours,
    #[error("a schedule gives `windows` or the whole-hour `days`/`from_hour`/`to_hour`, not both")]
    BothForms,
}

impl Schedule {
    /// A schedule of the windows written in `windows`.
    pub fn parse(windows: &[&str]) -> Result<Schedule, ScheduleError> {
        if windows.len() > MAX_WINDOWS {
            return Err(ScheduleError::TooManyWindows(windows.len()));
        }
        Ok(Schedule { windows: windows.iter().map(|w| w.parse()).collect::<Result<_, _>>()? })
    }

    /// Whether the schedule is open at the local time `local`.
    pub fn is_open<T: Datelike + Timelike>(&self, local: &T) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|window| window.is_open(local))
    }
}

impl Window {
    /// The window that never opens.
    pub fn never() -> Self {
        Window { days: Vec::new(), from_minute: 0, to_minute: 0 }
    }

    /// Whether the window is open at the local time `local`.
    pub fn is_open<T: Datelike + Timelike>(&self, local: &T) -> bool {
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let weekday = local.weekday();
        let (from, to) = (self.from_minute, self.to_minute);
        if from < to {
            (from..to).contains(&minute) && self.opens_on(weekday)
        } else if from > to {
            // Overnight: the evening part counts for today, the early-morning part for the day the window opened.
            (minute >= from && self.opens_on(weekday)) || (minute < to && self.opens_on(weekday.pred()))
        } else {
            false
        }
    }

    fn opens_on(&self, weekday: Weekday) -> bool {
        self.days.is_empty() || self.days.iter().any(|day| day.weekday() == weekday)
    }
}

/// The days of the week, Monday first, with their names as windows write them.
const DAYS: [(Day, &str); 7] = [
    (Day::Mon, "mon"),
    (Day::Tue, "tue"),
    (Day::Wed, "wed"),
    (Day::Thu, "thu"),
    (Day::Fri, "fri"),
    (Day::Sat, "sat"),
    (Day::Sun, "sun"),
];

fn day_index(name: &str) -> Option<usize> {
    DAYS.iter().position(|(_, n)| name.eq_ignore_ascii_case(n))
}

/// `HH:MM` as minutes of the day (`24:00` is 1440).
fn minutes(text: &str) -> Option<u16> {
    let (hours, mins) = text.split_once(':')?;
    if hours.len() != 2 || mins.len() != 2 {
        return None;
    }
    let (hours, mins): (u16, u16) = (hours.parse().ok()?, mins.parse().ok()?);
    let total = hours * 60 + mins;
    (mins < 60 && total <= DAY_MINUTES).then_some(total)
}

/// Days like `mon-fri`, `sat,sun` or `mon-wed,fri` (a range may wrap: `fri-mon`), Monday first, once each.
fn days(text: &str) -> Result<Vec<Day>, String> {
    let mut on = [false; 7];
    for part in text.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (Some(first), Some(last)) = (day_index(first), day_index(last)) else {
            return Err(format!("{part:?} is not a day or a range of days (mon, tue, …, sun)"));
        };
        let mut day = first;
        loop {
            on[day] = true;
            if day == last {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(DAYS.iter().zip(on).filter(|(_, on)| *on).map(|((day, _), _)| *day).collect())
}

impl FromStr for Window {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refused = |reason: String| ScheduleError::Window { window: text.to_owned(), reason };
        if text.trim() == "never" {
            return Ok(Window::never());
        }
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days_part, times) = match parts.as_slice() {
            [one] if one.contains(':') => (None, Some(*one)),
            [one] => (Some(*one), None),
            [days, times] => (Some(*days), Some(*times)),
            _ => return Err(refused("expected days, a time range, or both".into())),
        };
        let days = days_part.map(days).transpose().map_err(refused)?.unwrap_or_default();
        let (from_minute, to_minute) = match times {
            None => (0, DAY_MINUTES),
            Some(times) => {
                let (from, to) =
                    times.split_once('-').ok_or_else(|| refused("expected a time range HH:MM-HH:MM".into()))?;
                let (Some(from), Some(to)) = (minutes(from), minutes(to)) else {
                    return Err(refused("times are HH:MM, 00:00 to 24:00".into()));
                };
                if from == DAY_MINUTES {
                    return Err(refused("a window opens at 23:59 at the latest".into()));
                }
                if from == to {
                    return Err(refused("it opens and closes at the same time".into()));
                }
                (from, to)
            }
        };
        // A week of whole days names no day.
        let days = if days.len() == 7 { Vec::new() } else { days };
        Ok(Window { days, from_minute, to_minute })
    }
}

impl fmt::Display for Window {
    /// The canonical form: days as ranges (`mon-fri,sun`), left out when every day; times left out when all day.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ranges: Vec<String> = Vec::new();
        let on: Vec<bool> = DAYS.iter().map(|(day, _)| self.days.contains(day)).collect();
        let mut i = 0;
        while i < 7 {
            if !on[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && on[i + 1] {
                i += 1;
            }
            ranges.push(if start == i { DAYS[i].1.to_owned() } else { format!("{}-{}", DAYS[start].1, DAYS[i].1) });
            i += 1;
        }
        let days = ranges.join(",");
        let all_day = self.from_minute == 0 && self.to_minute == DAY_MINUTES;
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        if self.from_minute == self.to_minute {
            return write!(f, "never");
        }
        match (days.is_empty(), all_day) {
            (true, true) => write!(f, "00:00-24:00"),
            (false, true) => write!(f, "{days}"),
            (true, false) => write!(f, "{}-{}", hhmm(self.from_minute), hhmm(self.to_minute)),
            (false, false) => write!(f, "{days} {}-{}", hhmm(self.from_minute), hhmm(self.to_minute)),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A schedule as written: `windows`, or the older single whole-hour window.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFields {
    windows: Option<Vec<Window>>,
    days: Option<Vec<Day>>,
    from_hour: Option<u8>,
    to_hour: Option<u8>,
}

impl TryFrom<ScheduleFields> for Schedule {
    type Error = ScheduleError;

    fn try_from(fields: ScheduleFields) -> Result<Self, Self::Error> {
        let whole_hours = fields.days.is_some() || fields.from_hour.is_some() || fields.to_hour.is_some();
        match (fields.windows, whole_hours) {
            (Some(_), true) => Err(ScheduleError::BothForms),
            (Some(windows), false) if windows.len() > MAX_WINDOWS => Err(ScheduleError::TooManyWindows(windows.len())),
            (Some(windows), false) => Ok(Schedule { windows }),
            (None, false) => Ok(Schedule::default()),
            (None, true) => {
                let (from, to) = (fields.from_hour.unwrap_or(0), fields.to_hour.unwrap_or(24));
                if from > 23 || to == 0 || to > 24 {
                    return Err(ScheduleError::Hours);
                }
                if from == to {
                    return Ok(Schedule { windows: vec![Window::never()] });
                }
                // Monday first, once each; every day is no day named.
                let named = fields.days.unwrap_or_default();
                let days: Vec<Day> = DAYS.iter().map(|(day, _)| *day).filter(|day| named.contains(day)).collect();
                let days = if days.len() == 7 { Vec::new() } else { days };
                let window = Window { days, from_minute: u16::from(from) * 60, to_minute: u16::from(to) * 60 };
                // The older form's default (every day, 0 to 24) is always open: no window.
                Ok(if window.days.is_empty() && from == 0 && to == 24 {
                    Schedule::default()
                } else {
                    Schedule { windows: vec![window] }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// 2026-03-13 was a Friday.
    fn at(day: u32, hour: u32, minute: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, day).and_then(|d| d.and_hms_opt(hour, minute, 0)).expect("a time")
    }

    #[test]
    fn windows_open_by_day_and_minute() {
        let schedule = Schedule::parse(&["mon-fri 08:30-17:45", "sat 10:00-14:00"]).expect("parses");
        let table = [
            (at(13, 8, 29), false),
            (at(13, 8, 30), true),
            (at(13, 17, 44), true),
            (at(13, 17, 45), false),
            (at(14, 9, 0), false),
            (at(14, 10, 0), true),
            (at(14, 13, 59), true),
            (at(15, 12, 0), false),
        ];
        for (local, open) in table {
            assert_eq!(schedule.is_open(&local), open, "{local}");
        }
        assert!(Schedule::default().is_open(&at(15, 3, 0)), "no windows: always");
    }

    #[test]
    fn an_overnight_window_counts_the_day_it_opened() {
        let schedule = Schedule::parse(&["fri 20:00-06:00"]).expect("parses");
        assert!(schedule.is_open(&at(13, 22, 0)));
        assert!(schedule.is_open(&at(14, 5, 59)), "Saturday 05:59 belongs to Friday night");
        assert!(!schedule.is_open(&at(14, 6, 0)));
        assert!(!schedule.is_open(&at(13, 5, 0)), "Friday 05:00 belongs to Thursday night");
    }

    #[test]
    fn windows_read_and_write_as_buyers_say_them() {
        for (written, canonical) in [
            ("mon-fri 08:30-17:45", "mon-fri 08:30-17:45"),
            ("SAT,sun", "sat-sun"),
            ("fri-mon 09:00-12:00", "mon,fri-sun 09:00-12:00"),
            ("mon-wed,fri 22:00-24:00", "mon-wed,fri 22:00-24:00"),
            ("09:00-17:00", "09:00-17:00"),
            ("mon-sun", "00:00-24:00"),
        ] {
            let window: Window = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(window.to_string(), canonical);
            assert_eq!(canonical.parse::<Window>(), Ok(window), "{canonical} reads back");
        }
        for bad in [
            "",
            "mon-fri 8:30-17:45",
            "someday",
            "mon 10:00",
            "mon 10:00-10:00",
            "mon 24:00-01:00",
            "mon 09:60-10:00",
            "mon 09:00-17:00 x",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn the_whole_hour_form_is_still_read_and_both_forms_at_once_are_not() {
        let old: Schedule = serde_json::from_str(r#"{"days": ["sat"], "from_hour": 9, "to_hour": 17}"#).expect("reads");
        assert_eq!(old, Schedule::parse(&["sat 09:00-17:00"]).expect("parses"));
        assert_eq!(serde_json::to_value(&old).expect("writes"), serde_json::json!({"windows": ["sat 09:00-17:00"]}));
        let always: Schedule = serde_json::from_str(r#"{"days": [], "from_hour": 0, "to_hour": 24}"#).expect("reads");
        assert_eq!(always, Schedule::default());
        for bad in
            [r#"{"windows": [], "from_hour": 9}"#, r#"{"from_hour": 24}"#, r#"{"to_hour": 0}"#, r#"{"hours": 3}"#]
        {
            assert!(serde_json::from_str::<Schedule>(bad).is_err(), "{bad}");
        }
        // Equal hours (accepted by the older form) never open, and read back as `never`.
        let never: Schedule = serde_json::from_str(r#"{"from_hour": 9, "to_hour": 9}"#).expect("reads");
        assert!(!never.is_open(&at(13, 9, 0)) && !never.is_open(&at(13, 3, 0)));
        let written = serde_json::to_value(&never).expect("writes");
        assert_eq!(written, serde_json::json!({"windows": ["never"]}));
        assert_eq!(serde_json::from_value::<Schedule>(written).expect("reads back"), never);
        // The older form's days in any order, repeated or all seven, read as the window its text says.
        let shuffled: Schedule =
            serde_json::from_str(r#"{"days": ["sun", "mon", "sun"], "from_hour": 8, "to_hour": 9}"#).expect("reads");
        assert_eq!(
            serde_json::to_value(&shuffled).expect("writes"),
            serde_json::json!({"windows": ["mon,sun 08:00-09:00"]})
        );
        let all: Schedule = serde_json::from_str(
            r#"{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from_hour": 8, "to_hour": 9}"#,
        )
        .expect("reads");
        assert_eq!(all, Schedule::parse(&["08:00-09:00"]).expect("parses"));
        let many = serde_json::json!({"windows": vec!["mon"; MAX_WINDOWS + 1]});
        assert!(serde_json::from_value::<Schedule>(many).is_err());
    }
}

//! Calendar arithmetic for plugins, which get the time only as `now_unix_ms` in their context and have no clock.
//!
//! Dates are proleptic Gregorian civil dates in UTC. The conversions are exact for every date a lead can carry
//! (years 0000–9999) and never panic on bad input.

/// A calendar date (proleptic Gregorian), as in an ISO 8601 `YYYY-MM-DD` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// The year, e.g. 1984.
    pub year: i32,
    /// The month, 1–12.
    pub month: u8,
    /// The day of the month, 1–31.
    pub day: u8,
}

const MS_PER_DAY: i64 = 86_400_000;

impl CivilDate {
    /// Parses a strict ISO 8601 calendar date, `YYYY-MM-DD`: four-digit year, two-digit month and day, and a day that
    /// exists in that month (29 February only in leap years). Anything else is `None`.
    pub fn parse_iso(text: &str) -> Option<CivilDate> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year = digits(&bytes[0..4])?;
        let month = digits(&bytes[5..7])?;
        let day = digits(&bytes[8..10])?;
        let month = u8::try_from(month).ok()?;
        let day = u8::try_from(day).ok()?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year as i32, month) {
            return None;
        }
        Some(CivilDate { year: year as i32, month, day })
    }

    /// The UTC calendar date of an instant given in milliseconds since the Unix epoch (negative is before 1970).
    pub fn from_unix_ms(unix_ms: i64) -> CivilDate {
        civil_from_days(unix_ms.div_euclid(MS_PER_DAY))
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(self)
    }
}

/// The age in whole years, on the UTC date of `now_unix_ms`, of someone born on `date_of_birth` (`YYYY-MM-DD`).
///
/// A birthday counts from its day on: the age goes up on the anniversary date itself, and someone born on 29 February
/// turns a year older on 1 March in a common year. `None` when the date is malformed, lies after `now_unix_ms`, or
/// gives an age above 255.
pub fn age_on(date_of_birth: &str, now_unix_ms: i64) -> Option<u8> {
    let born = CivilDate::parse_iso(date_of_birth)?;
    let today = CivilDate::from_unix_ms(now_unix_ms);
    if born > today {
        return None;
    }
    let birthday_passed = (today.month, today.day) >= (born.month, born.day);
    let years = today.year - born.year - i32::from(!birthday_passed);
    u8::try_from(years).ok()
}

/// Whether `year` has a 29 February.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// How many days `month` (1–12) of `year` has; 0 for a month outside 1–12.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

// Howard Hinnant's `days_from_civil` / `civil_from_days`: eras of 400 years (146,097 days) starting on 1 March, so
// the leap day falls at the end of the shifted year.
fn days_from_civil(date: CivilDate) -> i64 {
    let year = i64::from(date.year) - i64::from(date.month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(date.month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> CivilDate {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // The year fits an i32 for any i64 millisecond instant (|days| < 1.1e11 → |year| < 3e8).
    CivilDate { year: year as i32, month: month as u8, day: day as u8 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(date: &str) -> i64 {
        CivilDate::parse_iso(date).map(|d| d.days_since_epoch() * MS_PER_DAY).unwrap_or_else(|| panic!("{date}"))
    }

    #[test]
    fn the_epoch_is_day_zero() {
        assert_eq!(CivilDate::from_unix_ms(0), CivilDate { year: 1970, month: 1, day: 1 });
        assert_eq!(CivilDate::parse_iso("1970-01-01").map(CivilDate::days_since_epoch), Some(0));
    }

    #[test]
    fn known_instants_map_to_their_utc_dates() {
        // 2024-02-29T23:59:59.999Z, the next millisecond, and an instant before the epoch.
        assert_eq!(CivilDate::from_unix_ms(1_709_251_199_999), CivilDate { year: 2024, month: 2, day: 29 });
        assert_eq!(CivilDate::from_unix_ms(1_709_251_200_000), CivilDate { year: 2024, month: 3, day: 1 });
        assert_eq!(CivilDate::from_unix_ms(-1), CivilDate { year: 1969, month: 12, day: 31 });
        assert_eq!(CivilDate::from_unix_ms(951_782_400_000), CivilDate { year: 2000, month: 2, day: 29 });
    }

    #[test]
    fn every_day_from_1900_to_2100_round_trips() {
        let start = ms("1900-01-01") / MS_PER_DAY;
        let end = ms("2100-12-31") / MS_PER_DAY;
        let mut previous = CivilDate::from_unix_ms((start - 1) * MS_PER_DAY);
        for day in start..=end {
            let date = CivilDate::from_unix_ms(day * MS_PER_DAY + MS_PER_DAY / 2);
            assert_eq!(date.days_since_epoch(), day);
            assert!(date > previous, "{date:?} after {previous:?}");
            previous = date;
        }
    }

    #[test]
    fn parse_iso_accepts_only_real_dates_in_strict_form() {
        assert_eq!(CivilDate::parse_iso("1984-07-09"), Some(CivilDate { year: 1984, month: 7, day: 9 }));
        assert!(CivilDate::parse_iso("2000-02-29").is_some());
        for bad in [
            "",
            "1984-7-9",
            "1984/07/09",
            "84-07-09",
            "1984-13-01",
            "1984-00-10",
            "1984-04-31",
            "1900-02-29",
            "2023-02-29",
            "1984-07-09T00:00",
            "+984-07-09",
            "1984-07-0a",
            "１９８４-07-09",
        ] {
            assert_eq!(CivilDate::parse_iso(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn age_on_counts_whole_years_up_to_the_day() {
        let cases = [
            ("1990-06-15", "2024-06-14", Some(33)),
            ("1990-06-15", "2024-06-15", Some(34)),
            ("1990-06-15", "2024-12-31", Some(34)),
            ("2000-02-29", "2023-02-28", Some(22)),
            ("2000-02-29", "2023-03-01", Some(23)),
            ("2000-02-29", "2024-02-29", Some(24)),
            ("2024-05-01", "2024-05-01", Some(0)),
            ("2024-05-02", "2024-05-01", None),
            ("1700-01-01", "2024-05-01", None),
            ("1990-02-30", "2024-05-01", None),
            ("not a date", "2024-05-01", None),
        ];
        for (dob, today, expected) in cases {
            assert_eq!(age_on(dob, ms(today)), expected, "born {dob}, on {today}");
        }
    }

    #[test]
    fn age_on_uses_the_utc_date_of_the_instant() {
        // One millisecond before the 40th birthday (UTC) and exactly at it.
        let birthday = ms("2024-03-10");
        assert_eq!(age_on("1984-03-10", birthday - 1), Some(39));
        assert_eq!(age_on("1984-03-10", birthday), Some(40));
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for instant in [i64::MIN, i64::MIN + 1, -1, i64::MAX] {
            let _ = CivilDate::from_unix_ms(instant);
            let _ = age_on("1990-01-01", instant);
        }
    }
}

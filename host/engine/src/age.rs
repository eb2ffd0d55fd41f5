//! The consumer's age: the range the exchange accepts, and the age in whole years on a day, from a date of birth.
//! Validation, the verticals' minimum ages and the PII guard (which knows a lead's birth year) all read it here.

use chrono::{Datelike, NaiveDate};

/// Youngest accepted consumer.
pub const MIN_AGE: u8 = 18;
/// Oldest accepted consumer.
pub const MAX_AGE: u8 = 120;

/// Parses an ISO date of birth.
pub fn parse_date_of_birth(date_of_birth: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(date_of_birth.trim(), "%Y-%m-%d").map_err(|_| "must be a date, YYYY-MM-DD".to_owned())
}

/// Age in whole years at `now_unix_ms` (UTC) of someone born on `date_of_birth`.
pub fn age_on(date_of_birth: &str, now_unix_ms: i64) -> Result<i64, String> {
    let born = parse_date_of_birth(date_of_birth)?;
    let today = chrono::DateTime::from_timestamp_millis(now_unix_ms).ok_or("the clock is out of range")?.date_naive();
    if born > today {
        return Err("is in the future".to_owned());
    }
    let mut age = i64::from(today.year() - born.year());
    if (today.month(), today.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    Ok(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_years_up_to_the_birthday() {
        // 2026-03-14T12:00:00Z
        let now = 1_773_489_600_000;
        assert_eq!(age_on("1968-03-14", now), Ok(58));
        assert_eq!(age_on("1968-03-15", now), Ok(57));
        assert!(age_on("2030-01-01", now).is_err());
        assert!(age_on("14/03/1968", now).is_err());
    }
}

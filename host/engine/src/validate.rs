//! Lead validation: every problem reported at once, each naming the field it is about.
//!
//! Every lead needs the consumer's first and last name, phone, email, state, ZIP and date of birth; its vertical
//! ([`super::vertical`]) says what else, and the type of each extra it names.
//!
//! Valid values: a state is one of the 50 USPS state codes or `DC`; a ZIP is five digits; a phone is E.164
//! (`+1` and ten digits) or ten digits (spaces, dots, dashes and parentheses allowed), area code not starting with 0
//! or 1, and is normalised to E.164; an email has one `@`, a non-empty local part and a dotted domain, and is
//! normalised to lower case; a date of birth is `YYYY-MM-DD` (trimmed) giving an age of 18 to 120 on the day of the
//! auction.

use pingpost_model::{Lead, US_STATES};

use super::age::{MAX_AGE, MIN_AGE, age_on};
use super::field_error::FieldError;
use super::identity::ConsumerKeys;
use super::vertical::{VerticalRules, Verticals};

/// A lead that passed validation, normalised, with what the engine derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLead {
    /// The lead with phone in E.164 and email in lower case.
    pub lead: Lead,
    /// Age in whole years on the day of the auction (UTC).
    pub age: u8,
    /// Hashes that identify the consumer for duplicate and suppression checks.
    pub keys: ConsumerKeys,
}

/// Validates `lead` as of `now_unix_ms` against the exchange's `verticals`; `publisher_known` says whether its
/// publisher id exists.
pub fn validate_lead(
    lead: &Lead,
    now_unix_ms: i64,
    publisher_known: bool,
    verticals: &Verticals,
) -> Result<ValidLead, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = lead.clone();
    let vertical = check_origin(&lead.publisher_id, publisher_known, &lead.vertical, verticals, &mut errors);

    let consumer = &lead.consumer;
    for (field, value) in [("consumer.first_name", &consumer.first_name), ("consumer.last_name", &consumer.last_name)] {
        if value.trim().is_empty() {
            errors.push(FieldError::new(field, "is required"));
        }
    }
    if !US_STATES.contains(&consumer.state.as_str()) {
        errors.push(FieldError::new("consumer.state", "must be a two-letter USPS code of a US state or DC"));
    }
    if !is_zip5(&consumer.zip5) {
        errors.push(FieldError::new("consumer.zip5", "must be five digits"));
    }
    match normalize_phone(&consumer.phone) {
        Ok(phone) => out.consumer.phone = phone,
        Err(reason) => errors.push(FieldError::new("consumer.phone", reason)),
    }
    match normalize_email(&consumer.email) {
        Ok(email) => out.consumer.email = email,
        Err(reason) => errors.push(FieldError::new("consumer.email", reason)),
    }
    // Plugins read the date as the guest SDK parses it: strictly `YYYY-MM-DD`, so surrounding space goes here.
    out.consumer.date_of_birth = consumer.date_of_birth.trim().to_owned();
    let age = match age_on(&consumer.date_of_birth, now_unix_ms) {
        Ok(age) if (MIN_AGE as i64..=MAX_AGE as i64).contains(&age) => Some(age as u8),
        Ok(age) => {
            errors.push(FieldError::new(
                "consumer.date_of_birth",
                format!("gives an age of {age}; must be {MIN_AGE} to {MAX_AGE}"),
            ));
            None
        }
        Err(reason) => {
            errors.push(FieldError::new("consumer.date_of_birth", reason));
            None
        }
    };

    if let Some(vertical) = vertical {
        vertical.check_lead(lead, age, &mut errors);
    }

    match age {
        Some(age) if errors.is_empty() => {
            let keys = ConsumerKeys::of(&out.consumer.phone, &out.consumer.email);
            Ok(ValidLead { lead: out, age, keys })
        }
        _ => Err(errors),
    }
}

/// Checks a lead's (or a PII-free ping's) publisher and vertical, adding to `errors`; the vertical's rules when it
/// is one the exchange knows.
pub(crate) fn check_origin<'v>(
    publisher_id: &str,
    publisher_known: bool,
    vertical: &str,
    verticals: &'v Verticals,
    errors: &mut Vec<FieldError>,
) -> Option<&'v VerticalRules> {
    if publisher_id.trim().is_empty() {
        errors.push(FieldError::new("publisher_id", "is required"));
    } else if !publisher_known {
        errors.push(FieldError::new("publisher_id", format!("unknown publisher {publisher_id:?}")));
    }
    let rules = verticals.get(vertical);
    if rules.is_none() {
        let known: Vec<&str> = verticals.names().collect();
        errors.push(FieldError::new("vertical", format!("unknown vertical {vertical:?}; known: {}", known.join(", "))));
    }
    rules
}

fn is_zip5(zip: &str) -> bool {
    zip.len() == 5 && zip.bytes().all(|b| b.is_ascii_digit())
}

/// The keys the exchange recognises `lead`'s consumer by (its duplicate and suppression records), when its phone and
/// email are valid: the same as [`validate_lead`] gives a valid lead.
pub fn consumer_keys(lead: &Lead) -> Option<ConsumerKeys> {
    let phone = normalize_phone(&lead.consumer.phone).ok()?;
    let email = normalize_email(&lead.consumer.email).ok()?;
    Some(ConsumerKeys::of(&phone, &email))
}

/// Normalises a US phone number to E.164 (`+1XXXXXXXXXX`), or says why it is not one.
pub fn normalize_phone(phone: &str) -> Result<String, String> {
    let trimmed = phone.trim();
    if trimmed.is_empty() {
        return Err("is required".to_owned());
    }
    let (has_plus, body) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    if body.chars().any(|ch| !(ch.is_ascii_digit() || matches!(ch, ' ' | '-' | '.' | '(' | ')'))) {
        return Err("may hold only digits, spaces, dots, dashes and parentheses".to_owned());
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let national = match (has_plus, digits.len()) {
        (true, 11) if digits.starts_with('1') => &digits[1..],
        (false, 10) => &digits[..],
        _ => return Err("must be E.164 (+1 and ten digits) or ten digits".to_owned()),
    };
    if national.starts_with('0') || national.starts_with('1') {
        return Err("area code must not start with 0 or 1".to_owned());
    }
    Ok(format!("+1{national}"))
}

/// Normalises an email address (trimmed, lower case), or says why it does not look like one.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_ascii_lowercase();
    if email.is_empty() {
        return Err("is required".to_owned());
    }
    if email.len() > 254 || email.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err("must be an address without spaces, at most 254 characters".to_owned());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must contain @".to_owned());
    };
    if local.is_empty() || domain.contains('@') {
        return Err("must be local@domain with exactly one @".to_owned());
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err("domain must be dotted, like example.com".to_owned());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_forms_normalise_to_e164() {
        for input in ["+13055550142", "3055550142", "(305) 555-0142", "305.555.0142", " 305 555 0142 "] {
            assert_eq!(normalize_phone(input), Ok("+13055550142".to_owned()), "{input}");
        }
    }

    #[test]
    fn phones_that_are_not_us_numbers_are_refused() {
        for input in ["", "555-0142", "+443055550142", "13055550142", "1305555014x", "0305550142", "+11305550142"] {
            assert!(normalize_phone(input).is_err(), "{input}");
        }
    }

    #[test]
    fn emails_are_lowercased_and_shape_checked() {
        assert_eq!(normalize_email(" Jane.Doe@Example.COM "), Ok("jane.doe@example.com".to_owned()));
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@example",
            "jane@@example.com",
            "ja ne@example.com",
            "jane@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    fn lead(vertical: &str) -> Lead {
        use pingpost_model::{Consent, Consumer};
        Lead {
            vertical: vertical.into(),
            publisher_id: "pub-1".into(),
            consumer: Consumer {
                first_name: "Ada".into(),
                last_name: "Byron".into(),
                phone: "3055550142".into(),
                email: "ada@example.com".into(),
                state: "FL".into(),
                zip5: "33131".into(),
                date_of_birth: "1960-01-01".into(),
                ..Consumer::default()
            },
            consent: Consent {
                tcpa_text: Some("yes".into()),
                jornaya_leadid: Some("J-1".into()),
                ..Consent::default()
            },
            ..Lead::default()
        }
    }

    fn error_fields(lead: &Lead) -> Vec<String> {
        match validate_lead(lead, 1_773_489_600_000, true, &Verticals::default()) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn required_fields_follow_the_vertical_table() {
        assert_eq!(error_fields(&lead("health-insurance")), Vec::<String>::new());
        assert_eq!(error_fields(&lead("medicare")), Vec::<String>::new(), "66 years old");
        assert_eq!(error_fields(&lead("auto-insurance")), ["consumer.street", "consumer.city"]);
        assert_eq!(error_fields(&lead("mortgage")), ["consumer.street", "consumer.city", "extra.loan_purpose"]);
        let mut solar = lead("solar");
        solar.consumer.street = "1 Sun St".into();
        solar.consumer.city = "Tampa".into();
        solar.extra.insert("homeowner".into(), "true".into());
        assert_eq!(error_fields(&solar), Vec::<String>::new());
        assert_eq!(error_fields(&lead("pet-insurance")), ["vertical"]);
    }

    #[test]
    fn a_valid_lead_comes_back_normalised_with_its_age_and_hashed_keys() {
        let mut raw = lead("health-insurance");
        raw.consumer.email = "Ada@Example.COM".into();
        let valid = validate_lead(&raw, 1_773_489_600_000, true, &Verticals::default()).expect("valid");
        assert_eq!(
            (valid.lead.consumer.phone.as_str(), valid.lead.consumer.email.as_str()),
            ("+13055550142", "ada@example.com")
        );
        assert_eq!(valid.age, 66);
        assert_eq!(valid.keys, ConsumerKeys::of("+13055550142", "ada@example.com"));
        assert_eq!(consumer_keys(&raw), Some(valid.keys), "the same keys from the raw lead");
        raw.consumer.phone = "not a phone".into();
        assert_eq!(consumer_keys(&raw), None);
    }
}

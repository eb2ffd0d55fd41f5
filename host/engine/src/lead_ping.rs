//! A PII-free two-step ping: the validation of the body a publisher pings with before it hands over the lead
//! ([`LeadPing`], a model type), and the check that the lead it posts later is the consumer it pinged
//! ([`Pinged::mismatches`]).
//!
//! The body says what a ping is made of and nothing that identifies the consumer: vertical, state, ZIP (five digits
//! or three), age or year of birth, gender, consent evidence, source, sub id and extras. It may carry the SHA-256 of
//! the consumer's normalised phone and email, so duplicates and buyers' suppression are checked before any buyer is
//! pinged; the normalisation is the exchange's own (see [`super::validate`]): the phone in E.164 (`+1` and ten
//! digits: `+13055550142`), the email trimmed and in lower case, each hashed as UTF-8 and written as 64 lower-case
//! hex digits.

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use super::age::{MAX_AGE, MIN_AGE, parse_date_of_birth};
use super::field_error::FieldError;
use super::identity::ConsumerKeys;
use super::validate::{ValidLead, check_origin};
use super::vertical::Verticals;
use pingpost_model::{Gender, PingRequest, US_STATES};
pub use pingpost_model::{LeadPing, PingConsent};

/// What a PII-free ping said about its consumer, kept with its bids: the lead posted for it must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinged {
    pub vertical: String,
    pub state: String,
    pub zip3: String,
    /// The age buyers were told.
    pub age: u8,
    /// The year of birth, when the ping gave it instead of the age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    pub trusted_form: bool,
    pub jornaya: bool,
    pub tcpa_text: bool,
    /// The consumer's keys, when the ping carried them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<ConsumerKeys>,
    /// The rest of what buyers may have been told (the redactor decides what of it they are): the posted lead must
    /// say the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub source_id: String,
    #[serde(default)]
    pub sub_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_form_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jornaya_leadid: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// A PII-free ping that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLeadPing {
    /// What the publisher's redactor is given.
    pub request: PingRequest,
    /// What the posted lead must match.
    pub pinged: Pinged,
}

/// Validates `ping` as of `now_unix_ms` against the exchange's `verticals`; `publisher_known` says whether its
/// publisher id exists. Every problem is reported at once, each naming its field.
pub fn validate_lead_ping(
    ping: &LeadPing,
    now_unix_ms: i64,
    publisher_known: bool,
    verticals: &Verticals,
) -> Result<ValidLeadPing, Vec<FieldError>> {
    let mut errors = Vec::new();
    let rules = check_origin(&ping.publisher_id, publisher_known, &ping.vertical, verticals, &mut errors);
    if !US_STATES.contains(&ping.state.as_str()) {
        errors.push(FieldError::new("state", "must be a two-letter USPS code of a US state or DC"));
    }
    let zip3 = zip3_of(ping, &mut errors);
    let age = age_of(ping, now_unix_ms, &mut errors);
    let keys = keys_of(ping, &mut errors);
    if let (Some(rules), Some(age)) = (rules, age) {
        rules.check_lead_ping(ping, age, &mut errors);
    }
    let (Some(zip3), Some(age), true) = (zip3, age, errors.is_empty()) else {
        return Err(errors);
    };
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let request = PingRequest {
        vertical: ping.vertical.clone(),
        publisher_id: ping.publisher_id.clone(),
        source_id: ping.source_id.clone(),
        sub_id: ping.sub_id.clone(),
        state: ping.state.clone(),
        zip: ping.zip5.clone().unwrap_or_else(|| zip3.clone()),
        age,
        gender: ping.gender,
        trusted_form_url: ping.consent.trusted_form_url.clone(),
        jornaya_leadid: ping.consent.jornaya_leadid.clone(),
        tcpa_text: ping.consent.tcpa_text,
        extra: ping.extra.clone(),
    };
    let pinged = Pinged {
        vertical: ping.vertical.clone(),
        state: ping.state.clone(),
        zip3,
        age,
        birth_year: ping.birth_year,
        trusted_form: present(&ping.consent.trusted_form_url),
        jornaya: present(&ping.consent.jornaya_leadid),
        tcpa_text: ping.consent.tcpa_text,
        keys,
        gender: ping.gender,
        source_id: ping.source_id.clone(),
        sub_id: ping.sub_id.clone(),
        trusted_form_url: ping.consent.trusted_form_url.as_deref().map(str::trim).map(str::to_owned),
        jornaya_leadid: ping.consent.jornaya_leadid.as_deref().map(str::trim).map(str::to_owned),
        extra: ping.extra.clone(),
    };
    Ok(ValidLeadPing { request, pinged })
}

/// The ZIP3 of the ping's `zip5` or `zip3` (both may be given when they agree).
fn zip3_of(ping: &LeadPing, errors: &mut Vec<FieldError>) -> Option<String> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match (&ping.zip5, &ping.zip3) {
        (None, None) => errors.push(FieldError::new("zip5", "zip5 or zip3 is required")),
        (Some(zip5), _) if !digits(zip5, 5) => errors.push(FieldError::new("zip5", "must be five digits")),
        (_, Some(zip3)) if !digits(zip3, 3) => errors.push(FieldError::new("zip3", "must be three digits")),
        (Some(zip5), Some(zip3)) if !zip5.starts_with(zip3.as_str()) => {
            errors.push(FieldError::new("zip3", "is not the first three digits of zip5"))
        }
        (Some(zip5), _) => return Some(zip5[..3].to_owned()),
        (None, Some(zip3)) => return Some(zip3.clone()),
    }
    None
}

/// The age buyers are told: the ping's `age`, or from its `birth_year` the lower of the two ages it can mean.
fn age_of(ping: &LeadPing, now_unix_ms: i64, errors: &mut Vec<FieldError>) -> Option<u8> {
    let range = i64::from(MIN_AGE)..=i64::from(MAX_AGE);
    let age = match (ping.age, ping.birth_year) {
        (None, None) => {
            errors.push(FieldError::new("age", "age or birth_year is required"));
            return None;
        }
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("birth_year", "give age or birth_year, not both"));
            return None;
        }
        (Some(age), None) => i64::from(age),
        (None, Some(year)) => {
            let this_year = chrono::DateTime::from_timestamp_millis(now_unix_ms).map_or(0, |t| t.year());
            i64::from(this_year) - i64::from(year) - 1
        }
    };
    if !range.contains(&age) {
        let field = if ping.age.is_some() { "age" } else { "birth_year" };
        errors.push(FieldError::new(field, format!("gives an age of {age}; must be {MIN_AGE} to {MAX_AGE}")));
        return None;
    }
    u8::try_from(age).ok()
}

/// The consumer's keys from the ping's hashes: both or neither, each 64 hex digits.
fn keys_of(ping: &LeadPing, errors: &mut Vec<FieldError>) -> Option<ConsumerKeys> {
    let hash = |field: &str, value: &str, errors: &mut Vec<FieldError>| {
        let ok = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            errors.push(FieldError::new(field, "must be a SHA-256 in hex: 64 hex digits"));
        }
        ok.then(|| value.to_ascii_lowercase())
    };
    let phone = ping.phone_sha256.as_deref().map(|value| hash("phone_sha256", value, errors));
    let email = ping.email_sha256.as_deref().map(|value| hash("email_sha256", value, errors));
    match (phone, email) {
        (None, None) => None,
        (Some(phone), Some(email)) => Some(ConsumerKeys { phone_sha256: phone?, email_sha256: email? }),
        (Some(_), None) => {
            errors.push(FieldError::new("email_sha256", "is required with phone_sha256"));
            None
        }
        (None, Some(_)) => {
            errors.push(FieldError::new("phone_sha256", "is required with email_sha256"));
            None
        }
    }
}

impl Pinged {
    /// Where the posted lead (validated) is not the consumer pinged: each field named, in the post body's terms
    /// (`lead.consumer.state`), saying what was pinged but never repeating the lead's value (it may be PII).
    pub fn mismatches(&self, posted: &ValidLead) -> Vec<FieldError> {
        let lead = &posted.lead;
        let c = &lead.consumer;
        let mut errors = Vec::new();
        let mut differs = |field: &str, same: bool, pinged: String| {
            if !same {
                errors.push(FieldError::new(field, format!("is not what was pinged ({pinged})")));
            }
        };
        differs("lead.vertical", lead.vertical == self.vertical, format!("vertical {:?}", self.vertical));
        differs("lead.consumer.state", c.state == self.state, format!("state {}", self.state));
        differs("lead.consumer.zip5", c.zip5.starts_with(self.zip3.as_str()), format!("ZIP3 {}", self.zip3));
        match self.birth_year {
            Some(year) => {
                let born = parse_date_of_birth(&c.date_of_birth).map(|d| d.year()).ok();
                differs("lead.consumer.date_of_birth", born == Some(i32::from(year)), format!("born in {year}"));
            }
            None => differs("lead.consumer.date_of_birth", posted.age == self.age, format!("age {}", self.age)),
        }
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let consent = &lead.consent;
        // The certificate and LeadiD must be the ones pinged (which implies present); TCPA consent present.
        differs(
            "lead.consent.tcpa_text",
            !self.tcpa_text || present(&consent.tcpa_text),
            "evidence present".to_owned(),
        );
        let same_id = |pinged: &Option<String>, posted: &Option<String>| match pinged.as_deref() {
            Some(id) if !id.is_empty() => posted.as_deref().map(str::trim) == Some(id),
            _ => true,
        };
        let url_same = same_id(&self.trusted_form_url, &consent.trusted_form_url);
        differs("lead.consent.trusted_form_url", url_same, "the certificate pinged".to_owned());
        let leadid_same = same_id(&self.jornaya_leadid, &consent.jornaya_leadid);
        differs("lead.consent.jornaya_leadid", leadid_same, "the LeadiD pinged".to_owned());
        if let Some(gender) = self.gender {
            differs("lead.consumer.gender", c.gender == Some(gender), "the gender pinged".to_owned());
        }
        differs("lead.source_id", lead.source_id == self.source_id, format!("source {:?}", self.source_id));
        differs("lead.sub_id", lead.sub_id == self.sub_id, format!("sub id {:?}", self.sub_id));
        for (key, value) in &self.extra {
            // Named by key only: an extra's value is the publisher's and may be personal.
            differs(&format!("lead.extra.{key}"), lead.extra.get(key) == Some(value), format!("extra {key:?}"));
        }
        if let Some(keys) = &self.keys {
            differs("lead.consumer.phone", posted.keys.phone_sha256 == keys.phone_sha256, "phone_sha256".to_owned());
            differs("lead.consumer.email", posted.keys.email_sha256 == keys.email_sha256, "email_sha256".to_owned());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_lead;
    use pingpost_model::{Consent, Consumer, Lead};

    /// 2026-11-25 15:00 UTC.
    const NOW: i64 = 1_795_618_800_000;

    fn verticals() -> Verticals {
        Verticals::new(&[]).expect("the built-in verticals")
    }

    fn ping() -> LeadPing {
        LeadPing {
            vertical: "health-insurance".into(),
            publisher_id: "pub-1".into(),
            state: "FL".into(),
            zip3: Some("331".into()),
            age: Some(58),
            consent: PingConsent {
                trusted_form_url: Some("https://cert.trustedform.com/abc".into()),
                tcpa_text: true,
                ..PingConsent::default()
            },
            ..LeadPing::default()
        }
    }

    fn lead() -> Lead {
        Lead {
            vertical: "health-insurance".into(),
            publisher_id: "pub-1".into(),
            consumer: Consumer {
                first_name: "Maria".into(),
                last_name: "Lopez".into(),
                phone: "(305) 555-0142".into(),
                email: " Maria@Example.com".into(),
                state: "FL".into(),
                zip5: "33139".into(),
                date_of_birth: "1968-04-02".into(),
                ..Consumer::default()
            },
            consent: Consent {
                trusted_form_url: Some("https://cert.trustedform.com/abc".into()),
                tcpa_text: Some("I agree".into()),
                ..Consent::default()
            },
            ..Lead::default()
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    fn invalid(ping: LeadPing) -> Vec<String> {
        fields(validate_lead_ping(&ping, NOW, true, &verticals()).expect_err("invalid"))
    }

    fn mismatches(ping: LeadPing, lead: Lead) -> Vec<String> {
        let pinged = validate_lead_ping(&ping, NOW, true, &verticals()).expect("a valid ping").pinged;
        fields(pinged.mismatches(&validate_lead(&lead, NOW, true, &verticals()).expect("a valid lead")))
    }

    #[test]
    fn a_valid_ping_gives_the_redactor_its_request_and_keeps_what_the_post_must_match() {
        let valid = validate_lead_ping(&ping(), NOW, true, &verticals()).expect("valid");
        assert_eq!((valid.request.zip.as_str(), valid.request.age), ("331", 58));
        assert_eq!((valid.pinged.zip3.as_str(), valid.pinged.age, valid.pinged.keys.as_ref()), ("331", 58, None));
        let five = LeadPing { zip5: Some("33139".into()), zip3: None, ..ping() };
        assert_eq!(validate_lead_ping(&five, NOW, true, &verticals()).expect("valid").pinged.zip3, "331");
    }

    #[test]
    fn every_problem_of_a_ping_is_named_at_once() {
        let bad = LeadPing {
            publisher_id: String::new(),
            vertical: "dentistry".into(),
            state: "fl".into(),
            zip3: Some("33".into()),
            age: Some(12),
            phone_sha256: Some("abc".into()),
            email_sha256: Some("e".repeat(64)),
            ..ping()
        };
        assert_eq!(invalid(bad), ["publisher_id", "vertical", "state", "zip3", "age", "phone_sha256"]);
        assert_eq!(invalid(LeadPing { zip3: None, ..ping() }), ["zip5"]);
        assert_eq!(invalid(LeadPing { zip5: Some("34101".into()), ..ping() }), ["zip3"]);
        assert_eq!(invalid(LeadPing { age: None, ..ping() }), ["age"]);
        assert_eq!(invalid(LeadPing { birth_year: Some(1968), ..ping() }), ["birth_year"]);
        assert_eq!(invalid(LeadPing { email_sha256: Some("e".repeat(64)), ..ping() }), ["phone_sha256"]);
        // Medicare is for 64 and over.
        assert_eq!(invalid(LeadPing { vertical: "medicare".into(), ..ping() }), ["age"]);
    }

    #[test]
    fn a_year_of_birth_tells_buyers_the_lower_age_and_the_post_must_match_the_year() {
        let by_year = LeadPing { age: None, birth_year: Some(1968), ..ping() };
        let valid = validate_lead_ping(&by_year, NOW, true, &verticals()).expect("valid");
        assert_eq!(valid.pinged.age, 57, "born in 1968, in 2026: 57 or 58");
        assert_eq!(mismatches(by_year.clone(), lead()), Vec::<String>::new());
        let mut other_year = lead();
        other_year.consumer.date_of_birth = "1969-01-02".into();
        assert_eq!(mismatches(by_year, other_year), ["lead.consumer.date_of_birth"]);
    }

    #[test]
    fn the_posted_lead_must_be_the_consumer_pinged() {
        assert_eq!(mismatches(ping(), lead()), Vec::<String>::new());
        let mut moved = lead();
        moved.consumer.state = "GA".into();
        moved.consumer.zip5 = "30301".into();
        moved.consumer.date_of_birth = "1990-01-01".into();
        let with_jornaya =
            LeadPing { consent: PingConsent { jornaya_leadid: Some("LEADID-1".into()), ..ping().consent }, ..ping() };
        assert_eq!(
            mismatches(with_jornaya, moved),
            ["lead.consumer.state", "lead.consumer.zip5", "lead.consumer.date_of_birth", "lead.consent.jornaya_leadid"]
        );
        // Hashes of the normalised phone and email: the lead's own spelling does not matter.
        let keys = ConsumerKeys::of("+13055550142", "maria@example.com");
        let hashed = LeadPing {
            phone_sha256: Some(keys.phone_sha256.to_ascii_uppercase()),
            email_sha256: Some(keys.email_sha256.clone()),
            ..ping()
        };
        assert_eq!(mismatches(hashed.clone(), lead()), Vec::<String>::new());
        let mut other = lead();
        other.consumer.phone = "3055550199".into();
        assert_eq!(mismatches(hashed, other), ["lead.consumer.phone"]);
    }

    #[test]
    fn whatever_else_buyers_were_told_must_be_what_the_lead_says() {
        let told = LeadPing {
            gender: Some(Gender::Female),
            source_id: "fb".into(),
            sub_id: "ad-7".into(),
            extra: [("household_size".to_owned(), "2".to_owned())].into_iter().collect(),
            ..ping()
        };
        let mut same = lead();
        same.consumer.gender = Some(Gender::Female);
        same.source_id = "fb".into();
        same.sub_id = "ad-7".into();
        same.extra.insert("household_size".into(), "2".into());
        assert_eq!(mismatches(told.clone(), same.clone()), Vec::<String>::new());
        let mut other = same.clone();
        other.consumer.gender = Some(Gender::Male);
        other.source_id = "google".into();
        other.sub_id = String::new();
        other.extra.insert("household_size".into(), "5".into());
        other.consent.trusted_form_url = Some("https://cert.trustedform.com/another".into());
        assert_eq!(
            mismatches(told, other),
            [
                "lead.consent.trusted_form_url",
                "lead.consumer.gender",
                "lead.source_id",
                "lead.sub_id",
                "lead.extra.household_size"
            ]
        );
    }
}

//! The standard publisher redactor: keeps what buyers need to price a lead and nothing that identifies the consumer.
//!
//! Dropped: name, phone, email, street, city, IP, user agent, and the TrustedForm URL, Jornaya id and TCPA text
//! values. Reduced: ZIP to its first three digits, date of birth to the age on the day of the call. Kept: vertical,
//! state, gender, consent presence flags, publisher and source ids, and only the extra keys the publisher's config
//! allows (`{"allow_extra": ["coverage_type"]}`; none by default).
//!
//! A PII-free ping request (a two-step ping sent before the lead) gets the same rules: its ZIP may be five digits or
//! only three, its age is taken as the publisher stated it, and the same extra keys are kept.

use pingpost_sdk::time::age_on;
use pingpost_sdk::{ConsentFlags, Lead, Ping, PingRequest, RedactContext, Redactor, UsState};
use serde::Deserialize;

/// The publisher's redactor config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Lead extra keys copied into the ping; every other extra key is dropped.
    #[serde(default)]
    allow_extra: Vec<String>,
}

/// The redactor for one publisher.
pub struct StandardRedactor {
    allow_extra: Vec<String>,
}

impl Redactor for StandardRedactor {
    /// An empty or blank config means the defaults (no extra keys).
    fn new(config: &str) -> Result<Self, String> {
        let config = if config.trim().is_empty() {
            Config::default()
        } else {
            serde_json::from_str::<Config>(config).map_err(|e| format!("standard-redactor config: {e}"))?
        };
        Ok(StandardRedactor { allow_extra: config.allow_extra })
    }

    // Error messages name the field and never repeat its value: the value may be PII.
    fn redact(&self, lead: &Lead, context: &RedactContext) -> Result<Ping, String> {
        let age = match age_on(lead.date_of_birth.trim(), context.now_unix_ms) {
            Some(age) => age,
            None => return Err("date_of_birth is not a YYYY-MM-DD date on or before today".to_owned()),
        };
        Ok(Ping {
            vertical: lead.vertical.trim().to_owned(),
            state: state_code(&lead.state)?,
            zip3: zip3(&lead.zip5)?,
            age,
            gender: lead.gender,
            consent: ConsentFlags {
                trusted_form: present(&lead.trusted_form_url),
                jornaya: present(&lead.jornaya_leadid),
                tcpa_text: present(&lead.tcpa_text),
            },
            publisher_id: lead.publisher_id.clone(),
            source_id: lead.source_id.clone(),
            sub_id: lead.sub_id.clone(),
            extra: self.allowed_extra(&lead.extra),
        })
    }

    fn redact_ping(&self, request: &PingRequest, _context: &RedactContext) -> Result<Ping, String> {
        let zip = request.zip.trim();
        let zip3 = if zip.len() == 3 { zip3_of_three(zip)? } else { zip3(zip)? };
        Ok(Ping {
            vertical: request.vertical.trim().to_owned(),
            state: state_code(&request.state)?,
            zip3,
            age: request.age,
            gender: request.gender,
            consent: ConsentFlags {
                trusted_form: present(&request.trusted_form_url),
                jornaya: present(&request.jornaya_leadid),
                tcpa_text: request.tcpa_text,
            },
            publisher_id: request.publisher_id.clone(),
            source_id: request.source_id.clone(),
            sub_id: request.sub_id.clone(),
            extra: self.allowed_extra(&request.extra),
        })
    }
}

impl StandardRedactor {
    /// The extra key/values the config allows, encoded for the ping.
    fn allowed_extra(&self, extra: &[(String, String)]) -> String {
        Ping::encode_extra(extra.iter().filter(|(key, _)| self.allow_extra.contains(key)).cloned())
    }
}

/// A ZIP3 given as three digits, as a number.
fn zip3_of_three(zip: &str) -> Result<u16, String> {
    if zip.bytes().all(|b| b.is_ascii_digit()) {
        zip.parse().map_err(|_| "zip is not three or five digits".to_owned())
    } else {
        Err("zip is not three or five digits".to_owned())
    }
}

/// Evidence counts as present when it has a non-blank value.
fn present(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

/// The first three digits of a five-digit ZIP code (a ZIP+4 `12345-6789` is accepted too), as a number.
fn zip3(zip: &str) -> Result<u16, String> {
    let zip = zip.trim();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let five = match zip.split_once('-') {
        Some((five, four)) if four.len() == 4 && digits(four) => five,
        Some(_) => return Err("zip5 is not a ZIP code".to_owned()),
        None => zip,
    };
    if five.len() != 5 || !digits(five) {
        return Err("zip5 is not five digits".to_owned());
    }
    five[..3].parse().map_err(|_| "zip5 is not five digits".to_owned())
}

/// The state of a two-letter USPS code, in any case.
fn state_code(state: &str) -> Result<UsState, String> {
    UsState::from_code(state.trim()).ok_or_else(|| "state is not the two-letter code of a US state or DC".to_owned())
}

pingpost_sdk::register_redactor!(StandardRedactor);

#[cfg(test)]
mod tests;

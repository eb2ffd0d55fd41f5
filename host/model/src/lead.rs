use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Gender;

/// The consumer's identity and address: all of it is PII.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub first_name: String,
    pub last_name: String,
    /// Ten digits or E.164.
    pub phone: String,
    pub email: String,
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub city: String,
    /// Two-letter USPS state code.
    pub state: String,
    pub zip5: String,
    /// ISO 8601 calendar date, `YYYY-MM-DD`.
    pub date_of_birth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
}

/// The consent evidence captured with the lead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_form_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jornaya_leadid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcpa_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A publisher's full lead, PII included. Only redactors and the winning buyer ever see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    /// The product asked for, e.g. `health-insurance`.
    pub vertical: String,
    /// The selling publisher; a publisher's API key fills it in when it is left out.
    #[schema(required = false)]
    pub publisher_id: String,
    /// The publisher's traffic source.
    #[serde(default)]
    pub source_id: String,
    /// The publisher's sub id within the source (a placement, an affiliate, a campaign).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_id: String,
    pub consumer: Consumer,
    #[serde(default)]
    pub consent: Consent,
    /// Free key/values from the publisher.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// A publisher's ping before redaction, without the consumer's identity: the first half of a two-step sale whose lead
/// comes with the post. What a redactor reads of a PII-free ping; the service checks its fields first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingRequest {
    pub vertical: String,
    pub publisher_id: String,
    pub source_id: String,
    pub sub_id: String,
    /// Two-letter USPS state code.
    pub state: String,
    /// Five digits, or only the first three.
    pub zip: String,
    /// Age in whole years on the day of the ping.
    pub age: u8,
    pub gender: Option<Gender>,
    pub trusted_form_url: Option<String>,
    pub jornaya_leadid: Option<String>,
    /// TCPA consent language was shown and accepted.
    pub tcpa_text: bool,
    pub extra: BTreeMap<String, String>,
}

/// The consent evidence of a PII-free ping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingConsent {
    /// The TrustedForm certificate URL (or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_form_url: Option<String>,
    /// The Jornaya LeadiD token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jornaya_leadid: Option<String>,
    /// TCPA consent language was shown and accepted.
    #[serde(default)]
    pub tcpa_text: bool,
}

/// The body of a PII-free two-step ping: what a ping is made of, without the consumer's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPing {
    /// The product asked for, e.g. `health-insurance`.
    pub vertical: String,
    /// The selling publisher; a publisher's API key fills it in when it is left out.
    #[serde(default)]
    #[schema(required = false)]
    pub publisher_id: String,
    #[serde(default)]
    pub source_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_id: String,
    /// Two-letter USPS state code.
    pub state: String,
    /// The five-digit ZIP code; or give only `zip3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip5: Option<String>,
    /// The ZIP code's first three digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip3: Option<String>,
    /// Age in whole years; or give `birth_year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 18, maximum = 120)]
    pub age: Option<u8>,
    /// Year of birth: buyers are told the lower of the two ages it can mean, and the posted lead's date of birth
    /// must be in this year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub consent: PingConsent,
    /// SHA-256 (hex) of the phone in E.164, given together with `email_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub phone_sha256: Option<String>,
    /// SHA-256 (hex) of the email, trimmed and in lower case, given together with `phone_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub email_sha256: Option<String>,
    /// Free key/values from the publisher (the vertical's schema types them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// What the host tells a redactor besides the lead (the publisher and its config are given once per instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactContext {
    /// Milliseconds since the Unix epoch, UTC, from the injected clock.
    pub now_unix_ms: i64,
}

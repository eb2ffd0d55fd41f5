use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Consumer gender as the publisher reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    NonBinary,
}

/// Which consent evidence a lead carries: presence only, never the values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFlags {
    #[serde(default)]
    pub trusted_form: bool,
    #[serde(default)]
    pub jornaya: bool,
    #[serde(default)]
    pub tcpa_text: bool,
}

/// The non-identifying view of a lead that is offered to every buyer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    /// The product asked for, e.g. `health-insurance`.
    pub vertical: String,
    /// Two-letter USPS state code.
    pub state: String,
    /// First three digits of the ZIP code.
    pub zip3: String,
    /// Age in whole years.
    pub age: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default)]
    pub consent: ConsentFlags,
    #[serde(default)]
    pub publisher_id: String,
    #[serde(default)]
    pub source_id: String,
    /// The publisher's sub id within the source; empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_id: String,
    /// Further non-identifying key/values the publisher's redactor chose to include.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

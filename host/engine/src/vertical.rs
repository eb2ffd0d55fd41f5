//! Verticals: what a lead of each product must carry, and the schema its ping's extras follow.
//!
//! A vertical is defined by the operator (`[[verticals]]` in the exchange file, `PUT /v1/verticals/{name}`); an
//! exchange that defines none has the built-in five ([`Vertical::builtin`]). Each names the fields a lead must carry
//! beyond the common ones (`requires`), the youngest consumer it accepts (`min_age`), and the **extras schema**: every
//! key a ping's `extra` may hold, with its type:
//!
//! | type | a value is |
//! |---|---|
//! | `enum` | one of `values`, exactly |
//! | `int` | a decimal integer from `min` to `max`, written canonically (no `+`, no leading zeros) |
//! | `bool` | `true` or `false` |
//! | `code` | at most `max_len` (default 16, at most 64) characters matching `pattern` (a regular expression, matched whole) |
//! | `free_text` | at most `max_len` (at most 256) characters of any text, searched by the PII guard's value layer |
//!
//! A lead's extra that the schema names must already be of its type (a `422` naming the field); a lead may carry
//! other extras, which only the winner sees. A ping carrying an extra the schema does not name, or a value outside its
//! type, is refused before any buyer is pinged: a redactor cannot invent a channel the operator did not open. Enum and
//! bool values are a closed set the operator wrote, so the value guard skips them; every other value passes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use pingpost_model::{Lead, LeadPing};

use super::age::{MAX_AGE, MIN_AGE};
use super::field_error::FieldError;
use super::pii::{PiiKind, PiiLeak, Scan};

/// The youngest consumer a vertical accepts unless it says otherwise.
pub const DEFAULT_MIN_AGE: u8 = 18;
/// The most characters a `code` extra may be defined to hold.
pub const MAX_CODE_LEN: usize = 64;
/// The most characters a `free_text` extra may be defined to hold.
pub const MAX_FREE_TEXT_LEN: usize = 256;
/// The most extras one vertical's schema may define.
pub const MAX_EXTRAS: usize = 64;
/// The most values an `enum` extra may list.
pub const MAX_ENUM_VALUES: usize = 256;

/// One vertical as the operator defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Vertical {
    /// The product, as leads name it: `health-insurance`. The API takes it from the path (a body may repeat it).
    #[schema(read_only)]
    pub name: String,
    /// Fields a lead must carry beyond the common ones: `consumer.street`, `consumer.city`, `consent.tcpa_text`,
    /// `consent.trusted_form_url`, `consent.jornaya_leadid`, `consent.ip`, `consent.evidence` (a TrustedForm
    /// certificate URL or a Jornaya LeadiD) or `extra.<key>` for a key of the schema.
    #[serde(default)]
    pub requires: Vec<String>,
    /// The youngest consumer accepted.
    #[serde(default = "default_min_age")]
    pub min_age: u8,
    /// Every key a ping's extras may hold, with its type.
    #[serde(default)]
    pub extras: BTreeMap<String, ExtraField>,
}

fn default_min_age() -> u8 {
    DEFAULT_MIN_AGE
}

/// The type of one extra field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExtraField {
    /// One of the listed values, exactly.
    Enum { values: Vec<String> },
    /// A decimal integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// `true` or `false`.
    Bool,
    /// A short code matching `pattern` whole.
    Code {
        pattern: String,
        #[serde(default = "default_code_len")]
        max_len: usize,
    },
    /// Any text up to `max_len` characters, searched for PII.
    FreeText { max_len: usize },
}

fn default_code_len() -> usize {
    16
}

impl Vertical {
    /// The verticals of an exchange that defines none.
    pub fn builtin() -> Vec<Vertical> {
        use ExtraField::{Bool, Enum, Int};
        let list = |values: &[&str]| Enum { values: values.iter().map(|v| (*v).to_owned()).collect() };
        let vertical = |name: &str, requires: &[&str], min_age: u8, extras: Vec<(&str, ExtraField)>| Vertical {
            name: name.to_owned(),
            requires: requires.iter().map(|r| (*r).to_owned()).collect(),
            min_age,
            extras: extras.into_iter().map(|(k, f)| (k.to_owned(), f)).collect(),
        };
        let credit = || list(&["excellent", "good", "fair", "poor"]);
        vec![
            vertical(
                "health-insurance",
                &["consent.tcpa_text", "consent.evidence"],
                DEFAULT_MIN_AGE,
                vec![
                    ("coverage_type", list(&["individual", "couple", "family", "dependents"])),
                    ("household_size", Int { min: 1, max: 20 }),
                    ("currently_insured", Bool),
                    ("tobacco_use", Bool),
                ],
            ),
            vertical(
                "medicare",
                &["consent.tcpa_text", "consent.evidence"],
                64,
                vec![
                    ("plan_type", list(&["advantage", "supplement", "part_d"])),
                    ("currently_insured", Bool),
                    ("household_size", Int { min: 1, max: 20 }),
                ],
            ),
            vertical(
                "auto-insurance",
                &["consumer.street", "consumer.city", "consent.tcpa_text"],
                DEFAULT_MIN_AGE,
                vec![
                    ("vehicles", Int { min: 1, max: 10 }),
                    ("violations_3y", Int { min: 0, max: 20 }),
                    ("currently_insured", Bool),
                    ("homeowner", Bool),
                ],
            ),
            vertical(
                "mortgage",
                &["consumer.street", "consumer.city", "consent.tcpa_text", "extra.loan_purpose"],
                DEFAULT_MIN_AGE,
                vec![
                    ("loan_purpose", list(&["purchase", "refinance", "cash_out", "heloc"])),
                    ("property_type", list(&["single_family", "condo", "townhouse", "multi_family", "mobile"])),
                    ("loan_amount_usd", Int { min: 10_000, max: 10_000_000 }),
                    ("credit_band", credit()),
                ],
            ),
            vertical(
                "solar",
                &["consumer.street", "consumer.city", "consent.tcpa_text", "extra.homeowner"],
                DEFAULT_MIN_AGE,
                vec![
                    ("homeowner", Bool),
                    ("monthly_bill_usd", Int { min: 0, max: 5_000 }),
                    ("roof_shade", list(&["none", "partial", "full"])),
                    ("credit_band", credit()),
                ],
            ),
        ]
    }
}

/// Why a vertical's definition was refused: the vertical and the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vertical {vertical:?}: {field}: {detail}")]
pub struct VerticalError {
    pub vertical: String,
    /// The field of the definition, e.g. `extras.roof_shade.pattern`.
    pub field: String,
    pub detail: String,
}

/// A requirement of a vertical beyond the common fields.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// A non-empty field, by its dotted name.
    Field(String),
    /// A TrustedForm certificate URL or a Jornaya LeadiD.
    ConsentEvidence,
}

/// How one extra's value is checked.
#[derive(Debug, Clone)]
enum Check {
    Enum(Vec<String>),
    Int { min: i64, max: i64 },
    Bool,
    Code { pattern: regex::Regex, max_len: usize },
    FreeText { max_len: usize },
}

impl Check {
    /// Why `value` is not of this type, or `None` when it is.
    fn refuse(&self, value: &str) -> Option<String> {
        match self {
            Check::Enum(values) => {
                (!values.iter().any(|v| v == value)).then(|| format!("must be one of {}", values.join(", ")))
            }
            Check::Int { min, max } => {
                let ok = value.parse::<i64>().is_ok_and(|n| n.to_string() == value && (*min..=*max).contains(&n));
                (!ok).then(|| format!("must be a whole number from {min} to {max}"))
            }
            Check::Bool => (!matches!(value, "true" | "false")).then(|| "must be true or false".to_owned()),
            Check::Code { pattern, max_len } => {
                let ok = value.chars().count() <= *max_len && pattern.is_match(value);
                (!ok).then(|| format!("must be at most {max_len} characters matching {}", unanchored(pattern)))
            }
            Check::FreeText { max_len } => {
                (value.chars().count() > *max_len).then(|| format!("must be at most {max_len} characters"))
            }
        }
    }

    /// Whether a value of this type is open text that the PII guard's value layer must search.
    fn is_open(&self) -> bool {
        !matches!(self, Check::Enum(_) | Check::Bool)
    }
}

/// The operator's pattern, without the anchors the exchange added around it.
fn unanchored(pattern: &regex::Regex) -> &str {
    let text = pattern.as_str();
    text.strip_prefix("^(?:").and_then(|t| t.strip_suffix(")$")).unwrap_or(text)
}

/// One vertical, checked and ready to apply.
#[derive(Debug, Clone)]
pub struct VerticalRules {
    name: String,
    requires: Vec<Requirement>,
    min_age: u8,
    extras: BTreeMap<String, Check>,
}

impl VerticalRules {
    /// Checks one definition.
    pub fn new(vertical: &Vertical) -> Result<Self, VerticalError> {
        let refuse = |field: &str, detail: String| VerticalError {
            vertical: vertical.name.clone(),
            field: field.to_owned(),
            detail,
        };
        if !is_name(&vertical.name, 64, |b| b == b'-') {
            return Err(refuse("name", "must be 1 to 64 lower-case letters, digits and dashes".into()));
        }
        if !(MIN_AGE..=MAX_AGE).contains(&vertical.min_age) {
            let (min, max) = (MIN_AGE, MAX_AGE);
            return Err(refuse("min_age", format!("must be {min} to {max}")));
        }
        if vertical.extras.len() > MAX_EXTRAS {
            return Err(refuse("extras", format!("may define at most {MAX_EXTRAS} fields")));
        }
        let mut extras = BTreeMap::new();
        for (key, field) in &vertical.extras {
            let at = |what: &str| format!("extras.{key}{what}");
            if !is_name(key, 40, |b| b == b'_') {
                return Err(refuse(&at(""), "a key must be 1 to 40 lower-case letters, digits and underscores".into()));
            }
            let check = match field {
                ExtraField::Enum { values } => {
                    if values.is_empty() || values.len() > MAX_ENUM_VALUES {
                        return Err(refuse(&at(".values"), format!("must list 1 to {MAX_ENUM_VALUES} values")));
                    }
                    if values.iter().any(|v| v.is_empty() || v.chars().count() > 64) {
                        return Err(refuse(&at(".values"), "every value must be 1 to 64 characters".into()));
                    }
                    Check::Enum(values.clone())
                }
                ExtraField::Int { min, max } => {
                    if min > max {
                        return Err(refuse(&at(".min"), format!("{min} is above max {max}")));
                    }
                    Check::Int { min: *min, max: *max }
                }
                ExtraField::Bool => Check::Bool,
                ExtraField::Code { pattern, max_len } => {
                    if !(1..=MAX_CODE_LEN).contains(max_len) {
                        return Err(refuse(&at(".max_len"), format!("must be 1 to {MAX_CODE_LEN}")));
                    }
                    let pattern = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| refuse(&at(".pattern"), format!("is not a regular expression: {e}")))?;
                    Check::Code { pattern, max_len: *max_len }
                }
                ExtraField::FreeText { max_len } => {
                    if !(1..=MAX_FREE_TEXT_LEN).contains(max_len) {
                        return Err(refuse(&at(".max_len"), format!("must be 1 to {MAX_FREE_TEXT_LEN}")));
                    }
                    Check::FreeText { max_len: *max_len }
                }
            };
            extras.insert(key.clone(), check);
        }
        let mut requires = Vec::new();
        for field in &vertical.requires {
            let requirement = match field.as_str() {
                "consent.evidence" => Requirement::ConsentEvidence,
                "consumer.street"
                | "consumer.city"
                | "consent.tcpa_text"
                | "consent.trusted_form_url"
                | "consent.jornaya_leadid"
                | "consent.ip" => Requirement::Field(field.clone()),
                other => match other.strip_prefix("extra.") {
                    Some(key) if extras.contains_key(key) => Requirement::Field(field.clone()),
                    Some(key) => {
                        return Err(refuse("requires", format!("extra.{key} is not a field of the extras schema")));
                    }
                    None => return Err(refuse("requires", format!("{other:?} is not a field a vertical can require"))),
                },
            };
            requires.push(requirement);
        }
        Ok(VerticalRules { name: vertical.name.clone(), requires, min_age: vertical.min_age, extras })
    }

    /// The vertical's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds to `errors` what `lead` lacks for this vertical: required fields, the minimum age (when `age` is known)
    /// and extras the schema names that are not of their type.
    pub fn check_lead(&self, lead: &Lead, age: Option<u8>, errors: &mut Vec<FieldError>) {
        for requirement in &self.requires {
            match requirement {
                Requirement::Field(field) => {
                    if field_value(lead, field).is_none_or(|v| v.trim().is_empty()) {
                        errors.push(FieldError::new(field, format!("is required for {}", self.name)));
                    }
                }
                Requirement::ConsentEvidence => {
                    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
                    if !present(&lead.consent.trusted_form_url) && !present(&lead.consent.jornaya_leadid) {
                        errors.push(FieldError::new(
                            "consent.trusted_form_url",
                            format!("{} needs a TrustedForm certificate URL or a Jornaya LeadiD", self.name),
                        ));
                    }
                }
            }
        }
        if let Some(age) = age
            && age < self.min_age
        {
            errors.push(FieldError::new(
                "consumer.date_of_birth",
                format!("gives an age of {age}; {} needs {} or older", self.name, self.min_age),
            ));
        }
        for (key, value) in &lead.extra {
            if let Some(reason) = self.extras.get(key).and_then(|check| check.refuse(value)) {
                errors.push(FieldError::new(&format!("extra.{key}"), reason));
            }
        }
    }

    /// Adds to `errors` what a PII-free ping lacks for this vertical: the consent evidence and extras it requires,
    /// the minimum age, and extras the schema names that are not of their type. What only a full lead has (street,
    /// city, IP) is checked when the lead is posted.
    pub fn check_lead_ping(&self, ping: &LeadPing, age: u8, errors: &mut Vec<FieldError>) {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let consent = &ping.consent;
        for requirement in &self.requires {
            let (field, missing) = match requirement {
                Requirement::Field(field) => match field.as_str() {
                    "consent.tcpa_text" => (field.as_str(), !consent.tcpa_text),
                    "consent.trusted_form_url" => (field.as_str(), !present(&consent.trusted_form_url)),
                    "consent.jornaya_leadid" => (field.as_str(), !present(&consent.jornaya_leadid)),
                    other => match other.strip_prefix("extra.") {
                        Some(key) => (other, ping.extra.get(key).is_none_or(|v| v.trim().is_empty())),
                        None => continue,
                    },
                },
                Requirement::ConsentEvidence => (
                    "consent.trusted_form_url",
                    !present(&consent.trusted_form_url) && !present(&consent.jornaya_leadid),
                ),
            };
            if missing {
                errors.push(FieldError::new(field, format!("is required for {}", self.name)));
            }
        }
        if age < self.min_age {
            let field = if ping.age.is_some() { "age" } else { "birth_year" };
            errors.push(FieldError::new(
                field,
                format!("gives an age of {age}; {} needs {} or older", self.name, self.min_age),
            ));
        }
        for (key, value) in &ping.extra {
            if let Some(reason) = self.extras.get(key).and_then(|check| check.refuse(value)) {
                errors.push(FieldError::new(&format!("extra.{key}"), reason));
            }
        }
    }

    /// The extras of a ping that break the schema: a key it does not name (by position, since the key may itself be
    /// what leaks) or a value outside its field's type (by key). Empty when the extras follow the schema.
    pub fn check_ping_extras(&self, extra: &BTreeMap<String, String>) -> Vec<PiiLeak> {
        let mut leaks = Vec::new();
        for (index, (key, value)) in extra.iter().enumerate() {
            match self.extras.get(key) {
                None => leaks.push(PiiLeak { field: format!("extra[key #{}]", index + 1), kind: PiiKind::OffSchema }),
                Some(check) if check.refuse(value).is_some() => {
                    leaks.push(PiiLeak { field: format!("extra.{key}"), kind: PiiKind::OffSchema });
                }
                Some(_) => {}
            }
        }
        leaks
    }

    /// What the PII guard's value layer searches of extra `key`: nothing of an enum or bool (a closed set the
    /// operator wrote), the value of every other type, key and value of a key the schema does not name.
    pub fn scan(&self, key: &str) -> Scan {
        match self.extras.get(key) {
            Some(check) if check.is_open() => Scan::Value,
            Some(_) => Scan::Skip,
            None => Scan::KeyAndValue,
        }
    }
}

/// Every vertical of an exchange, checked.
#[derive(Debug, Clone)]
pub struct Verticals {
    rules: Vec<VerticalRules>,
}

impl Verticals {
    /// Checks `verticals`; none means the built-in set. Names must be distinct.
    pub fn new(verticals: &[Vertical]) -> Result<Self, VerticalError> {
        let builtin;
        let verticals = if verticals.is_empty() {
            builtin = Vertical::builtin();
            &builtin[..]
        } else {
            verticals
        };
        let mut rules: Vec<VerticalRules> = Vec::with_capacity(verticals.len());
        for vertical in verticals {
            if rules.iter().any(|r| r.name == vertical.name) {
                return Err(VerticalError {
                    vertical: vertical.name.clone(),
                    field: "name".into(),
                    detail: "is defined twice".into(),
                });
            }
            rules.push(VerticalRules::new(vertical)?);
        }
        Ok(Verticals { rules })
    }

    /// The rules of vertical `name`.
    pub fn get(&self, name: &str) -> Option<&VerticalRules> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The names of every vertical, in definition order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }
}

impl Default for Verticals {
    /// The built-in verticals.
    fn default() -> Self {
        Verticals::new(&[]).unwrap_or_else(|e| unreachable!("the built-in verticals are valid: {e}"))
    }
}

fn is_name(name: &str, max: usize, extra: impl Fn(u8) -> bool) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra(b))
}

/// The value of a dotted field name, for the requirements.
fn field_value<'a>(lead: &'a Lead, field: &str) -> Option<&'a str> {
    let c = &lead.consumer;
    let consent = &lead.consent;
    match field {
        "consumer.street" => Some(&c.street),
        "consumer.city" => Some(&c.city),
        "consent.tcpa_text" => consent.tcpa_text.as_deref(),
        "consent.trusted_form_url" => consent.trusted_form_url.as_deref(),
        "consent.jornaya_leadid" => consent.jornaya_leadid.as_deref(),
        "consent.ip" => consent.ip.as_deref(),
        other => other.strip_prefix("extra.").and_then(|key| lead.extra.get(key)).map(String::as_str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(extras: serde_json::Value) -> VerticalRules {
        let vertical: Vertical =
            serde_json::from_value(serde_json::json!({ "name": "solar", "extras": extras })).expect("a vertical");
        VerticalRules::new(&vertical).expect("valid rules")
    }

    fn extras(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_type_accepts_its_values_and_nothing_else() {
        let r = rules(serde_json::json!({
            "shade": { "type": "enum", "values": ["none", "full"] },
            "bill": { "type": "int", "min": 0, "max": 500 },
            "owner": { "type": "bool" },
            "utility": { "type": "code", "pattern": "[A-Z]{2,4}[0-9]?" },
            "note": { "type": "free_text", "max_len": 10 },
        }));
        let fine =
            extras(&[("shade", "none"), ("bill", "120"), ("owner", "true"), ("utility", "FPL1"), ("note", "morning")]);
        assert!(r.check_ping_extras(&fine).is_empty());
        for (key, bad) in [
            ("shade", "None"),
            ("shade", "none "),
            ("bill", "0120"),
            ("bill", "+12"),
            ("bill", "501"),
            ("bill", "3055550142"),
            ("owner", "yes"),
            ("utility", "FPL12"),
            ("utility", "fpl"),
            ("utility", "FP\nL"),
            ("note", "call me at five"),
        ] {
            let leaks = r.check_ping_extras(&extras(&[(key, bad)]));
            assert_eq!(leaks, [PiiLeak { field: format!("extra.{key}"), kind: PiiKind::OffSchema }], "{key}={bad:?}");
        }
        let unknown = r.check_ping_extras(&extras(&[("bill", "1"), ("jane_doe_3055550142", "x")]));
        assert_eq!(unknown, [PiiLeak { field: "extra[key #2]".into(), kind: PiiKind::OffSchema }]);
        assert_eq!(["note", "bill", "utility"].map(|k| r.scan(k)), [Scan::Value; 3]);
        assert_eq!(["shade", "owner", "other"].map(|k| r.scan(k)), [Scan::Skip, Scan::Skip, Scan::KeyAndValue]);
    }

    #[test]
    fn a_lead_extra_the_schema_names_must_be_of_its_type() {
        let verticals = Verticals::default();
        let solar = verticals.get("solar").expect("built in");
        let mut lead = Lead::default();
        lead.consumer.street = "1 Sun St".into();
        lead.consumer.city = "Tampa".into();
        lead.consent.tcpa_text = Some("yes".into());
        lead.extra = extras(&[("homeowner", "yes"), ("monthly_bill_usd", "180"), ("utm_source", "any text")]);
        let mut errors = Vec::new();
        solar.check_lead(&lead, Some(40), &mut errors);
        assert_eq!(errors, [FieldError::new("extra.homeowner", "must be true or false")]);
        lead.extra.insert("homeowner".into(), "true".into());
        errors.clear();
        solar.check_lead(&lead, Some(40), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn bad_definitions_are_refused_naming_the_field() {
        let refused = |json: serde_json::Value| -> String {
            let vertical: Vertical = serde_json::from_value(json).expect("parses");
            VerticalRules::new(&vertical).expect_err("refused").to_string()
        };
        let cases = [
            (serde_json::json!({"name": "Solar"}), "name"),
            (serde_json::json!({"name": "solar", "min_age": 12}), "min_age"),
            (serde_json::json!({"name": "solar", "requires": ["extra.roof"]}), "requires"),
            (serde_json::json!({"name": "solar", "requires": ["consumer.phone_2"]}), "requires"),
            (serde_json::json!({"name": "solar", "extras": {"Roof": {"type": "bool"}}}), "extras.Roof"),
            (serde_json::json!({"name": "solar", "extras": {"a": {"type": "enum", "values": []}}}), "extras.a.values"),
            (
                serde_json::json!({"name": "solar", "extras": {"a": {"type": "int", "min": 5, "max": 1}}}),
                "extras.a.min",
            ),
            (
                serde_json::json!({"name": "solar", "extras": {"a": {"type": "code", "pattern": "("}}}),
                "extras.a.pattern",
            ),
            (
                serde_json::json!({"name": "solar", "extras": {"a": {"type": "code", "pattern": "x", "max_len": 65}}}),
                "extras.a.max_len",
            ),
            (
                serde_json::json!({"name": "solar", "extras": {"a": {"type": "free_text", "max_len": 1000}}}),
                "extras.a.max_len",
            ),
        ];
        for (json, field) in cases {
            let message = refused(json.clone());
            assert!(message.contains(&format!(": {field}: ")), "{json} → {message}");
        }
        let typo: Result<Vertical, _> = serde_json::from_value(
            serde_json::json!({"name": "solar", "extras": {"a": {"type": "int", "min": 1, "mx": 2}}}),
        );
        assert!(typo.is_err(), "an unknown key in a field type is an error");
        let twice = Verticals::new(&[Vertical::builtin()[0].clone(), Vertical::builtin()[0].clone()]);
        assert!(twice.is_err_and(|e| e.detail == "is defined twice"));
    }

    #[test]
    fn the_builtin_verticals_are_valid_and_distinct() {
        let verticals = Verticals::default();
        assert_eq!(
            verticals.names().collect::<Vec<_>>(),
            ["health-insurance", "medicare", "auto-insurance", "mortgage", "solar"]
        );
    }
}

//! The PII guard: the last check before a ping leaves the exchange.
//!
//! A publisher's redactor turns the lead into a ping; the guard does not trust it. It collects the lead's PII values
//! (first and last name, phone in every spelling, email, street, ZIP, exact date of birth in its usual spellings, IP,
//! TrustedForm certificate URL, Jornaya LeadiD) and searches every string of the ping for them, case-insensitively:
//! vertical, publisher and source ids, and every extra key and value. The state and ZIP3 fields are searched too
//! unless they hold exactly the values derived from the lead (its state code, the first three ZIP digits), which
//! carry no PII. Any hit refuses the ping, naming the field and the kind of PII — never the value.
//!
//! Matching: a value matches where it is not glued to more of the same kind of character (so `Jane` is found in
//! `jane_smith` and `name:jane` but not in `Janet`, and ZIP `33101` in `zip33101` but not in `331012`). A phone is
//! found in any run of digits and separators (`+ ( ) . -` and spaces) whose digits contain its ten digits. Names
//! shorter than two letters are not searched.

use serde::Serialize;

use crate::model::{Lead, Ping};

/// What kind of PII a leak is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    FirstName,
    LastName,
    Phone,
    Email,
    Street,
    Zip5,
    DateOfBirth,
    Ip,
    TrustedFormUrl,
    JornayaLeadid,
}

impl PiiKind {
    /// The snake_case name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::FirstName => "first_name",
            PiiKind::LastName => "last_name",
            PiiKind::Phone => "phone",
            PiiKind::Email => "email",
            PiiKind::Street => "street",
            PiiKind::Zip5 => "zip5",
            PiiKind::DateOfBirth => "date_of_birth",
            PiiKind::Ip => "ip",
            PiiKind::TrustedFormUrl => "trusted_form_url",
            PiiKind::JornayaLeadid => "jornaya_leadid",
        }
    }
}

/// A PII value found in a ping: where, and what kind (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiLeak {
    /// The ping field, e.g. `extra.note`; an extra key that itself holds PII is named by position, `extra[key #2]`.
    pub field: String,
    pub kind: PiiKind,
}

impl std::fmt::Display for PiiLeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} holds the consumer's {}", self.field, self.kind.as_str())
    }
}

/// The lead's PII values, prepared for searching pings.
#[derive(Debug, Clone)]
pub struct PiiGuard {
    needles: Vec<(PiiKind, String)>,
    phone_digits: Option<String>,
    state: String,
    zip3: String,
}

impl PiiGuard {
    /// Collects the PII of `lead` (its phone and email should already be normalised; any spelling works).
    pub fn for_lead(lead: &Lead) -> Self {
        let c = &lead.consumer;
        let mut needles = Vec::new();
        let mut push = |kind: PiiKind, value: &str, min_len: usize| {
            let value = normalise(value);
            if value.chars().count() >= min_len {
                needles.push((kind, value));
            }
        };
        push(PiiKind::FirstName, &c.first_name, 2);
        push(PiiKind::LastName, &c.last_name, 2);
        push(PiiKind::Email, &c.email, 3);
        if let Some((local, domain)) = c.email.split_once('@') {
            push(PiiKind::Email, &format!("{local}%40{domain}"), 3);
        }
        push(PiiKind::Street, &c.street, 3);
        push(PiiKind::Zip5, &c.zip5, 5);
        for spelling in date_spellings(&c.date_of_birth) {
            push(PiiKind::DateOfBirth, &spelling, 6);
        }
        let consent = &lead.consent;
        if let Some(ip) = &consent.ip {
            push(PiiKind::Ip, ip, 3);
        }
        if let Some(url) = &consent.trusted_form_url {
            push(PiiKind::TrustedFormUrl, url, 8);
            // The certificate id alone identifies the consumer as well as the URL does.
            if let Some(cert) = url.trim_end_matches('/').rsplit('/').next() {
                push(PiiKind::TrustedFormUrl, cert, 16);
            }
        }
        if let Some(id) = &consent.jornaya_leadid {
            push(PiiKind::JornayaLeadid, id, 8);
        }
        let digits: String = c.phone.chars().filter(char::is_ascii_digit).collect();
        let phone_digits = match digits.len() {
            10 => Some(digits),
            11 if digits.starts_with('1') => Some(digits[1..].to_owned()),
            _ => None,
        };
        let zip3 = c.zip5.get(..3).unwrap_or_default().to_owned();
        PiiGuard { needles, phone_digits, state: c.state.clone(), zip3 }
    }

    /// Every PII value found in `ping`, by field; empty when the ping is clean.
    pub fn check(&self, ping: &Ping) -> Vec<PiiLeak> {
        let mut leaks = Vec::new();
        self.scan(&mut leaks, "vertical", &ping.vertical);
        if ping.state != self.state {
            self.scan(&mut leaks, "state", &ping.state);
        }
        if ping.zip3 != self.zip3 {
            self.scan(&mut leaks, "zip3", &ping.zip3);
        }
        self.scan(&mut leaks, "publisher_id", &ping.publisher_id);
        self.scan(&mut leaks, "source_id", &ping.source_id);
        for (index, (key, value)) in ping.extra.iter().enumerate() {
            // A key that leaks is named by position: naming it would repeat the value.
            let position = format!("extra[key #{}]", index + 1);
            let before = leaks.len();
            self.scan(&mut leaks, &position, key);
            if leaks.len() == before {
                self.scan(&mut leaks, &format!("extra.{key}"), value);
            } else {
                self.scan(&mut leaks, &format!("{position} value"), value);
            }
        }
        leaks
    }

    fn scan(&self, leaks: &mut Vec<PiiLeak>, field: &str, value: &str) {
        for kind in self.find(value) {
            leaks.push(PiiLeak { field: field.to_owned(), kind });
        }
    }

    /// The kinds of PII found in one string.
    fn find(&self, value: &str) -> Vec<PiiKind> {
        let haystack = normalise(value);
        let mut kinds: Vec<PiiKind> = Vec::new();
        for (kind, needle) in &self.needles {
            if !kinds.contains(kind) && contains_bounded(&haystack, needle) {
                kinds.push(*kind);
            }
        }
        if let Some(phone) = &self.phone_digits
            && !kinds.contains(&PiiKind::Phone)
            && phone_runs(value).any(|run| run.contains(phone.as_str()))
        {
            kinds.push(PiiKind::Phone);
        }
        kinds
    }
}

/// Lower case with runs of whitespace collapsed to one space and trimmed.
fn normalise(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Whether `needle` occurs in `haystack` not glued to more characters of the same class (letter or digit) as the
/// needle's first and last characters.
fn contains_bounded(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let class = |ch: char| {
        if ch.is_alphabetic() {
            1
        } else if ch.is_numeric() {
            2
        } else {
            0
        }
    };
    let first = needle.chars().next().map(class).unwrap_or(0);
    let last = needle.chars().next_back().map(class).unwrap_or(0);
    haystack.match_indices(needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        let glued_before = first != 0 && before.is_some_and(|ch| class(ch) == first);
        let glued_after = last != 0 && after.is_some_and(|ch| class(ch) == last);
        !glued_before && !glued_after
    })
}

/// The digits of every run of digits and phone separators in `value`.
fn phone_runs(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '+' | '(' | ')' | '.' | '-' | ' ')))
        .map(|run| run.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|digits| digits.len() >= 10)
}

/// The usual spellings of an ISO date (`YYYY-MM-DD`): ISO, US and day-first with `/ - .`, compact digits, two-digit
/// years, and month names.
fn date_spellings(iso: &str) -> Vec<String> {
    let Ok(date) = super::validate::parse_date_of_birth(iso) else {
        return if iso.trim().is_empty() { Vec::new() } else { vec![iso.to_owned()] };
    };
    let formats = [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y.%m.%d",
        "%Y%m%d",
        "%m/%d/%Y",
        "%m-%d-%Y",
        "%m.%d.%Y",
        "%m%d%Y",
        "%-m/%-d/%Y",
        "%-m-%-d-%Y",
        "%d/%m/%Y",
        "%d-%m-%Y",
        "%d.%m.%Y",
        "%d%m%Y",
        "%-d/%-m/%Y",
        "%m/%d/%y",
        "%-m/%-d/%y",
        "%d/%m/%y",
        "%B %-d, %Y",
        "%B %-d %Y",
        "%b %-d, %Y",
        "%b %-d %Y",
        "%-d %B %Y",
        "%-d %b %Y",
        "%B %d, %Y",
        "%b %d, %Y",
    ];
    let mut spellings: Vec<String> = formats.iter().map(|f| date.format(f).to_string()).collect();
    spellings.sort();
    spellings.dedup();
    spellings
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Consent, Consumer};

    fn lead() -> Lead {
        Lead {
            vertical: "health-insurance".into(),
            publisher_id: "pub-1".into(),
            source_id: "src-9".into(),
            consumer: Consumer {
                first_name: "Maria".into(),
                last_name: "Delgado".into(),
                phone: "+13055550142".into(),
                email: "maria.delgado@example.com".into(),
                street: "1200 Brickell Ave".into(),
                city: "Miami".into(),
                state: "FL".into(),
                zip5: "33131".into(),
                date_of_birth: "1968-03-14".into(),
                gender: None,
            },
            consent: Consent {
                trusted_form_url: Some("https://cert.trustedform.com/0123456789abcdef0123456789abcdef".into()),
                jornaya_leadid: Some("LEADID-ABCDEF-123456".into()),
                tcpa_text: Some("I agree".into()),
                ip: Some("203.0.113.7".into()),
                user_agent: None,
            },
            extra: BTreeMap::new(),
        }
    }

    fn clean_ping() -> Ping {
        Ping {
            vertical: "health-insurance".into(),
            state: "FL".into(),
            zip3: "331".into(),
            age: 58,
            publisher_id: "pub-1".into(),
            source_id: "src-9".into(),
            ..Ping::default()
        }
    }

    fn leak_in_extra(value: &str) -> Vec<PiiLeak> {
        let mut ping = clean_ping();
        ping.extra.insert("note".into(), value.into());
        PiiGuard::for_lead(&lead()).check(&ping)
    }

    #[test]
    fn a_clean_ping_passes() {
        assert!(PiiGuard::for_lead(&lead()).check(&clean_ping()).is_empty());
    }

    #[test]
    fn every_kind_of_pii_in_an_extra_value_is_named_by_field_and_kind() {
        let cases = [
            ("maria", PiiKind::FirstName),
            ("DELGADO family", PiiKind::LastName),
            ("call (305) 555-0142", PiiKind::Phone),
            ("+1 305.555.0142", PiiKind::Phone),
            ("13055550142", PiiKind::Phone),
            ("Maria.Delgado@Example.com", PiiKind::Email),
            ("maria.delgado%40example.com", PiiKind::Email),
            ("1200  brickell ave", PiiKind::Street),
            ("zip33131", PiiKind::Zip5),
            ("1968-03-14", PiiKind::DateOfBirth),
            ("03/14/1968", PiiKind::DateOfBirth),
            ("3/14/68", PiiKind::DateOfBirth),
            ("14.03.1968", PiiKind::DateOfBirth),
            ("born March 14, 1968", PiiKind::DateOfBirth),
            ("19680314", PiiKind::DateOfBirth),
            ("203.0.113.7", PiiKind::Ip),
            ("0123456789abcdef0123456789abcdef", PiiKind::TrustedFormUrl),
            ("leadid-abcdef-123456", PiiKind::JornayaLeadid),
        ];
        for (value, kind) in cases {
            let leaks = leak_in_extra(value);
            assert!(leaks.contains(&PiiLeak { field: "extra.note".into(), kind }), "{value}: {leaks:?}");
        }
    }

    #[test]
    fn lookalikes_that_are_not_the_consumers_values_pass() {
        for value in ["Mariano", "331312 and 433131", "203.0.113.70", "305555014", "1968", "FL"] {
            assert!(leak_in_extra(value).is_empty(), "{value}: {:?}", leak_in_extra(value));
        }
    }

    #[test]
    fn a_pii_extra_key_is_named_by_position_not_by_its_text() {
        let mut ping = clean_ping();
        ping.extra.insert("maria.delgado@example.com".into(), "1".into());
        let leaks = PiiGuard::for_lead(&lead()).check(&ping);
        let kinds: Vec<PiiKind> = leaks.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, [PiiKind::FirstName, PiiKind::LastName, PiiKind::Email]);
        assert!(leaks.iter().all(|l| l.field == "extra[key #1]"), "{leaks:?}");
    }

    #[test]
    fn pii_in_core_fields_is_found_too() {
        let guard = PiiGuard::for_lead(&lead());
        let mut ping = clean_ping();
        ping.source_id = "maria-3055550142".into();
        ping.zip3 = "33131".into();
        let leaks = guard.check(&ping);
        assert!(leaks.contains(&PiiLeak { field: "source_id".into(), kind: PiiKind::Phone }));
        assert!(leaks.contains(&PiiLeak { field: "source_id".into(), kind: PiiKind::FirstName }));
        assert!(leaks.contains(&PiiLeak { field: "zip3".into(), kind: PiiKind::Zip5 }));
    }

    #[test]
    fn the_derived_state_is_not_mistaken_for_a_short_name() {
        let mut lead = lead();
        lead.consumer.first_name = "Al".into();
        lead.consumer.state = "AL".into();
        let mut ping = clean_ping();
        ping.state = "AL".into();
        assert!(PiiGuard::for_lead(&lead).check(&ping).is_empty());
    }
}

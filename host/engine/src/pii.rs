//! The PII guard: the last check before a ping leaves the exchange.
//!
//! A publisher's redactor turns the lead into a ping; the guard does not trust it. It works in two layers.
//!
//! **Structure.** Every core field of a ping must be what the exchange itself derives from the lead: the lead's
//! vertical, publisher and source ids, state, the first three ZIP digits and the age on the day of the auction; a
//! gender only when it is the lead's, a consent flag only when the lead carries that evidence. A redactor may drop
//! what it likes (gender, flags, extras); it cannot put anything else in these fields, so the only channel left for
//! text is the extras.
//!
//! **Values.** Every extra key and value (and the source id, which the publisher writes) is searched for the lead's
//! PII — first and last name, phone, email, street, ZIP5, date of birth, IP, TrustedForm certificate, Jornaya LeadiD —
//! after normalisation: percent-decoding, Unicode NFKC (full-width forms), confusable skeletons (a Cyrillic `а` is a
//! Latin `a`), case, separators of every kind dropped (`_ / , ·`, zero-width spaces), digit and number words read as
//! numbers (`three oh five`, `nineteen sixty-eight`, `fourteenth`), the text reversed, base64 and hex tokens decoded,
//! and all extra values joined (a value split across two extras). Beside the lead's own values it refuses shapes
//! that are PII whoever's they are: a run of ten or more digits (a phone, also one changed by a digit), nine digits
//! (an SSN), a card number (13–19 digits passing Luhn) and an email address. Any hit refuses the ping before any
//! buyer is pinged, naming the field and the kind — never the value.
//!
//! What it cannot do: see through an encoding it does not decode (a cipher, a code agreed with a buyer), or notice
//! PII spread over many pings. That is why the structural layer matters more than the value layer, and why extras
//! should carry as little free text as a vertical needs (docs/ARCHITECTURE.md, "Security model").

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use pingpost_model::{Lead, Ping, PingRequest};

/// What kind of PII (or what breach of the ping's structure) a leak is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, strum::IntoStaticStr, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// A core field holding something other than what the exchange derives from the lead.
    NotDerived,
    /// Ten or more digits in a row: a phone number, whoever's.
    PhoneLike,
    /// Nine digits in a row: a social security number.
    SsnLike,
    /// 13–19 digits passing the Luhn check: a payment card number.
    CardNumberLike,
    /// `local@domain.tld`: an email address, whoever's.
    EmailLike,
    /// An extra the vertical's schema does not name, or a value outside its type.
    OffSchema,
}

impl PiiKind {
    /// The snake_case name of the kind.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What the guard's value layer searches of one extra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Nothing: the value is one of a closed set the operator wrote (an enum, a bool).
    Skip,
    /// The value: the key is the operator's.
    Value,
    /// The key and the value: neither is known to the exchange.
    KeyAndValue,
}

/// A PII value found in a ping: where, and what kind (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PiiLeak {
    /// The ping field, e.g. `extra.note`; an extra key that itself holds PII is named by position, `extra[key #2]`;
    /// PII found only in the extra values joined together is `extra (joined)`.
    pub field: String,
    pub kind: PiiKind,
}

impl std::fmt::Display for PiiLeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            PiiKind::NotDerived => write!(f, "{} is not the value the exchange derives from the lead", self.field),
            PiiKind::OffSchema => write!(f, "{} is not in the vertical's extras schema", self.field),
            PiiKind::PhoneLike | PiiKind::SsnLike | PiiKind::CardNumberLike | PiiKind::EmailLike => {
                write!(f, "{} holds a {}", self.field, self.kind.as_str())
            }
            _ => write!(f, "{} holds the consumer's {}", self.field, self.kind.as_str()),
        }
    }
}

/// The core fields of a ping as the exchange derives them from the lead.
#[derive(Debug, Clone)]
struct Derived {
    vertical: String,
    publisher_id: String,
    source_id: String,
    sub_id: String,
    state: String,
    zip3: String,
    age: u8,
    gender: Option<pingpost_model::Gender>,
    trusted_form: bool,
    jornaya: bool,
    tcpa_text: bool,
}

/// The lead's PII values, prepared for searching pings.
#[derive(Debug, Clone)]
pub struct PiiGuard {
    derived: Derived,
    /// Word needles: each a list of normalised letter-or-digit tokens, matched as consecutive tokens.
    words: Vec<(PiiKind, Vec<String>)>,
    /// Needles matched anywhere in the text's letters and digits run together (long enough not to occur by chance).
    joined: Vec<(PiiKind, String)>,
    /// Digit needles: matched anywhere in the text's digits run together when `anywhere` (long ones), else only as
    /// a whole run of digits or as nearly all of the text's digits (short ones, which occur by chance in long
    /// numbers: a ZIP, a local phone number, a six-digit date).
    digits: Vec<DigitNeedle>,
    /// The date of birth: year, month, day.
    date_of_birth: Option<(u32, u32, u32)>,
    /// The IPv4 address's four numbers.
    ip: Option<[u32; 4]>,
}

/// A needle of digits.
#[derive(Debug, Clone)]
struct DigitNeedle {
    kind: PiiKind,
    digits: String,
    anywhere: bool,
}

/// Shortest name (in letters) matched anywhere in run-together text; shorter ones must stand as a word.
const JOINED_MIN: usize = 6;

impl PiiGuard {
    /// Collects the PII of `lead` (normalised by validation) and what its ping must derive from it, `age` included.
    pub fn for_lead(lead: &Lead, age: u8) -> Self {
        let c = &lead.consumer;
        let consent = &lead.consent;
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let derived = Derived {
            vertical: lead.vertical.clone(),
            publisher_id: lead.publisher_id.clone(),
            source_id: lead.source_id.clone(),
            sub_id: lead.sub_id.clone(),
            state: c.state.clone(),
            zip3: c.zip5.get(..3).unwrap_or_default().to_owned(),
            age,
            gender: c.gender,
            trusted_form: present(&consent.trusted_form_url),
            jornaya: present(&consent.jornaya_leadid),
            tcpa_text: present(&consent.tcpa_text),
        };
        let mut guard = PiiGuard::deriving(derived);
        guard.name(PiiKind::FirstName, &c.first_name);
        guard.name(PiiKind::LastName, &c.last_name);
        guard.name(PiiKind::Street, &c.street);
        // The house number and street name without the unit ("1200 brickell" of "1200 Brickell Ave Apt 1804").
        let street = Text::new(&c.street);
        if street.words.len() >= 2 {
            guard.words.push((PiiKind::Street, street.words[..2].to_vec()));
        }
        if let Some((local, domain)) = c.email.split_once('@') {
            guard.name(PiiKind::Email, local);
            let whole = format!("{}{}", Text::new(local).joined, Text::new(domain).joined);
            guard.joined.push((PiiKind::Email, whole));
        }
        guard.digit_needle(PiiKind::Zip5, &c.zip5, false);
        let phone: String = c.phone.chars().filter(char::is_ascii_digit).collect();
        let phone = if phone.len() == 11 && phone.starts_with('1') { phone[1..].to_owned() } else { phone };
        if phone.len() == 10 {
            let reversed: String = phone.chars().rev().collect();
            guard.digit_needle(PiiKind::Phone, &reversed, true);
            // The local number alone identifies the consumer with the area code a buyer can guess from the ZIP.
            guard.digit_needle(PiiKind::Phone, &phone[3..], false);
            guard.digit_needle(PiiKind::Phone, &phone, true);
        }
        if let Ok(date) = super::age::parse_date_of_birth(&c.date_of_birth) {
            use chrono::Datelike;
            let (y, m, d) = (date.year() as u32, date.month(), date.day());
            guard.date_of_birth = Some((y, m, d));
            for compact in [format!("{y:04}{m:02}{d:02}"), format!("{m:02}{d:02}{y:04}"), format!("{d:02}{m:02}{y:04}")]
            {
                guard.digit_needle(PiiKind::DateOfBirth, &compact, true);
            }
            let short = y % 100;
            for compact in [
                format!("{m:02}{d:02}{short:02}"),
                format!("{d:02}{m:02}{short:02}"),
                format!("{short:02}{m:02}{d:02}"),
            ] {
                guard.digit_needle(PiiKind::DateOfBirth, &compact, false);
            }
        }
        if let Some(ip) = &consent.ip {
            let parts: Vec<u32> = ip.split('.').filter_map(|p| p.parse().ok()).collect();
            if let [a, b, c, d] = parts[..] {
                guard.ip = Some([a, b, c, d]);
                guard.digit_needle(PiiKind::Ip, &format!("{a:03}{b:03}{c:03}{d:03}"), true);
            }
        }
        guard.consent_ids(consent.trusted_form_url.as_deref(), consent.jornaya_leadid.as_deref());
        guard
    }

    /// The guard of a PII-free ping: no name, phone or email to search for, but its ZIP5 and consent identifiers (a
    /// buyer gets the ZIP3 and their presence only) and what the ping must derive from the request (`zip3`, `age`); the shapes of PII
    /// (phone-, email-, card-like values) are searched as in every ping.
    pub fn for_ping_request(request: &PingRequest, zip3: &str, age: u8) -> Self {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let derived = Derived {
            vertical: request.vertical.clone(),
            publisher_id: request.publisher_id.clone(),
            source_id: request.source_id.clone(),
            sub_id: request.sub_id.clone(),
            state: request.state.clone(),
            zip3: zip3.to_owned(),
            age,
            gender: request.gender,
            trusted_form: present(&request.trusted_form_url),
            jornaya: present(&request.jornaya_leadid),
            tcpa_text: request.tcpa_text,
        };
        let mut guard = PiiGuard::deriving(derived);
        // A ZIP5, when the ping gave one, reaches buyers only as its ZIP3.
        if request.zip.len() == 5 {
            guard.digit_needle(PiiKind::Zip5, &request.zip, false);
        }
        guard.consent_ids(request.trusted_form_url.as_deref(), request.jornaya_leadid.as_deref());
        guard
    }

    /// A guard of `derived` with nothing to search for yet.
    fn deriving(derived: Derived) -> Self {
        PiiGuard { derived, words: Vec::new(), joined: Vec::new(), digits: Vec::new(), date_of_birth: None, ip: None }
    }

    /// The consent identifiers: a buyer gets their presence, never the values.
    fn consent_ids(&mut self, trusted_form_url: Option<&str>, jornaya_leadid: Option<&str>) {
        // The certificate id alone identifies the consumer as well as the URL does.
        if let Some(cert) = trusted_form_url.and_then(|url| url.trim_end_matches('/').rsplit('/').next()) {
            self.id_needle(PiiKind::TrustedFormUrl, cert);
        }
        if let Some(id) = jornaya_leadid {
            self.id_needle(PiiKind::JornayaLeadid, id);
        }
    }

    /// A name-like value: its words in order, and (when long enough) its letters run together.
    fn name(&mut self, kind: PiiKind, value: &str) {
        let text = Text::new(value);
        if text.words.is_empty() || text.joined.chars().count() < 2 {
            return;
        }
        if text.joined.chars().count() >= JOINED_MIN {
            self.joined.push((kind, text.joined.clone()));
        }
        self.words.push((kind, text.words));
    }

    fn digit_needle(&mut self, kind: PiiKind, value: &str, anywhere: bool) {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 5 {
            self.digits.push(DigitNeedle { kind, digits, anywhere });
        }
    }

    /// An identifier (certificate, LeadiD): its letters and digits run together, when long enough to be unique.
    fn id_needle(&mut self, kind: PiiKind, value: &str) {
        let joined = Text::new(value).joined;
        if joined.len() >= 8 {
            self.joined.push((kind, joined));
        }
    }

    /// Every leak found in `ping`, by field, searching every extra key and value; empty when the ping is clean.
    pub fn check(&self, ping: &Ping) -> Vec<PiiLeak> {
        self.check_where(ping, |_| Scan::KeyAndValue)
    }

    /// Every leak found in `ping`, by field, searching each extra as `scan` says for its key (the vertical's extras
    /// schema knows which keys are the operator's and which values are a closed set); empty when the ping is clean.
    pub fn check_where(&self, ping: &Ping, scan: impl Fn(&str) -> Scan) -> Vec<PiiLeak> {
        let mut leaks = Vec::new();
        let d = &self.derived;
        let mut structural = |field: &str, ok: bool| {
            if !ok {
                leaks.push(PiiLeak { field: field.to_owned(), kind: PiiKind::NotDerived });
            }
        };
        structural("vertical", ping.vertical == d.vertical);
        structural("publisher_id", ping.publisher_id == d.publisher_id);
        structural("source_id", ping.source_id == d.source_id);
        // A redactor may leave the sub id out (a 0.1.0 redactor cannot pass it on), never change it.
        structural("sub_id", ping.sub_id.is_empty() || ping.sub_id == d.sub_id);
        structural("state", ping.state == d.state);
        structural("zip3", ping.zip3 == d.zip3);
        structural("age", ping.age == d.age);
        structural("gender", ping.gender.is_none() || ping.gender == d.gender);
        structural("consent.trusted_form", !ping.consent.trusted_form || d.trusted_form);
        structural("consent.jornaya", !ping.consent.jornaya || d.jornaya);
        structural("consent.tcpa_text", !ping.consent.tcpa_text || d.tcpa_text);
        // The publisher writes the source and sub ids itself: they are searched like free text.
        self.scan(&mut leaks, "source_id", &ping.source_id);
        self.scan(&mut leaks, "sub_id", &ping.sub_id);
        let mut searched = Vec::with_capacity(ping.extra.len());
        for (index, (key, value)) in ping.extra.iter().enumerate() {
            let how = scan(key);
            if how == Scan::Skip {
                continue;
            }
            searched.push(value.as_str());
            // A key that leaks is named by position: naming it would repeat the value.
            let position = format!("extra[key #{}]", index + 1);
            let before = leaks.len();
            if how == Scan::KeyAndValue {
                self.scan(&mut leaks, &position, key);
            }
            if leaks.len() == before {
                self.scan(&mut leaks, &format!("extra.{key}"), value);
            } else {
                self.scan(&mut leaks, &format!("{position} value"), value);
            }
        }
        if searched.len() > 1 && leaks.is_empty() {
            // A value split across extras: the values joined, in key order and in reverse key order.
            let forward = searched.concat();
            let backward: String = searched.iter().rev().copied().collect();
            self.scan(&mut leaks, "extra (joined)", &forward);
            if leaks.is_empty() {
                self.scan(&mut leaks, "extra (joined)", &backward);
            }
        }
        leaks
    }

    /// Searches one free-text value (a plugin's message, say) for the lead's PII: the kinds found, empty when clean.
    pub fn find_in(&self, value: &str) -> Vec<PiiKind> {
        let mut kinds = Vec::new();
        self.find(value, &mut kinds, 0);
        kinds
    }

    fn scan(&self, leaks: &mut Vec<PiiLeak>, field: &str, value: &str) {
        for kind in self.find_in(value) {
            leaks.push(PiiLeak { field: field.to_owned(), kind });
        }
    }

    /// The kinds found in `value`, in its normalised forms and in what its tokens decode to (`depth` levels deep).
    fn find(&self, value: &str, kinds: &mut Vec<PiiKind>, depth: u8) {
        if value.is_empty() {
            return;
        }
        let decoded = percent_decode(value);
        let text = Text::new(&decoded);
        self.find_in_text(&text, kinds);
        shapes(&text, &decoded, kinds);
        let reversed: String = decoded.chars().rev().collect();
        self.find_in_text(&Text::new(&reversed), kinds);
        if depth < 2 {
            for inner in decodings(&decoded) {
                self.find(&inner, kinds, depth + 1);
            }
        }
    }

    fn find_in_text(&self, text: &Text, kinds: &mut Vec<PiiKind>) {
        let mut add = |kind: PiiKind| {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        };
        for (kind, needle) in &self.words {
            if contains_words(&text.words, needle) || contains_words(&text.merged, needle) {
                add(*kind);
            }
        }
        for (kind, needle) in &self.joined {
            if text.joined.contains(needle.as_str()) || text.joined_without_at_dot.contains(needle.as_str()) {
                add(*kind);
            }
        }
        for needle in &self.digits {
            let digits = needle.digits.as_str();
            let found = if needle.anywhere || text.digits.len() <= digits.len() + 2 {
                text.digits.contains(digits)
            } else {
                text.digit_runs.iter().any(|run| run == digits)
            };
            if found {
                add(needle.kind);
            }
        }
        if let Some((year, month, day)) = self.date_of_birth
            && has_date(&text.numbers, year, month, day)
        {
            add(PiiKind::DateOfBirth);
        }
        if let Some(ip) = self.ip
            && text.numbers.windows(4).any(|w| w.iter().map(|n| n.value).eq(ip.iter().map(|o| u64::from(*o))))
        {
            add(PiiKind::Ip);
        }
    }
}

/// PII shapes that refuse a value whoever's they are: long digit runs and email addresses.
fn shapes(text: &Text, raw: &str, kinds: &mut Vec<PiiKind>) {
    let mut add = |kind: PiiKind| {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    };
    for run in &text.digit_runs {
        match run.len() {
            9 => add(PiiKind::SsnLike),
            13..=19 if luhn(run) => add(PiiKind::CardNumberLike),
            n if n >= 10 => add(PiiKind::PhoneLike),
            _ => {}
        }
    }
    let nfkc: String = raw.nfkc().collect();
    if let Some((local, domain)) = nfkc.split_once('@')
        && local.chars().next_back().is_some_and(char::is_alphanumeric)
        && domain.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-')).next().is_some_and(|d| {
            let labels: Vec<&str> = d.split('.').collect();
            labels.len() >= 2 && labels.iter().all(|l| !l.is_empty())
        })
    {
        add(PiiKind::EmailLike);
    }
    // "name at example dot com"
    let w = &text.words;
    if let Some(at) = w.iter().position(|t| t == "at").filter(|at| *at > 0)
        && let Some(dot) = w.iter().rposition(|t| t == "dot")
        && dot > at + 1
        && w.get(dot + 1).is_some_and(|tld| TLDS.contains(&tld.as_str()))
    {
        add(PiiKind::EmailLike);
    }
}

/// Top-level domains an email spelled out in words most often ends with.
const TLDS: &[&str] = &["com", "net", "org", "edu", "gov", "us", "io", "co", "info", "biz", "me"];

/// Whether `digits` passes the Luhn check of payment card numbers.
fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, ch) in digits.chars().rev().enumerate() {
        let Some(mut d) = ch.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Whether `haystack` holds `needle`'s tokens one after another.
fn contains_words(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the numbers hold the day, month and year of a date close together (`14 3 1968`, `march 14th 68`,
/// `the fourteenth of march nineteen sixty eight`).
fn has_date(numbers: &[Number], year: u32, month: u32, day: u32) -> bool {
    let (year, month, day) = (u64::from(year), u64::from(month), u64::from(day));
    let (century, short) = (year / 100, year % 100);
    for start in 0..numbers.len() {
        let window = &numbers[start..numbers.len().min(start + 5)];
        let has = |v: u64, month_name_ok: bool| window.iter().any(|n| n.value == v && (month_name_ok || !n.month));
        let year_here = has(year, false)
            || window.windows(2).any(|p| p[0].value == century && p[1].value == short)
            || window.iter().any(|n| n.value == short && n.digits == 2 && !n.month);
        let month_here = window.iter().any(|n| n.value == month);
        let day_here = has(day, false);
        if year_here && month_here && day_here && window.len() >= 3 {
            return true;
        }
    }
    false
}

/// A number read from a text: digits, a number word or a month name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Number {
    value: u64,
    /// How many digits it was written with (0 for words).
    digits: usize,
    /// It was a month name.
    month: bool,
}

/// A value's normalised forms.
#[derive(Debug, Default)]
struct Text {
    /// Letter runs and digit runs, lower case, skeletons of confusable letters, number words as digits.
    words: Vec<String>,
    /// `words` with runs of one-character tokens merged (`d e l g a d o` → `delgado`).
    merged: Vec<String>,
    /// Every letter and digit run together.
    joined: String,
    /// `joined` without the words `at` and `dot`.
    joined_without_at_dot: String,
    /// Every digit run together (letters and separators between them dropped).
    digits: String,
    /// Runs of digits separated by separators only (not letters), each run together.
    digit_runs: Vec<String>,
    /// The numbers in order.
    numbers: Vec<Number>,
}

impl Text {
    fn new(value: &str) -> Self {
        // Tokens: (text, is_digits); for each digit token, whether letters stood between it and the previous one.
        let mut raw_tokens: Vec<(String, bool)> = Vec::new();
        let mut separated_by_letters: Vec<bool> = Vec::new();
        let mut current = String::new();
        let mut current_digits = false;
        let mut letter_since_digits = false;
        let flush = |current: &mut String, digits: bool, tokens: &mut Vec<(String, bool)>| {
            if !current.is_empty() {
                tokens.push((std::mem::take(current), digits));
            }
        };
        for ch in value.nfkc() {
            for ch in ch.to_lowercase() {
                if let Some(d) = digit_value(ch) {
                    if !current_digits {
                        flush(&mut current, false, &mut raw_tokens);
                        separated_by_letters.push(letter_since_digits);
                        letter_since_digits = false;
                    }
                    current_digits = true;
                    current.push(char::from_digit(d, 10).unwrap_or('0'));
                } else if ch.is_alphabetic() {
                    if current_digits {
                        flush(&mut current, true, &mut raw_tokens);
                    }
                    current_digits = false;
                    letter_since_digits = true;
                    if ch.is_ascii() {
                        current.push(ch);
                    } else {
                        for s in unicode_security::confusable_detection::skeleton(ch.encode_utf8(&mut [0; 4])) {
                            current.extend(s.to_lowercase().filter(|c| c.is_alphanumeric()));
                        }
                    }
                } else {
                    flush(&mut current, current_digits, &mut raw_tokens);
                    current_digits = false;
                }
            }
        }
        flush(&mut current, current_digits, &mut raw_tokens);

        let mut text = Text::default();
        // Digit runs: consecutive digit tokens with no letter between them.
        let mut run = String::new();
        let mut digit_token_index = 0;
        for (token, is_digits) in &raw_tokens {
            if *is_digits {
                let letters_before = separated_by_letters.get(digit_token_index).copied().unwrap_or(true);
                digit_token_index += 1;
                if letters_before && !run.is_empty() {
                    text.digit_runs.push(std::mem::take(&mut run));
                }
                run.push_str(token);
            }
        }
        if !run.is_empty() {
            text.digit_runs.push(run);
        }

        // Number words become numbers; compounds (`sixty eight`) join.
        let mut words: Vec<String> = Vec::new();
        let mut i = 0;
        while i < raw_tokens.len() {
            let (token, is_digits) = &raw_tokens[i];
            if *is_digits {
                let value = token.parse::<u64>().unwrap_or(u64::MAX);
                text.numbers.push(Number { value, digits: token.len(), month: false });
                words.push(token.clone());
            } else if let Some(month) = month_number(token) {
                text.numbers.push(Number { value: month, digits: 0, month: true });
                words.push(token.clone());
            } else if let Some(value) = number_word(token) {
                let mut value = value;
                if (20..100).contains(&value)
                    && value % 10 == 0
                    && let Some(unit) = raw_tokens.get(i + 1).and_then(|(t, d)| (!d).then(|| number_word(t)).flatten())
                    && unit < 10
                {
                    value += unit;
                    i += 1;
                }
                text.numbers.push(Number { value, digits: 0, month: false });
                words.push(value.to_string());
            } else {
                words.push(token.clone());
            }
            i += 1;
        }
        for word in &words {
            text.joined.push_str(word);
            if word != "at" && word != "dot" {
                text.joined_without_at_dot.push_str(word);
            }
            text.digits.extend(word.chars().filter(char::is_ascii_digit));
        }
        let mut merged: Vec<String> = Vec::new();
        let mut single = String::new();
        for word in &words {
            if word.chars().count() == 1 {
                single.push_str(word);
            } else {
                if !single.is_empty() {
                    merged.push(std::mem::take(&mut single));
                }
                merged.push(word.clone());
            }
        }
        if !single.is_empty() {
            merged.push(single);
        }
        text.merged = merged;
        text.words = words;
        text
    }
}

/// The value of a decimal digit of any script (`٣`, `３`, `3`).
fn digit_value(ch: char) -> Option<u32> {
    if let Some(d) = ch.to_digit(10) {
        return Some(d);
    }
    if !ch.is_numeric() {
        return None;
    }
    // Unicode's decimal digits come in blocks of ten, zero first: count back to the block's start.
    let code = ch as u32;
    (0..10).find(|steps| char::from_u32(code - steps - 1).is_none_or(|before| !before.is_numeric()))
}

/// A month's number from its English name or abbreviation.
fn month_number(word: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let index = FULL.iter().position(|m| *m == word).or_else(|| MONTHS.iter().position(|m| *m == word))?;
    Some(index as u64 + 1)
}

/// The value of an English number word, cardinal or ordinal (`oh` is zero, as in phone numbers).
fn number_word(word: &str) -> Option<u64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const ORDINALS: [&str; 20] = [
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    const TENTHS: [&str; 8] =
        ["twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth", "ninetieth"];
    if word == "oh" {
        return Some(0);
    }
    if let Some(i) = UNITS.iter().position(|w| *w == word).or_else(|| ORDINALS.iter().position(|w| *w == word)) {
        return Some(i as u64);
    }
    if let Some(i) = TENS.iter().position(|w| *w == word).or_else(|| TENTHS.iter().position(|w| *w == word)) {
        return Some(20 + 10 * i as u64);
    }
    // "14th", "1st" are digits followed by a suffix: the tokeniser already split them.
    None
}

/// `%40`-style escapes decoded (invalid escapes kept as they are).
fn percent_decode(value: &str) -> String {
    if !value.contains('%') {
        return value.to_owned();
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the value's base64 and hex tokens decode to, when that is text.
fn decodings(value: &str) -> Vec<String> {
    use base64::Engine;
    let mut found = Vec::new();
    let is_text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
            .map(str::to_owned)
    };
    for token in value.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))) {
        if token.len() < 8 {
            continue;
        }
        if token.len() % 2 == 0 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes: Option<Vec<u8>> =
                (0..token.len()).step_by(2).map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok()).collect();
            if let Some(text) = bytes.as_deref().and_then(is_text) {
                found.push(text);
            }
        }
        let trimmed = token.trim_end_matches('=');
        for engine in
            [&base64::engine::general_purpose::STANDARD_NO_PAD, &base64::engine::general_purpose::URL_SAFE_NO_PAD]
        {
            if let Some(text) = engine.decode(trimmed).ok().as_deref().and_then(is_text) {
                found.push(text);
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;

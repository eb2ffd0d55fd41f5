//! What the standard redactor keeps, reduces and drops, on a table of leads.

use pingpost_sdk::time::CivilDate;
use pingpost_sdk::{ConsentFlags, Gender, Lead, Ping, PingRequest, RedactContext, Redactor, UsState};

use crate::StandardRedactor;

/// 2024-03-10T12:00:00Z.
fn noon_2024_03_10() -> i64 {
    CivilDate { year: 2024, month: 3, day: 10 }.days_since_epoch() * 86_400_000 + 12 * 3_600_000
}

fn lead() -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        first_name: "Maria".into(),
        last_name: "Lopez".into(),
        phone: "3055550142".into(),
        email: "maria.lopez@example.com".into(),
        street: "1200 Brickell Ave".into(),
        city: "Miami".into(),
        state: "FL".into(),
        zip5: "33131".into(),
        date_of_birth: "1984-03-10".into(),
        gender: Some(Gender::Female),
        trusted_form_url: Some("https://cert.trustedform.com/0123456789abcdef".into()),
        jornaya_leadid: Some("5C1A2B3D-0000-4E5F-8A9B-112233445566".into()),
        tcpa_text: Some("By clicking Submit I agree to be contacted...".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        publisher_id: "pub-7".into(),
        source_id: "google-cpc".into(),
        sub_id: "ad-set-4".into(),
        extra: vec![("coverage_type".into(), "family".into()), ("household_size".into(), "4".into())],
    }
}

fn redact(config: &str, lead: &Lead) -> Result<Ping, String> {
    let redactor = StandardRedactor::new(config).unwrap_or_else(|e| panic!("config refused: {e}"));
    let context = RedactContext { now_unix_ms: noon_2024_03_10() };
    redactor.redact(lead, &context)
}

#[test]
fn a_full_lead_becomes_a_ping_without_pii() {
    let ping = redact("{}", &lead()).expect("a valid lead");
    let expected = Ping {
        vertical: "health-insurance".into(),
        state: UsState::Fl,
        zip3: 331,
        age: 40,
        gender: Some(Gender::Female),
        consent: ConsentFlags { trusted_form: true, jornaya: true, tcpa_text: true },
        publisher_id: "pub-7".into(),
        source_id: "google-cpc".into(),
        sub_id: "ad-set-4".into(),
        extra: String::new(),
    };
    assert_eq!(ping, expected);
}

/// The PII-free ping of the same consumer as [`lead`].
fn request() -> PingRequest {
    PingRequest {
        vertical: "health-insurance".into(),
        state: "fl".into(),
        zip: "331".into(),
        age: 40,
        gender: Some(Gender::Female),
        trusted_form_url: lead().trusted_form_url,
        jornaya_leadid: None,
        tcpa_text: true,
        publisher_id: "pub-7".into(),
        source_id: "google-cpc".into(),
        sub_id: "ad-set-4".into(),
        extra: vec![("coverage_type".into(), "family".into()), ("household_size".into(), "4".into())],
    }
}

#[test]
fn a_ping_request_gets_the_same_rules_as_a_lead() {
    let redactor = StandardRedactor::new(r#"{"allow_extra": ["coverage_type"]}"#).expect("a valid config");
    let context = RedactContext { now_unix_ms: noon_2024_03_10() };
    let from_request = redactor.redact_ping(&request(), &context).expect("a valid request");
    let from_lead = redactor.redact(&Lead { jornaya_leadid: None, ..lead() }, &context).expect("a valid lead");
    assert_eq!(from_request, from_lead);
    let five = PingRequest { zip: "33131".into(), ..request() };
    assert_eq!(redactor.redact_ping(&five, &context).map(|p| p.zip3), Ok(331));
    for zip in ["33", "3313", "3a1", "33131-12"] {
        let bad = PingRequest { zip: zip.into(), ..request() };
        assert!(redactor.redact_ping(&bad, &context).is_err(), "{zip}");
    }
    let bad_state = PingRequest { state: "PR".into(), ..request() };
    assert!(redactor.redact_ping(&bad_state, &context).is_err());
}

#[test]
fn no_personal_value_survives_in_the_ping() {
    let lead = lead();
    let ping = redact(r#"{"allow_extra": ["coverage_type", "household_size"]}"#, &lead).expect("a valid lead");
    let text = format!("{ping:?}");
    let personal = [
        &lead.first_name,
        &lead.last_name,
        &lead.phone,
        &lead.email,
        &lead.street,
        &lead.city,
        &lead.zip5,
        &lead.date_of_birth,
    ];
    let optional = [&lead.trusted_form_url, &lead.jornaya_leadid, &lead.tcpa_text, &lead.ip, &lead.user_agent];
    for value in personal.into_iter().chain(optional.into_iter().flatten()) {
        assert!(!text.contains(value.as_str()), "{value:?} leaked into {text}");
    }
}

#[test]
fn only_allowed_extra_keys_are_copied() {
    let allowed = |config: &str| redact(config, &lead()).map(|p| p.extra);
    assert_eq!(allowed(""), Ok(String::new()));
    assert_eq!(allowed(r#"{"allow_extra": ["coverage_type"]}"#), Ok("coverage_type=family".to_owned()));
    assert_eq!(
        allowed(r#"{"allow_extra": ["household_size", "coverage_type"]}"#),
        Ok("coverage_type=family&household_size=4".to_owned())
    );
    assert_eq!(allowed(r#"{"allow_extra": ["not_on_the_lead"]}"#), Ok(String::new()));
}

#[test]
fn reduces_a_table_of_leads() {
    type Row = (&'static str, fn(&mut Lead), Result<(u8, u16, UsState, [bool; 3]), &'static str>);
    let rows: [Row; 12] = [
        ("birthday today", |_| {}, Ok((40, 331, UsState::Fl, [true, true, true]))),
        (
            "birthday tomorrow",
            |l| l.date_of_birth = "1984-03-11".into(),
            Ok((39, 331, UsState::Fl, [true, true, true])),
        ),
        ("ZIP+4", |l| l.zip5 = "02134-1234".into(), Ok((40, 21, UsState::Fl, [true, true, true]))),
        ("lower-case state", |l| l.state = " tx ".into(), Ok((40, 331, UsState::Tx, [true, true, true]))),
        (
            "blank evidence is absent",
            |l| {
                l.trusted_form_url = Some("  ".into());
                l.jornaya_leadid = None;
            },
            Ok((40, 331, UsState::Fl, [false, false, true])),
        ),
        ("malformed date of birth", |l| l.date_of_birth = "03/10/1984".into(), Err("date_of_birth")),
        ("impossible date of birth", |l| l.date_of_birth = "1984-02-30".into(), Err("date_of_birth")),
        ("date of birth in the future", |l| l.date_of_birth = "2030-01-01".into(), Err("date_of_birth")),
        ("four-digit ZIP", |l| l.zip5 = "3313".into(), Err("zip5")),
        ("ZIP with letters", |l| l.zip5 = "33A31".into(), Err("zip5")),
        ("state name instead of code", |l| l.state = "Florida".into(), Err("state")),
        ("a territory", |l| l.state = "PR".into(), Err("state")),
    ];
    for (name, change, expected) in rows {
        let mut l = lead();
        change(&mut l);
        let got = redact("{}", &l)
            .map(|p| (p.age, p.zip3, p.state, [p.consent.trusted_form, p.consent.jornaya, p.consent.tcpa_text]));
        match (got, expected) {
            (Ok((age, zip3, state, consent)), Ok(want)) => {
                assert_eq!((age, zip3, state, consent), want, "{name}")
            }
            (Err(message), Err(field)) => assert!(message.starts_with(field), "{name}: {message}"),
            (got, want) => panic!("{name}: got {got:?}, expected {want:?}"),
        }
    }
}

#[test]
fn errors_never_repeat_the_personal_value() {
    let mut l = lead();
    l.date_of_birth = "1984-13-45".into();
    l.zip5 = "ABCDE".into();
    let message = redact("{}", &l).expect_err("bad date of birth");
    assert!(!message.contains("1984-13-45"), "{message}");
}

#[test]
fn bad_configs_are_refused() {
    for config in [r#"{"allow": ["x"]}"#, r#"{"allow_extra": "coverage_type"}"#, "not json"] {
        assert!(StandardRedactor::new(config).is_err(), "accepted {config}");
    }
}

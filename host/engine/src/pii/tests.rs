use std::collections::BTreeMap;

use base64::Engine;

use super::*;
use pingpost_model::{Consent, ConsentFlags, Consumer, Gender};

fn lead() -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: "aff-12".into(),
        consumer: Consumer {
            first_name: "Maria".into(),
            last_name: "Delgado".into(),
            phone: "+13055550142".into(),
            email: "maria.delgado@example.com".into(),
            street: "1200 Brickell Ave Apt 1804".into(),
            city: "Miami".into(),
            state: "FL".into(),
            zip5: "33131".into(),
            date_of_birth: "1968-03-14".into(),
            gender: Some(Gender::Female),
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

fn guard() -> PiiGuard {
    PiiGuard::for_lead(&lead(), 58)
}

fn clean_ping() -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 58,
        gender: Some(Gender::Female),
        consent: ConsentFlags { trusted_form: true, jornaya: true, tcpa_text: true },
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: "aff-12".into(),
        ..Ping::default()
    }
}

fn kinds_in_extra(value: &str) -> Vec<PiiKind> {
    let mut ping = clean_ping();
    ping.extra.insert("note".into(), value.into());
    guard().check(&ping).into_iter().map(|leak| leak.kind).collect()
}

#[test]
fn a_clean_ping_passes() {
    assert!(guard().check(&clean_ping()).is_empty());
}

#[test]
fn a_ping_may_drop_what_it_likes() {
    let mut ping = clean_ping();
    ping.gender = None;
    ping.consent = ConsentFlags::default();
    ping.sub_id = String::new();
    assert!(guard().check(&ping).is_empty());
}

#[test]
fn every_core_field_must_be_what_the_exchange_derives_from_the_lead() {
    type Change = (&'static str, fn(&mut Ping));
    let changes: [Change; 10] = [
        ("vertical", |p| p.vertical = "health-insurance 3055550142".into()),
        ("publisher_id", |p| p.publisher_id = "pub-2".into()),
        ("source_id", |p| p.source_id = "maria".into()),
        ("sub_id", |p| p.sub_id = "aff-13".into()),
        ("state", |p| p.state = "GA".into()),
        ("zip3", |p| p.zip3 = "305".into()),
        ("age", |p| p.age = 14),
        ("gender", |p| p.gender = Some(Gender::Male)),
        ("consent.tcpa_text", |_| {}),
        ("consent.jornaya", |_| {}),
    ];
    for (field, change) in changes.iter().take(8) {
        let mut ping = clean_ping();
        change(&mut ping);
        let leaks = guard().check(&ping);
        assert!(leaks.contains(&PiiLeak { field: (*field).into(), kind: PiiKind::NotDerived }), "{field}: {leaks:?}");
    }
    // A consent flag the lead has no evidence for.
    let mut lead = lead();
    lead.consent.jornaya_leadid = None;
    lead.consent.tcpa_text = None;
    let leaks = PiiGuard::for_lead(&lead, 58).check(&clean_ping());
    for (field, _) in &changes[8..] {
        assert!(leaks.contains(&PiiLeak { field: (*field).into(), kind: PiiKind::NotDerived }), "{field}: {leaks:?}");
    }
}

/// The spellings a hostile redactor used to carry the consumer's PII to every buyer, and more of the same classes.
#[test]
fn no_spelling_of_the_consumers_pii_passes() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let cases: Vec<(String, PiiKind)> = vec![
        ("305_555_0142".into(), PiiKind::Phone),
        ("305/555/0142".into(), PiiKind::Phone),
        ("305,555,0142".into(), PiiKind::Phone),
        ("305·555·0142".into(), PiiKind::Phone),
        ("305\u{200b}555\u{200b}0142".into(), PiiKind::Phone),
        ("３０５５５５０１４２".into(), PiiKind::Phone),
        ("٣٠٥٥٥٥٠١٤٢".into(), PiiKind::Phone),
        ("three zero five five five five zero one four two".into(), PiiKind::Phone),
        ("three oh five, five five five, oh one four two".into(), PiiKind::Phone),
        ("3055550143".into(), PiiKind::PhoneLike),
        (b64("3055550142"), PiiKind::Phone),
        (b64("call 305 555 0142"), PiiKind::Phone),
        (hex("3055550142"), PiiKind::Phone),
        (hex("maria.delgado@example.com"), PiiKind::Email),
        ("2410555503".into(), PiiKind::Phone),
        ("3a0b5c5d5e5f0g1h4i2".into(), PiiKind::Phone),
        ("305 555 0142".into(), PiiKind::Phone),
        ("+1 (305) 555-0142".into(), PiiKind::Phone),
        ("555-0142".into(), PiiKind::Phone),
        ("maria dot delgado at example dot com".into(), PiiKind::Email),
        ("maria%2Edelgado%40example%2Ecom".into(), PiiKind::Email),
        ("MARIA.DELGADO@EXAMPLE.COM".into(), PiiKind::Email),
        ("M\u{430}ria".into(), PiiKind::FirstName),
        ("Ｍａｒｉａ".into(), PiiKind::FirstName),
        ("odagleD".into(), PiiKind::LastName),
        ("D e l g a d o".into(), PiiKind::LastName),
        ("d-e-l-g-a-d-o".into(), PiiKind::LastName),
        ("xXdelgadoXx".into(), PiiKind::LastName),
        ("1200 BRICKELL AVE".into(), PiiKind::Street),
        ("1200 Brickell Avenue".into(), PiiKind::Street),
        ("203.000.113.007".into(), PiiKind::Ip),
        ("203 0 113 7".into(), PiiKind::Ip),
        ("March fourteenth, nineteen sixty-eight".into(), PiiKind::DateOfBirth),
        ("the 14th of march 1968".into(), PiiKind::DateOfBirth),
        ("3/14/68".into(), PiiKind::DateOfBirth),
        ("14.03.1968".into(), PiiKind::DateOfBirth),
        ("19680314".into(), PiiKind::DateOfBirth),
        ("zip33131".into(), PiiKind::Zip5),
        ("3 3 1 3 1".into(), PiiKind::Zip5),
        ("0123456789ABCDEF0123456789ABCDEF".into(), PiiKind::TrustedFormUrl),
        ("leadid abcdef 123456".into(), PiiKind::JornayaLeadid),
        ("123-45-6789".into(), PiiKind::SsnLike),
        ("4111 1111 1111 1111".into(), PiiKind::CardNumberLike),
        ("someone@elsewhere.org".into(), PiiKind::EmailLike),
        ("someone at elsewhere dot org".into(), PiiKind::EmailLike),
    ];
    for (value, kind) in cases {
        let kinds = kinds_in_extra(&value);
        assert!(kinds.contains(&kind), "{value:?}: expected {kind:?}, found {kinds:?}");
    }
}

#[test]
fn pii_split_across_two_extras_is_found_in_the_values_joined() {
    let mut ping = clean_ping();
    ping.extra.insert("a".into(), "305555".into());
    ping.extra.insert("b".into(), "0142".into());
    let leaks = guard().check(&ping);
    assert!(leaks.contains(&PiiLeak { field: "extra (joined)".into(), kind: PiiKind::Phone }), "{leaks:?}");
}

#[test]
fn a_pii_extra_key_is_named_by_position_not_by_its_text() {
    let mut ping = clean_ping();
    ping.extra.insert("3055550142".into(), "1".into());
    let leaks = guard().check(&ping);
    assert!(!leaks.is_empty() && leaks.iter().all(|l| l.field == "extra[key #1]"), "{leaks:?}");
}

#[test]
fn ordinary_extras_pass() {
    for value in [
        "2",
        "no",
        "yes",
        "individual",
        "family",
        "Mariano",
        "1968",
        "FL",
        "household of 4",
        "3 cars",
        "v1.2.3",
        "331312 and 433131",
        "550",
        "excellent",
        "single_family",
    ] {
        assert!(kinds_in_extra(value).is_empty(), "{value}: {:?}", kinds_in_extra(value));
    }
}

#[test]
fn a_short_name_matches_only_as_a_word() {
    let mut lead = lead();
    lead.consumer.first_name = "Al".into();
    lead.consumer.state = "AL".into();
    let guard = PiiGuard::for_lead(&lead, 58);
    assert_eq!(guard.find_in("health plan"), Vec::<PiiKind>::new());
    assert_eq!(guard.find_in("ask for al"), vec![PiiKind::FirstName]);
}

#[test]
fn free_text_is_searched_the_same_way() {
    assert_eq!(guard().find_in("rejected: 305-555-0142 is disconnected"), vec![PiiKind::Phone, PiiKind::PhoneLike]);
    assert!(guard().find_in("rejected: out of area").is_empty());
}

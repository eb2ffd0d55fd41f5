//! The PII guard on the hot path: building the guard from a lead and checking a ping, for the Florida lead and its
//! standard-redactor ping (two extras), and for a ping whose extras hold free text; each check alone, and as the
//! engine runs it: the vertical's extras schema first, then the value layer on the values the schema leaves open.
//! `cargo bench -p pingpost --bench pii_guard`; figures in BENCHMARKS.md ("PII guard").

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pingpost::auction::{ExtraField, PiiGuard, Vertical, Verticals};
use pingpost::model::{ConsentFlags, Gender, Lead, Ping};

fn florida_lead() -> Lead {
    let path = pingpost_plugins::workspace_root().join("examples/florida/lead.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the Florida lead")).expect("a lead")
}

fn ping(lead: &Lead, extra: &[(&str, &str)]) -> Ping {
    Ping {
        vertical: lead.vertical.clone(),
        state: lead.consumer.state.clone(),
        zip3: lead.consumer.zip5[..3].to_owned(),
        age: 58,
        gender: Some(Gender::Female),
        consent: ConsentFlags { trusted_form: true, jornaya: false, tcpa_text: true },
        publisher_id: lead.publisher_id.clone(),
        source_id: lead.source_id.clone(),
        sub_id: String::new(),
        extra: extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}

fn bench(c: &mut Criterion) {
    let lead = florida_lead();
    let standard = ping(&lead, &[("household_size", "2"), ("currently_insured", "false")]);
    let free_text = ping(
        &lead,
        &[("agent_note", "prefers a call after five in the afternoon"), ("household_size", "2"), ("plan", "ppo")],
    );
    assert!(PiiGuard::for_lead(&lead, 58).check(&standard).is_empty());
    assert!(PiiGuard::for_lead(&lead, 58).check(&free_text).is_empty());
    let mut group = c.benchmark_group("pii_guard");
    group.bench_function("for_lead", |b| b.iter(|| black_box(PiiGuard::for_lead(black_box(&lead), 58))));
    let guard = PiiGuard::for_lead(&lead, 58);
    group.bench_function("check_standard_ping", |b| b.iter(|| black_box(guard.check(black_box(&standard)))));
    group.bench_function("check_free_text_ping", |b| b.iter(|| black_box(guard.check(black_box(&free_text)))));
    let mut verticals = Vertical::builtin();
    verticals[0].extras.insert("agent_note".into(), ExtraField::FreeText { max_len: 120 });
    verticals[0].extras.insert("plan".into(), ExtraField::Enum { values: vec!["ppo".into(), "hmo".into()] });
    let verticals = Verticals::new(&verticals).expect("valid verticals");
    let rules = verticals.get("health-insurance").expect("built in");
    let engine_check = |ping: &Ping| {
        let mut leaks = rules.check_ping_extras(&ping.extra);
        if leaks.is_empty() {
            leaks = guard.check_where(ping, |key| rules.scan(key));
        }
        leaks
    };
    assert!(engine_check(&standard).is_empty() && engine_check(&free_text).is_empty());
    group.bench_function("schema_then_guard_standard_ping", |b| {
        b.iter(|| black_box(engine_check(black_box(&standard))))
    });
    group.bench_function("schema_then_guard_free_text_ping", |b| {
        b.iter(|| black_box(engine_check(black_box(&free_text))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

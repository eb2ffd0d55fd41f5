//! Property test of the whole engine over generated leads and random buyer sets.
//!
//! Properties, for every lead: no buyer except one the engine posted to ever receives any of the lead's PII values
//! (checked on everything each Wasm buyer was given — config-buyer's `echo_input` log of its ping and context — and
//! on every request body a real HTTP buyer on 127.0.0.1 received); exclusive and waterfall leads are sold at most
//! once, shared leads to at most N distinct buyers; no sale is under the floor; a ping that would leak PII through a
//! leaky redactor config is never sent. For every buyer set: no cap is exceeded although each case's leads run as
//! concurrent auctions on a multi-threaded runtime, and no reservation is left open.
//!
//! Size (debug build, 2 cores): 2,000 cases × 5 leads = 10,000 leads; 1 case in 8 also has HTTP buyers. The file
//! runs in about the time printed by `cargo test -p pingpost --test auction_property -- --nocapture` (see the
//! engine report); raise `CASES` locally for a longer soak.

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;
#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use auction_fixture::{NOW, pii_in};
use http_buyer_server::{BuyerServer, Recorded, Reply, Route};
use pingpost::auction::{
    Buyer, Campaign, CampaignStatus, CampaignTarget, Caps, Delivery, EngineSettings, ExchangeBuilder, ExchangeConfig,
    ExchangeParts, Exclusivity, ExtraField, HttpBuyerClient, LeadOptions, MemoryStore, Outcome, OutcomeStatus,
    Publisher, STANDARD_REDACTOR, Schedule, SeededIds, SelectionMode, Vertical,
};
use pingpost::clock::ManualClock;
use pingpost::model::{Consent, Consumer, Lead};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::json;

/// Generated cases; each runs `LEADS_PER_CASE` leads, so 10,000 leads in all.
const CASES: u32 = 2_000;
const LEADS_PER_CASE: usize = 5;

#[derive(Debug, Clone)]
struct CampaignSpec {
    buyer: u8,
    price_cents: u32,
    tier: u32,
    daily_cap: Option<u32>,
    buys_florida_only: bool,
    exclusive_only: bool,
    http: bool,
}

#[derive(Debug, Clone)]
enum Note {
    Absent,
    Clean,
    Phone,
    Email,
    LastName,
}

#[derive(Debug, Clone)]
struct LeadSpec {
    first: String,
    last: String,
    phone: u32,
    email_user: String,
    birth: (i32, u32, u32),
    zip5: u32,
    state: &'static str,
    ip: (u8, u8, u8),
    note: Note,
    invalid_phone: bool,
}

#[derive(Debug, Clone)]
struct CaseSpec {
    mode: SelectionMode,
    shared_n: u32,
    lead_n: Option<u32>,
    floor_cents: u32,
    leaky_redactor: bool,
    with_http: bool,
    campaigns: Vec<CampaignSpec>,
    leads: Vec<LeadSpec>,
}

fn name() -> impl Strategy<Value = String> {
    // Names start with Q, a letter no JSON key or config of this test contains, so a hit is a real leak.
    "[a-z]{5,9}".prop_map(|rest| format!("Q{rest}"))
}

fn campaign_spec() -> impl Strategy<Value = CampaignSpec> {
    (
        0u8..4,
        prop_oneof![Just(0u32), 1u32..3_000],
        1u32..=3,
        proptest::option::weighted(0.4, 1u32..=3),
        any::<bool>(),
        proptest::bool::weighted(0.15),
        any::<bool>(),
    )
        .prop_map(|(buyer, price_cents, tier, daily_cap, buys_florida_only, exclusive_only, http)| CampaignSpec {
            buyer,
            price_cents,
            tier,
            daily_cap,
            buys_florida_only,
            exclusive_only,
            http,
        })
}

fn lead_spec() -> impl Strategy<Value = LeadSpec> {
    let note = prop_oneof![4 => Just(Note::Absent), 3 => Just(Note::Clean), 1 => Just(Note::Phone), 1 => Just(Note::Email), 1 => Just(Note::LastName)];
    (
        name(),
        name(),
        0u32..10_000_000,
        "[a-z]{4,10}",
        (1936i32..2007, 1u32..=12, 1u32..=28),
        10_000u32..99_999,
        prop_oneof![Just("FL"), Just("TX"), Just("GA")],
        (1u8..=254, 0u8..=255, 1u8..=254),
        note,
        proptest::bool::weighted(0.05),
    )
        .prop_map(|(first, last, phone, email_user, birth, zip5, state, ip, note, invalid_phone)| LeadSpec {
            first,
            last,
            phone,
            email_user,
            birth,
            zip5,
            state,
            ip,
            note,
            invalid_phone,
        })
}

fn case_spec() -> impl Strategy<Value = CaseSpec> {
    let mode = prop_oneof![Just(SelectionMode::Exclusive), Just(SelectionMode::Waterfall), Just(SelectionMode::Shared)];
    (
        mode,
        1u32..=4,
        proptest::option::weighted(0.3, 1u32..=4),
        prop_oneof![Just(0u32), 0u32..600],
        any::<bool>(),
        proptest::bool::weighted(0.125),
        proptest::collection::vec(campaign_spec(), 1..=6),
        proptest::collection::vec(lead_spec(), LEADS_PER_CASE),
    )
        .prop_map(|(mode, shared_n, lead_n, floor_cents, leaky_redactor, with_http, campaigns, leads)| CaseSpec {
            mode,
            shared_n,
            lead_n,
            floor_cents,
            leaky_redactor,
            with_http,
            campaigns,
            leads,
        })
}

fn lead_of(spec: &LeadSpec, n: usize) -> Lead {
    let phone = if spec.invalid_phone {
        "555-01".to_owned()
    } else {
        format!("(786) {:03}-{:04}", 200 + spec.phone / 10_000 % 800, spec.phone % 10_000)
    };
    let email = format!("{}.{n}@example.org", spec.email_user);
    let mut extra: std::collections::BTreeMap<String, String> =
        [("coverage_type".to_owned(), "family".to_owned())].into();
    let note = match spec.note {
        Note::Absent => None,
        Note::Clean => Some("prefers mornings".to_owned()),
        Note::Phone => Some(format!("call {phone}")),
        Note::Email => Some(format!("write to {email}")),
        Note::LastName => Some(format!("ask for mr {}", spec.last)),
    };
    extra.extend(note.map(|note| ("note".to_owned(), note)));
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub".into(),
        source_id: "src".into(),
        sub_id: String::new(),
        consumer: Consumer {
            first_name: spec.first.clone(),
            last_name: spec.last.clone(),
            phone,
            email,
            street: format!("{} {} Ave", 100 + spec.phone % 900, spec.last),
            city: "Miami".into(),
            state: spec.state.into(),
            zip5: format!("{:05}", spec.zip5),
            date_of_birth: format!("{:04}-{:02}-{:02}", spec.birth.0, spec.birth.1, spec.birth.2),
            gender: None,
        },
        consent: Consent {
            trusted_form_url: Some(format!("https://cert.trustedform.com/{:016x}{n:04}", spec.phone)),
            jornaya_leadid: None,
            tcpa_text: Some("I agree.".into()),
            ip: Some(format!("10.{}.{}.{}", spec.ip.0, spec.ip.1, spec.ip.2)),
            user_agent: None,
        },
        extra,
    }
}

/// The shared multi-threaded runtime and the HTTP buyer every HTTP campaign of every case talks to. The buyer bids
/// the price written in the campaign id (`h<index>-p<price>`) and accepts every post at the posted price.
fn shared() -> &'static (tokio::runtime::Runtime, BuyerServer) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, BuyerServer)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let server = runtime.block_on(BuyerServer::start(
            |body| {
                let price: u32 = body["campaign_id"]
                    .as_str()
                    .and_then(|id| id.rsplit("-p").next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                Reply::json(json!({"decision": "bid", "price_cents": price}))
            },
            |body| Reply::json(json!({"result": "accepted", "price_cents": body["price_cents"]})),
        ));
        (runtime, server)
    })
}

fn exchange_config(case: &CaseSpec, server: &BuyerServer) -> ExchangeConfig {
    let allow_extra = if case.leaky_redactor { json!(["coverage_type", "note"]) } else { json!(["coverage_type"]) };
    let publisher = Publisher {
        id: "pub".into(),
        redactor: STANDARD_REDACTOR.into(),
        redactor_config: json!({ "allow_extra": allow_extra }).to_string(),
        ping_deadline_ms: 10_000,
        post_deadline_ms: 10_000,
        floor_cents: case.floor_cents,
        margin_bps: 1_500,
        selection: case.mode,
        shared_max_buyers: case.shared_n,
        dedupe_window_days: 0,
        dedupe_scope: Default::default(),
        default_bid_ttl_ms: 60_000,
        status: Default::default(),
    };
    let buyers = (0..4)
        .map(|b| Buyer {
            id: format!("b{b}"),
            name: String::new(),
            time_zone: chrono_tz::America::Chicago,
            status: Default::default(),
            credit_limit_cents: None,
        })
        .collect();
    let campaigns = case
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let (id, target) = if case.with_http && spec.http {
                (format!("h{i}-p{}", spec.price_cents), CampaignTarget::Http(server.endpoints(10_000)))
            } else {
                let mut config = json!({ "base_price_cents": spec.price_cents, "echo_input": true, "floor_cents": 0 });
                if spec.buys_florida_only {
                    config["states"] = json!(["FL"]);
                }
                (
                    format!("w{i}"),
                    CampaignTarget::Wasm { plugin: "config-buyer".into(), config, delivery: Delivery::Pickup },
                )
            };
            Campaign {
                id,
                buyer_id: format!("b{}", spec.buyer),
                status: CampaignStatus::Active,
                tier: spec.tier,
                exclusivity: if spec.exclusive_only { Exclusivity::ExclusiveOnly } else { Exclusivity::SharedAllowed },
                caps: Caps { leads_per_day: spec.daily_cap, ..Caps::default() },
                schedule: Schedule::default(),
                sources: Default::default(),
                paused_by_buyer: false,
                suppression_days: 0,
                max_bid_cents: None,
                target,
            }
        })
        .collect();
    // `note` is a free-text extra, so what keeps a leaky note from the buyers is the PII guard's value layer.
    let mut verticals = Vertical::builtin();
    for vertical in &mut verticals {
        vertical.extras.insert("note".into(), ExtraField::FreeText { max_len: 256 });
    }
    ExchangeConfig { verticals, publishers: vec![publisher], buyers, campaigns }
}

/// What the generated population exercised, so the properties are known not to hold vacuously.
#[derive(Default)]
struct Seen {
    sold: AtomicU64,
    shared_multi: AtomicU64,
    unsold: AtomicU64,
    rejected: AtomicU64,
    pii_refused: AtomicU64,
    cap_stops: AtomicU64,
    http_pings: AtomicU64,
    http_posts: AtomicU64,
}

fn seen() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(Seen::default)
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

fn check_case(case: &CaseSpec, seed: u64) -> Result<(), TestCaseError> {
    let (runtime, server) = shared();
    let store = Arc::new(MemoryStore::new());
    let parts = ExchangeParts {
        clock: Arc::new(ManualClock::new(NOW)),
        ids: Arc::new(SeededIds::new(seed)),
        store: store.clone(),
        http: HttpBuyerClient::with_default_client().map_err(|e| TestCaseError::fail(e.to_string()))?,
        settings: EngineSettings::default(),
    };
    let exchange = ExchangeBuilder::new(exchange_config(case, server))
        .plugin(STANDARD_REDACTOR, common::plugin("standard-redactor"))
        .plugin("config-buyer", common::plugin("config-buyer"))
        .build(common::runtime(), parts)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let exchange = Arc::new(exchange);
    let leads: Vec<Lead> = case.leads.iter().enumerate().map(|(n, spec)| lead_of(spec, n)).collect();
    let recorded_before = if case.with_http { server.recorded().len() } else { 0 };

    // The case's leads run as concurrent auctions.
    let options = LeadOptions { shared_max_buyers: case.lead_n, ..LeadOptions::default() };
    let outcomes: Vec<Outcome> = runtime.block_on(async {
        let tasks: Vec<_> = leads
            .iter()
            .cloned()
            .map(|lead| {
                let (exchange, options) = (exchange.clone(), options.clone());
                tokio::spawn(async move { exchange.run_lead_with(lead, options).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("auction task"));
        }
        outcomes
    });

    let max_buyers = match case.mode {
        SelectionMode::Shared => case.lead_n.map_or(case.shared_n, |n| n.min(case.shared_n)).max(1) as usize,
        _ => 1,
    };
    let recorded = store.all_sales().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut posted_to: HashMap<String, HashSet<String>> = HashMap::new();
    for (lead, outcome) in leads.iter().zip(&outcomes) {
        prop_assert!(
            outcome.status != OutcomeStatus::Error || !outcome.pii_leaks.is_empty(),
            "unexpected error: {:?}",
            outcome.reason
        );
        // What every Wasm buyer was given carries none of the lead's PII.
        for campaign in &outcome.trace.campaigns {
            for line in &campaign.logs {
                prop_assert_eq!(
                    pii_in(&line.message, lead),
                    Vec::<String>::new(),
                    "{} was given PII",
                    &campaign.campaign_id
                );
            }
        }
        // A leaky redactor config never gets a PII-bearing ping out.
        if !outcome.pii_leaks.is_empty() {
            prop_assert!(outcome.trace.campaigns.iter().all(|c| c.answer.is_none()));
        }
        let posted: HashSet<String> = outcome.trace.posts.iter().map(|p| p.campaign_id.clone()).collect();
        // The full lead went only to campaigns the engine posted to, and every recorded sale is a sale of the
        // outcome (and the other way round).
        let mut lead_sales: Vec<&str> =
            recorded.iter().filter(|s| s.lead_id == outcome.ping_id).map(|s| s.campaign_id.as_str()).collect();
        let mut outcome_sales: Vec<&str> = outcome.sales.iter().map(|s| s.campaign_id.as_str()).collect();
        lead_sales.sort_unstable();
        outcome_sales.sort_unstable();
        prop_assert_eq!(lead_sales, outcome_sales);
        // Sold at most once (exclusive, waterfall) or to at most N distinct buyers (shared), never under the floor.
        prop_assert!(outcome.sales.len() <= max_buyers, "{} sales, max {}", outcome.sales.len(), max_buyers);
        let buyers: HashSet<&str> = outcome.sales.iter().map(|s| s.buyer_id.as_str()).collect();
        prop_assert_eq!(buyers.len(), outcome.sales.len());
        for sale in &outcome.sales {
            prop_assert!(posted.contains(&sale.campaign_id));
            prop_assert!(sale.price_cents >= case.floor_cents.max(1));
            prop_assert_eq!(sale.margin_cents + sale.payout_cents, sale.price_cents);
        }
        posted_to.insert(outcome.ping_id.clone(), posted);
        let stats = seen();
        match outcome.status {
            OutcomeStatus::Sold => count(&stats.sold, 1),
            OutcomeStatus::Unsold => count(&stats.unsold, 1),
            OutcomeStatus::Rejected => count(&stats.rejected, 1),
            OutcomeStatus::Error => count(&stats.pii_refused, 1),
            OutcomeStatus::Duplicate => {}
        }
        count(&stats.shared_multi, usize::from(outcome.sales.len() > 1));
        let cap_stops = outcome
            .trace
            .campaigns
            .iter()
            .filter(|c| matches!(c.ineligible, Some(pingpost::auction::eligibility::Ineligible::CapReached { .. })))
            .count()
            + outcome
                .trace
                .posts
                .iter()
                .filter(|p| matches!(p.result, pingpost::auction::PostResult::CapReached { .. }))
                .count();
        count(&stats.cap_stops, cap_stops);
    }
    // No cap exceeded.
    for (i, spec) in case.campaigns.iter().enumerate() {
        if let Some(cap) = spec.daily_cap {
            let id = if case.with_http && spec.http { format!("h{i}-p{}", spec.price_cents) } else { format!("w{i}") };
            let sold = outcomes.iter().flat_map(|o| &o.sales).filter(|s| s.campaign_id == id).count();
            prop_assert!(sold <= cap as usize, "{} sold {} with cap {}", id, sold, cap);
        }
    }
    prop_assert_eq!(store.pending_reservations().map_err(|e| TestCaseError::fail(e.to_string()))?, 0);
    // What the HTTP buyer received: pings free of every lead's PII, posts only where the engine posted.
    if case.with_http {
        let recorded: Vec<Recorded> = server.recorded().split_off(recorded_before);
        for request in recorded {
            match request.route {
                Route::Ping => {
                    count(&seen().http_pings, 1);
                    for lead in &leads {
                        prop_assert_eq!(pii_in(&request.raw, lead), Vec::<String>::new());
                    }
                }
                Route::Post => {
                    count(&seen().http_posts, 1);
                    let ping_id = request.json["ping_id"].as_str().unwrap_or_default();
                    let campaign = request.json["campaign_id"].as_str().unwrap_or_default();
                    prop_assert!(
                        posted_to.get(ping_id).is_some_and(|p| p.contains(campaign)),
                        "unexpected post to {}",
                        campaign
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn no_pii_leaks_no_oversale_and_no_cap_overrun_over_ten_thousand_leads() {
    let started = std::time::Instant::now();
    let mut runner =
        TestRunner::new(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() });
    let seeds = AtomicU64::new(1);
    let result = runner.run(&case_spec(), |case| check_case(&case, seeds.fetch_add(1, Ordering::Relaxed)));
    if let Err(error) = result {
        panic!("{error}");
    }
    let s = seen();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let exercised = [
        ("sold", load(&s.sold)),
        ("sold to several buyers", load(&s.shared_multi)),
        ("unsold", load(&s.unsold)),
        ("rejected as invalid", load(&s.rejected)),
        ("refused by the PII guard", load(&s.pii_refused)),
        ("stopped by a cap", load(&s.cap_stops)),
        ("HTTP pings", load(&s.http_pings)),
        ("HTTP posts", load(&s.http_posts)),
    ];
    println!("{CASES} cases × {LEADS_PER_CASE} leads in {:.1} s: {exercised:?}", started.elapsed().as_secs_f64());
    for (what, n) in exercised {
        assert!(n > 0, "the generated population never exercised: {what}");
    }
}

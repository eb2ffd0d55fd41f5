//! Shared set-up for the auction engine tests: a real exchange over real Wasm plugins (config-buyer with
//! `echo_input`, standard-redactor), a [`MemoryStore`], a [`ManualClock`] and seeded ids, plus leads and campaigns.
//! Include with `#[path = "common/auction_fixture.rs"] mod auction_fixture;` next to `mod common;`.

#![allow(dead_code)] // Each test binary uses a different part of this helper.

use std::sync::Arc;

use pingpost::auction::{
    AuctionStore, Buyer, Campaign, CampaignStatus, CampaignTarget, Caps, Delivery, EngineSettings, Exchange,
    ExchangeBuilder, ExchangeConfig, ExchangeParts, Exclusivity, ExtraField, HttpBuyerClient, HttpEndpoints,
    MemoryStore, Outcome, Publisher, STANDARD_REDACTOR, Schedule, SeededIds, SelectionMode, Vertical,
};
use pingpost::clock::ManualClock;
use pingpost::model::{Consent, Consumer, Gender, Lead};
use serde_json::json;

use crate::common;

/// 2026-11-25 15:00 UTC, a Wednesday: 10:00 in New York.
pub const NOW: i64 = common::NOW;

/// A running exchange and handles on its injected parts.
pub struct Fixture {
    pub exchange: Exchange,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
}

/// Builds an exchange from `config` on the shared runtime with the first-party plugins.
pub fn build(config: ExchangeConfig) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(NOW));
    let exchange = build_on(config, store.clone(), clock.clone());
    Fixture { exchange, store, clock }
}

/// Builds an exchange from `config` over the given store and clock.
pub fn build_on(config: ExchangeConfig, store: Arc<dyn AuctionStore>, clock: Arc<ManualClock>) -> Exchange {
    let parts = ExchangeParts {
        clock,
        ids: Arc::new(SeededIds::new(42)),
        store,
        http: HttpBuyerClient::with_default_client().expect("HTTP client"),
        settings: EngineSettings::default(),
    };
    ExchangeBuilder::new(config)
        .plugin(STANDARD_REDACTOR, common::plugin("standard-redactor"))
        .plugin("config-buyer", common::plugin("config-buyer"))
        .plugin("hostile-buyer", common::plugin("hostile-buyer"))
        .build(common::runtime(), parts)
        .expect("the exchange builds")
}

/// The built-in verticals, with `agent_note` (free text, at most 120 characters) among health insurance's extras.
pub fn verticals_with_agent_note() -> Vec<Vertical> {
    let mut verticals = Vertical::builtin();
    let health = verticals.iter_mut().find(|v| v.name == "health-insurance").expect("built in");
    health.extras.insert("agent_note".into(), ExtraField::FreeText { max_len: 120 });
    verticals
}

/// An exchange config of one publisher and the given buyers and campaigns.
pub fn config(publisher: Publisher, buyers: &[&str], campaigns: Vec<Campaign>) -> ExchangeConfig {
    ExchangeConfig {
        verticals: vec![],
        publishers: vec![publisher],
        buyers: buyers.iter().map(|id| buyer(id)).collect(),
        campaigns,
    }
}

/// Publisher `pub-1` with the standard redactor, 10 % margin, no floor, no dedupe, a deadline generous enough for a
/// debug build on a busy 2-core machine.
pub fn publisher(selection: SelectionMode) -> Publisher {
    Publisher {
        id: "pub-1".into(),
        redactor: STANDARD_REDACTOR.into(),
        redactor_config: String::new(),
        ping_deadline_ms: 3_000,
        post_deadline_ms: 5_000,
        floor_cents: 0,
        margin_bps: 1_000,
        selection,
        shared_max_buyers: 3,
        dedupe_window_days: 0,
        dedupe_scope: Default::default(),
        default_bid_ttl_ms: 60_000,
        status: Default::default(),
    }
}

/// A buyer in New York.
pub fn buyer(id: &str) -> Buyer {
    Buyer {
        id: id.into(),
        name: format!("Buyer {id}"),
        time_zone: chrono_tz::America::New_York,
        status: Default::default(),
        credit_limit_cents: None,
    }
}

/// A config-buyer campaign bidding `price_cents` on everything, echoing its input, delivered by pick-up.
pub fn wasm_campaign(id: &str, buyer_id: &str, price_cents: u32) -> Campaign {
    wasm_campaign_with(id, buyer_id, json!({ "base_price_cents": price_cents, "echo_input": true }))
}

/// A config-buyer campaign with its own config (`echo_input` is the caller's choice), delivered by pick-up.
pub fn wasm_campaign_with(id: &str, buyer_id: &str, config: serde_json::Value) -> Campaign {
    campaign(id, buyer_id, CampaignTarget::Wasm { plugin: "config-buyer".into(), config, delivery: Delivery::Pickup })
}

/// A hostile-buyer campaign in `mode` (`loop`, `panic`, `ok`, ...), delivered by pick-up.
pub fn hostile_campaign(id: &str, buyer_id: &str, mode: &str) -> Campaign {
    campaign(
        id,
        buyer_id,
        CampaignTarget::Wasm { plugin: "hostile-buyer".into(), config: json!(mode), delivery: Delivery::Pickup },
    )
}

/// A config-buyer campaign that refuses Florida (rejects on geography), echoing its input.
pub fn rejecting_campaign(id: &str, buyer_id: &str) -> Campaign {
    wasm_campaign_with(id, buyer_id, json!({ "base_price_cents": 5000, "states": ["TX"], "echo_input": true }))
}

/// An HTTP campaign.
pub fn http_campaign(id: &str, buyer_id: &str, endpoints: HttpEndpoints) -> Campaign {
    campaign(id, buyer_id, CampaignTarget::Http(endpoints))
}

fn campaign(id: &str, buyer_id: &str, target: CampaignTarget) -> Campaign {
    Campaign {
        id: id.into(),
        buyer_id: buyer_id.into(),
        status: CampaignStatus::Active,
        tier: 1,
        exclusivity: Exclusivity::SharedAllowed,
        caps: Caps::default(),
        schedule: Schedule::default(),
        sources: Default::default(),
        paused_by_buyer: false,
        suppression_days: 0,
        max_bid_cents: None,
        target,
    }
}

/// A valid health-insurance lead from a 58-year-old Florida consumer; `n` makes the phone and email distinct.
pub fn lead(n: u32) -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: "src-7".into(),
        sub_id: String::new(),
        consumer: Consumer {
            first_name: "Zenobia".into(),
            last_name: "Quillfeather".into(),
            phone: format!("(305) 55{:01}-{:04}", n / 10_000 % 10, n % 10_000),
            email: format!("zenobia.q{n}@example.net"),
            street: "4410 Biscayne Blvd".into(),
            city: "Miami".into(),
            state: "FL".into(),
            zip5: "33137".into(),
            date_of_birth: "1968-03-14".into(),
            gender: Some(Gender::Female),
        },
        consent: Consent {
            trusted_form_url: Some(format!("https://cert.trustedform.com/4f2a9c1e0b7d{n:08}")),
            jornaya_leadid: Some(format!("JRN-77A1-{n:06}")),
            tcpa_text: Some("I agree to be contacted about health insurance.".into()),
            ip: Some("198.51.100.23".into()),
            user_agent: Some("Mozilla/5.0".into()),
        },
        extra: [("coverage_type".to_owned(), "family".to_owned())].into_iter().collect(),
    }
}

/// The lead's PII values in the spellings a careless system would send them, lower case, for substring checks that
/// do not rely on the engine's own guard.
pub fn pii_values(lead: &Lead) -> Vec<String> {
    let c = &lead.consumer;
    let digits: String = c.phone.chars().filter(char::is_ascii_digit).collect();
    let national = digits.strip_prefix('1').filter(|d| d.len() == 10).unwrap_or(&digits).to_owned();
    let mut values = vec![
        c.first_name.clone(),
        c.last_name.clone(),
        national,
        c.phone.clone(),
        c.email.clone(),
        c.street.clone(),
        c.zip5.clone(),
        c.date_of_birth.clone(),
    ];
    values.extend(lead.consent.ip.clone());
    values.extend(lead.consent.trusted_form_url.clone());
    values.extend(lead.consent.jornaya_leadid.clone());
    values.into_iter().filter(|v| !v.is_empty()).map(|v| v.to_lowercase()).collect()
}

/// The PII values of `lead` found in `text` as whole tokens (not inside a longer run of letters and digits, so a
/// ZIP code inside a timestamp does not count).
pub fn pii_in(text: &str, lead: &Lead) -> Vec<String> {
    let lower = text.to_lowercase();
    let glued = |ch: Option<char>| ch.is_some_and(|ch| ch.is_ascii_alphanumeric());
    pii_values(lead)
        .into_iter()
        .filter(|value| {
            lower.match_indices(value.as_str()).any(|(at, found)| {
                !glued(lower[..at].chars().next_back()) && !glued(lower[at + found.len()..].chars().next())
            })
        })
        .collect()
}

/// Everything each Wasm campaign was given in this auction (its `echo_input` log lines), by campaign id.
pub fn wasm_inputs(outcome: &Outcome) -> Vec<(String, String)> {
    outcome
        .trace
        .campaigns
        .iter()
        .flat_map(|c| c.logs.iter().map(move |line| (c.campaign_id.clone(), line.message.clone())))
        .collect()
}

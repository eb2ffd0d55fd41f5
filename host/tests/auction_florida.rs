//! The seed scenario (examples/florida) as a test: a 58-year-old Florida consumer asks for health insurance, 18
//! campaigns are pinged, 12 bid between $8 and $26, six reject on their own filters, the $26 buyer gets the post —
//! and, from what every buyer recorded, the other 17 saw no personal data while the winner got the full lead.
//!
//! It runs the example's own `exchange.toml`, `lead.json` and configs with real Wasm plugins built from `plugins/`
//! and real HTTP servers on 127.0.0.1 (the file's fixed ports are swapped for ephemeral ones). Every config-buyer
//! campaign gets `"echo_input": true`, so it logs, from inside the sandbox, exactly what it was given.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::exchange_file::ExchangeFile;
use pingpost::auction::trace::Answer;
use pingpost::auction::{
    CampaignTarget, EngineSettings, ExchangeParts, HttpBuyerClient, MemoryStore, Outcome, OutcomeStatus, SaleDelivery,
    SeededIds, Verticals, validate_lead,
};
use pingpost::clock::ManualClock;
use pingpost::model::{Lead, RejectCode};
use pingpost::plugin::{Runtime, RuntimeConfig};
use serde_json::{Value, json};

/// Wednesday 2026-11-25 10:00 in New York: the weekend-only campaign is closed; the consumer is 58.
const NOW_UNIX_MS: i64 = 1_795_618_800_000;

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/florida")
}

/// An HTTP buyer's own rules, as its server applies them: (vertical, states or empty for all, ages, price).
fn rules(campaign_id: &str) -> (&'static [&'static str], std::ops::RangeInclusive<u64>, u32) {
    match campaign_id {
        "sunshine-health-direct" => (&["FL"], 50..=64, 2600),
        "atlantic-brokers" => (&["FL", "GA", "SC", "NC", "VA"], 18..=64, 2200),
        "everglades-insure" => (&[], 21..=70, 1250),
        "medicare-advantage-now" => (&[], 65..=99, 3100),
        other => panic!("no HTTP buyer {other} in the scenario"),
    }
}

async fn http_buyer(campaign_id: &str) -> BuyerServer {
    let (states, ages, price) = rules(campaign_id);
    BuyerServer::start(
        move |body: &Value| {
            let ping = &body["ping"];
            let state = ping["state"].as_str().unwrap_or_default();
            let age = ping["age"].as_u64().unwrap_or_default();
            if ping["vertical"] != "health-insurance" {
                Reply::json(json!({"decision": "reject", "code": "vertical", "message": "health only"}))
            } else if !states.is_empty() && !states.contains(&state) {
                Reply::json(json!({"decision": "reject", "code": "geography", "message": "outside our states"}))
            } else if !ages.contains(&age) {
                Reply::json(json!({"decision": "reject", "code": "age", "message": "outside our ages"}))
            } else {
                Reply::json(json!({"decision": "bid", "price_cents": price}))
            }
        },
        |body: &Value| {
            Reply::json(json!({"result": "accepted", "price_cents": body["price_cents"], "buyer_lead_id": "crm-1"}))
        },
    )
    .await
}

/// Everything the scenario ran: the outcome, the HTTP buyers' servers, the store and the lead.
struct Run {
    outcome: Outcome,
    servers: BTreeMap<String, BuyerServer>,
    store: Arc<MemoryStore>,
    lead: Lead,
}

async fn run_scenario() -> Run {
    pingpost_plugins::build_all().expect("building the plugins");
    let mut file = ExchangeFile::read(example_dir().join("exchange.toml")).expect("the example's exchange file");
    let lead: Lead =
        serde_json::from_str(&std::fs::read_to_string(example_dir().join("lead.json")).unwrap()).expect("lead.json");

    let mut servers = BTreeMap::new();
    for campaign in &mut file.config.campaigns {
        match &mut campaign.target {
            CampaignTarget::Http(endpoints) => {
                let server = http_buyer(&campaign.id).await;
                let timeout_ms = endpoints.timeout_ms;
                *endpoints = server.endpoints(timeout_ms);
                servers.insert(campaign.id.clone(), server);
            }
            CampaignTarget::Wasm { plugin, config, .. } if plugin == "config-buyer" => {
                let mut parsed: Value = serde_json::from_str(config.as_str().expect("config from a file")).unwrap();
                parsed["echo_input"] = json!(true);
                *config = Value::String(parsed.to_string());
            }
            CampaignTarget::Wasm { .. } => {}
        }
    }

    let clock = Arc::new(ManualClock::new(NOW_UNIX_MS));
    let runtime = Runtime::with_clock(RuntimeConfig::default(), clock.clone()).expect("plugin runtime");
    let store = Arc::new(MemoryStore::new());
    let parts = ExchangeParts {
        clock,
        ids: Arc::new(SeededIds::new(58)),
        store: store.clone(),
        http: HttpBuyerClient::with_default_client().unwrap(),
        settings: EngineSettings::default(),
    };
    let exchange = file.build(&runtime, parts).expect("the example's exchange builds");
    let outcome = exchange.run_lead(lead.clone()).await;
    Run { outcome, servers, store, lead }
}

/// The lead's personal values, none of which a losing buyer may see.
fn pii_values(lead: &Lead) -> Vec<String> {
    let c = &lead.consumer;
    let mut values = vec![
        c.first_name.clone(),
        c.last_name.clone(),
        c.phone.clone(),
        c.email.clone(),
        c.street.clone(),
        c.zip5.clone(),
        c.date_of_birth.clone(),
    ];
    let consent = &lead.consent;
    values.extend(
        [&consent.ip, &consent.trusted_form_url, &consent.tcpa_text, &consent.user_agent]
            .into_iter()
            .flatten()
            .cloned(),
    );
    values
}

fn assert_no_pii(what: &str, text: &str, lead: &Lead) {
    for value in pii_values(lead) {
        assert!(!text.contains(&value), "{what} saw the consumer's {value:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_26_dollar_buyer_wins_among_12_bids_from_18_campaigns_and_only_it_sees_the_lead() {
    let Run { outcome, servers, store, lead } = run_scenario().await;
    let trace = &outcome.trace;

    // 18 campaigns, every one pinged.
    assert_eq!(trace.campaigns.len(), 18);
    assert!(trace.campaigns.iter().all(|c| c.ineligible.is_none() && c.answer.is_some()), "{trace:#?}");

    // 12 bids between $8 and $26.
    let mut bids: Vec<u32> = trace
        .campaigns
        .iter()
        .filter_map(|c| match c.answer {
            Some(Answer::Bid { price_cents, .. }) => Some(price_cents),
            _ => None,
        })
        .collect();
    bids.sort_unstable();
    assert_eq!(bids, [800, 950, 1100, 1250, 1400, 1500, 1650, 1800, 2000, 2200, 2400, 2600]);

    // Six reject on their own filters.
    let mut rejections: Vec<(String, RejectCode)> = trace
        .campaigns
        .iter()
        .filter_map(|c| match &c.answer {
            Some(Answer::Reject { code, .. }) => Some((c.campaign_id.clone(), *code)),
            _ => None,
        })
        .collect();
    rejections.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rejections,
        [
            ("autoquote-fl".to_owned(), RejectCode::Vertical),
            ("lonestar-health-tx".to_owned(), RejectCode::Geography),
            ("medicare-advantage-now".to_owned(), RejectCode::Age),
            ("verified-intent-health".to_owned(), RejectCode::Consent),
            ("weekend-callcenter".to_owned(), RejectCode::Schedule),
            ("young-adult-aca".to_owned(), RejectCode::Age),
        ]
    );

    // The $26 buyer is sold the lead, once.
    assert_eq!(outcome.status, OutcomeStatus::Sold);
    assert_eq!(outcome.sales.len(), 1);
    assert_eq!(outcome.sales[0].campaign_id, "sunshine-health-direct");
    assert_eq!(outcome.sales[0].price_cents, 2600);

    // The winner's server got the full lead (as validated: phone in E.164, email in lower case), at its price.
    let validated =
        validate_lead(&lead, NOW_UNIX_MS, true, &Verticals::default()).expect("the example lead is valid").lead;
    let winner_posts = servers["sunshine-health-direct"].posts();
    assert_eq!(winner_posts.len(), 1);
    assert_eq!(winner_posts[0]["lead"], serde_json::to_value(&validated).unwrap());
    assert_eq!(winner_posts[0]["price_cents"], 2600);

    // The three losing HTTP buyers were pinged once, with no PII, and posted nothing.
    let mut http_pings = Vec::new();
    for (campaign_id, server) in &servers {
        let recorded = server.recorded();
        let pings: Vec<_> = recorded.iter().filter(|r| r.route == http_buyer_server::Route::Ping).collect();
        assert_eq!(pings.len(), 1, "{campaign_id} pings");
        assert_no_pii(campaign_id, &pings[0].raw, &lead);
        http_pings.push(pings[0].json["ping"].clone());
        if campaign_id != "sunshine-health-direct" {
            assert!(server.posts().is_empty(), "{campaign_id} was posted the lead");
        }
    }

    // Every config-buyer campaign logged, from inside the sandbox, what it was given: the same redacted ping, no PII.
    let mut echoed = 0;
    for campaign in trace.campaigns.iter().filter(|c| !servers.contains_key(&c.campaign_id)) {
        for line in &campaign.logs {
            assert_no_pii(&campaign.campaign_id, &line.message, &lead);
        }
        if campaign.campaign_id == "scorecard-seniors-plus" {
            continue; // scorecard-buyer has no echo; its log lines were checked above
        }
        let echo: Value = campaign
            .logs
            .iter()
            .find_map(|line| serde_json::from_str::<Value>(&line.message).ok().filter(|v| v.get("ping").is_some()))
            .unwrap_or_else(|| panic!("{} logged no echo of its input: {:?}", campaign.campaign_id, campaign.logs));
        let mut ping = echo["ping"].clone();
        if ping["extra"] == json!({}) {
            ping.as_object_mut().unwrap().remove("extra");
        }
        assert_eq!(ping, http_pings[0], "{} was given a different ping than the HTTP buyers", campaign.campaign_id);
        echoed += 1;
    }
    assert_eq!(echoed, 13);
    assert_eq!(http_pings[0]["age"], 58);
    assert_eq!(http_pings[0]["state"], "FL");
    assert_eq!(http_pings[0]["zip3"], "331");

    // No Wasm campaign was kept the lead for pick-up: the winner is the only buyer that ever had it, by its post.
    let sales = store.all_sales().unwrap();
    assert_eq!(
        sales.iter().map(|s| (s.campaign_id.as_str(), &s.delivery)).collect::<Vec<_>>(),
        [("sunshine-health-direct", &SaleDelivery::Posted)]
    );
}

#[tokio::test]
async fn a_campaign_config_its_plugin_refuses_fails_the_exchange_file_naming_the_campaign() {
    pingpost_plugins::build_all().expect("building the plugins");
    let mut file = ExchangeFile::read(example_dir().join("exchange.toml")).expect("the example's exchange file");
    let campaign = file
        .config
        .campaigns
        .iter_mut()
        .find(|c| matches!(&c.target, CampaignTarget::Wasm { plugin, .. } if plugin == "config-buyer"))
        .expect("the example has a config-buyer campaign");
    let id = campaign.id.clone();
    if let CampaignTarget::Wasm { config, .. } = &mut campaign.target {
        *config = Value::String("{not json".into());
    }
    let clock = Arc::new(ManualClock::new(NOW_UNIX_MS));
    let runtime = Runtime::with_clock(RuntimeConfig::default(), clock.clone()).expect("plugin runtime");
    let parts = ExchangeParts {
        clock,
        ids: Arc::new(SeededIds::new(1)),
        store: Arc::new(MemoryStore::new()),
        http: HttpBuyerClient::with_default_client().unwrap(),
        settings: EngineSettings::default(),
    };
    let Err(error) = file.build(&runtime, parts) else {
        panic!("the campaign's config must be refused before any ping");
    };
    assert!(error.message.contains(&format!("campaign {id:?}")), "{error}");
    assert!(error.message.contains("refused its config"), "{error}");
}

//! A full auction of the Florida lead over 18 buyers, three ways in one run:
//!
//! - `wasm_run_lead`: the engine's one-shot auction with 18 Wasm campaigns (validate, redact with the standard
//!   redactor plugin, PII guard, eligibility, ping fan-out, select, post to pick-up delivery in the in-memory store);
//! - `wasm_ping`: the engine's two-step ping with the same 18 Wasm campaigns (redact + ping + select, no post);
//! - `http_ping`: the same engine ping with the same 18 buyers as HTTP endpoints on loopback (each server runs the
//!   buyer's rules natively and answers JSON over a pooled keep-alive connection);
//! - `native`: the floor — the same redactor and 18 buyers as native Rust (the plugin crates as rlibs), called in a
//!   loop, then the highest bid picked. No engine at all.
//!
//! The four HTTP campaigns of the example become config-buyer campaigns with the same rules, so all 18 buyers exist
//! in every variant. Criterion reports the typical time; a second pass of timed single auctions prints the median
//! and p99. `cargo bench -p pingpost --bench auction`; figures in BENCHMARKS.md ("Auction").

#[path = "common/sdk_types.rs"]
mod sdk_types;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};
use pingpost::auction::exchange_file::ExchangeFile;
use pingpost::auction::{
    CampaignTarget, Delivery, EngineSettings, Exchange, ExchangeParts, HttpBuyerClient, HttpEndpoints, MemoryStore,
    PingStatus, SeededIds,
};
use pingpost::clock::ManualClock;
use pingpost::model::{self, Lead};
use pingpost::plugin::{Runtime, RuntimeConfig};
use pingpost_sdk::{Buyer as _, Redactor as _};
use sdk_types::{model_reject_code, sdk_gender, sdk_ping};
use serde::Deserialize;
use serde_json::Value;

/// Wednesday 2026-11-25 10:00 in New York, as in the example.
const NOW: i64 = 1_795_618_800_000;
/// Timed single auctions per variant for the median and p99.
const SAMPLES: usize = 2_000;

fn florida(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/florida").join(file)
}

/// The example's four HTTP buyers' rules, as config-buyer configs.
fn http_buyer_as_config(campaign_id: &str) -> String {
    match campaign_id {
        "sunshine-health-direct" => r#"{"verticals":["health-insurance"],"states":["FL"],"min_age":50,"max_age":64,"base_price_cents":2600}"#,
        "atlantic-brokers" => r#"{"verticals":["health-insurance"],"states":["FL","GA","SC","NC","VA"],"min_age":18,"max_age":64,"base_price_cents":2200}"#,
        "everglades-insure" => r#"{"verticals":["health-insurance"],"min_age":21,"max_age":70,"base_price_cents":1250}"#,
        "medicare-advantage-now" => r#"{"verticals":["health-insurance"],"min_age":65,"max_age":99,"base_price_cents":3100}"#,
        other => panic!("unknown HTTP buyer {other}"),
    }
    .to_owned()
}

/// The example's exchange file with every campaign turned into a Wasm campaign with pick-up delivery.
fn all_wasm() -> ExchangeFile {
    let mut file = ExchangeFile::read(florida("exchange.toml")).expect("the example's exchange file");
    for campaign in &mut file.config.campaigns {
        if let CampaignTarget::Http(_) = campaign.target {
            campaign.target = CampaignTarget::Wasm {
                plugin: "config-buyer".into(),
                config: Value::String(http_buyer_as_config(&campaign.id)),
                delivery: Delivery::Pickup,
            };
        }
    }
    file
}

/// The 18 buyers: (campaign id, plugin name, config text).
fn buyers(file: &ExchangeFile) -> Vec<(String, String, String)> {
    file.config
        .campaigns
        .iter()
        .map(|c| match &c.target {
            CampaignTarget::Wasm { plugin, config, .. } => {
                (c.id.clone(), plugin.clone(), CampaignTarget::plugin_config(config))
            }
            CampaignTarget::Http(_) => unreachable!("all_wasm() leaves no HTTP campaign"),
        })
        .collect()
}

/// A buyer plugin crate called natively.
enum NativeBuyer {
    Config(config_buyer::ConfigBuyer),
    Scorecard(scorecard_buyer::ScorecardBuyer),
}

impl NativeBuyer {
    fn new(plugin: &str, config: &str) -> Self {
        match plugin {
            "config-buyer" => NativeBuyer::Config(config_buyer::ConfigBuyer::new(config).expect("config")),
            "scorecard-buyer" => NativeBuyer::Scorecard(scorecard_buyer::ScorecardBuyer::new(config).expect("config")),
            other => panic!("unknown plugin {other}"),
        }
    }

    fn bid(&self, ping: &pingpost_sdk::Ping, context: &pingpost_sdk::BidContext) -> pingpost_sdk::Decision {
        match self {
            NativeBuyer::Config(b) => b.bid(ping, context),
            NativeBuyer::Scorecard(b) => b.bid(ping, context),
        }
    }
}

fn sdk_lead(lead: &Lead) -> pingpost_sdk::Lead {
    let c = &lead.consumer;
    pingpost_sdk::Lead {
        vertical: lead.vertical.clone(),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
        street: c.street.clone(),
        city: c.city.clone(),
        state: c.state.clone(),
        zip5: c.zip5.clone(),
        date_of_birth: c.date_of_birth.clone(),
        gender: c.gender.map(sdk_gender),
        trusted_form_url: lead.consent.trusted_form_url.clone(),
        jornaya_leadid: lead.consent.jornaya_leadid.clone(),
        tcpa_text: lead.consent.tcpa_text.clone(),
        ip: lead.consent.ip.clone(),
        user_agent: lead.consent.user_agent.clone(),
        publisher_id: lead.publisher_id.clone(),
        source_id: lead.source_id.clone(),
        sub_id: String::new(),
        extra: lead.extra.clone().into_iter().collect(),
    }
}

fn model_decision(decision: pingpost_sdk::Decision) -> model::Decision {
    match decision {
        pingpost_sdk::Decision::Bid(bid) => model::Decision::Bid(model::Bid {
            price_cents: bid.price_cents,
            buyer_ref: bid.buyer_ref,
            ttl_ms: bid.ttl_ms,
        }),
        pingpost_sdk::Decision::Reject(r) => {
            model::Decision::Reject(model::Rejection { code: model_reject_code(r.code), message: r.message })
        }
    }
}

/// The native floor: redact, 18 bids, the highest wins.
struct NativeAuction {
    redactor: standard_redactor::StandardRedactor,
    /// (campaign id, buyer)
    buyers: Vec<(String, NativeBuyer)>,
}

impl NativeAuction {
    fn run(&self, lead: &pingpost_sdk::Lead) -> Option<(usize, u32)> {
        let context = pingpost_sdk::RedactContext { now_unix_ms: NOW };
        let ping = self.redactor.redact(lead, &context).expect("redacts");
        let mut best: Option<(usize, u32)> = None;
        for (i, (_, buyer)) in self.buyers.iter().enumerate() {
            let context = pingpost_sdk::BidContext { now_unix_ms: NOW, ..Default::default() };
            if let Some(price) = buyer.bid(&ping, &context).price_cents()
                && best.is_none_or(|(_, p)| price > p)
            {
                best = Some((i, price));
            }
        }
        best
    }
}

#[derive(Deserialize)]
struct PingBody {
    ping: model::Ping,
}

/// Starts one loopback HTTP server per buyer, each answering pings with the buyer's native rules.
async fn start_http_buyers(buyers: &[(String, String, String)]) -> Vec<HttpEndpoints> {
    let mut endpoints = Vec::new();
    for (_, plugin, config) in buyers {
        let buyer = Arc::new((NativeBuyer::new(plugin, config), config.clone()));
        let app = Router::new()
            .route(
                "/ping",
                post(|State(buyer): State<Arc<(NativeBuyer, String)>>, Json(body): Json<PingBody>| async move {
                    let context = pingpost_sdk::BidContext { now_unix_ms: NOW, ..Default::default() };
                    // The bench's pings come from the standard redactor: always one of the 51 states and three digits.
                    let ping = sdk_ping(&body.ping).expect("a ping the SDK can hold");
                    Json(model_decision(buyer.0.bid(&ping, &context)))
                }),
            )
            .with_state(buyer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("HTTP buyer") });
        endpoints.push(HttpEndpoints {
            ping_url: format!("http://{addr}/ping"),
            post_url: format!("http://{addr}/post"),
            timeout_ms: 200,
        });
    }
    endpoints
}

fn build(file: &ExchangeFile, runtime: &Runtime) -> Exchange {
    let clock = Arc::new(ManualClock::new(NOW));
    let parts = ExchangeParts {
        clock,
        ids: Arc::new(SeededIds::new(7)),
        store: Arc::new(MemoryStore::new()),
        http: HttpBuyerClient::with_default_client().expect("HTTP client"),
        settings: EngineSettings::default(),
    };
    file.build(runtime, parts).expect("the exchange builds")
}

/// Times `SAMPLES` single runs and prints the median and p99.
fn percentiles(name: &str, mut run: impl FnMut()) {
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "auction/{name}: {SAMPLES} runs, median {:.1} µs, p99 {:.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}

fn bench(c: &mut Criterion) {
    pingpost_plugins::build_all().expect("the plugins build");
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let _guard = tokio.enter();
    let lead: Lead = serde_json::from_str(&std::fs::read_to_string(florida("lead.json")).unwrap()).unwrap();
    let runtime = Runtime::with_clock(RuntimeConfig::default(), Arc::new(ManualClock::new(NOW))).expect("runtime");

    let wasm_file = all_wasm();
    let buyers = buyers(&wasm_file);
    assert_eq!(buyers.len(), 18);
    let wasm = build(&wasm_file, &runtime);

    let mut http_file = all_wasm();
    let endpoints = tokio.block_on(start_http_buyers(&buyers));
    for (campaign, endpoints) in http_file.config.campaigns.iter_mut().zip(endpoints) {
        campaign.target = CampaignTarget::Http(endpoints);
    }
    let http = build(&http_file, &runtime);

    let publisher = &wasm_file.config.publishers[0];
    let native = NativeAuction {
        redactor: standard_redactor::StandardRedactor::new(&publisher.redactor_config).expect("redactor config"),
        buyers: buyers.iter().map(|(id, plugin, config)| (id.clone(), NativeBuyer::new(plugin, config))).collect(),
    };
    let native_lead = sdk_lead(&lead);

    // The example's publisher refuses the same consumer twice within 30 days, so every timed auction gets a consumer
    // of its own (a new phone and email; everything else as in the example's lead).
    let counter = std::cell::Cell::new(0u64);
    let next_lead = || {
        let n = counter.get();
        counter.set(n + 1);
        let mut fresh = lead.clone();
        fresh.consumer.phone = format!("305{:07}", 2_000_000 + n % 8_000_000);
        fresh.consumer.email = format!("consumer{n}@example.com");
        fresh
    };

    // Every variant must pick the same $26 winner before it is timed.
    let sold = tokio.block_on(wasm.run_lead(next_lead()));
    assert_eq!(
        sold.sales.first().map(|s| (s.campaign_id.as_str(), s.price_cents)),
        Some(("sunshine-health-direct", 2600))
    );
    for exchange in [&wasm, &http] {
        let pinged = tokio.block_on(exchange.ping(next_lead()));
        assert_eq!((pinged.status, pinged.best_bid_cents), (PingStatus::Bid, Some(2600)), "{:?}", pinged.reason);
    }
    let (winner, price) = native.run(&native_lead).expect("a native bid");
    assert_eq!((native.buyers[winner].0.as_str(), price), ("sunshine-health-direct", 2600));

    let mut group = c.benchmark_group("auction_18_buyers");
    group.measurement_time(Duration::from_secs(8)).sample_size(50);
    group.bench_function("native", |b| b.iter(|| black_box(native.run(black_box(&native_lead)))));
    group.bench_function("wasm_ping", |b| b.iter(|| black_box(tokio.block_on(wasm.ping(next_lead())))));
    group.bench_function("wasm_run_lead", |b| b.iter(|| black_box(tokio.block_on(wasm.run_lead(next_lead())))));
    group.bench_function("http_ping", |b| b.iter(|| black_box(tokio.block_on(http.ping(next_lead())))));
    group.finish();

    percentiles("native", || {
        black_box(native.run(&native_lead));
    });
    percentiles("wasm_ping", || {
        black_box(tokio.block_on(wasm.ping(next_lead())));
    });
    percentiles("wasm_run_lead", || {
        black_box(tokio.block_on(wasm.run_lead(next_lead())));
    });
    percentiles("http_ping", || {
        black_box(tokio.block_on(http.ping(next_lead())));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

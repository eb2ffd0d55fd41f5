//! Plugin-call costs: per call warm vs fresh instances, with and without fuel and epoch interruption, on-demand vs
//! pooling allocator; 20 different buyer campaigns for one ping; loads compiled vs from the artifact cache, and
//! 1,000 distinct plugins loaded from the cache. The native Rust implementation of the same buyers (the plugin crates
//! as rlibs) is the floor, measured in the same run. Results and the command are in BENCHMARKS.md.

#[path = "common/sdk_types.rs"]
#[allow(dead_code)] // Shared with the other benches; this one needs only `sdk_ping`.
mod sdk_types;

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pingpost::model::{BidContext, ConsentFlags, Ping};
use pingpost::plugin::bindings::v0_2::{Buyer as WitBuyer, BuyerPre, host, types};
use pingpost::plugin::sandbox::StoreState;
use pingpost::plugin::{
    Allocator, BuyerPlugin, InstanceMode, Limits, Plugin, PreparedPing, Runtime, RuntimeConfig, component::to_component,
};
use pingpost_sdk::Buyer as _;
use sdk_types::sdk_ping;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

const NOW: i64 = 1_795_618_800_000;

fn plugin_bytes(name: &str) -> Vec<u8> {
    pingpost_plugins::wasm_bytes(name).expect("the plugins build")
}

fn ping() -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 40,
        gender: None,
        consent: ConsentFlags { trusted_form: true, jornaya: true, tcpa_text: true },
        publisher_id: "pub-1".into(),
        source_id: "src-1".into(),
        sub_id: String::new(),
        extra: [("coverage_type".to_owned(), "family".to_owned()), ("household_size".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
    }
}

/// The single-call buyer: a config-buyer campaign with filters and modifiers.
const CONFIG: &str = r#"{"states": ["FL", "TX", "CA"], "min_age": 21, "max_age": 64,
    "verticals": ["health-insurance"], "require_consent": ["trusted_form"], "base_price_cents": 1500,
    "modifiers": {"state": {"FL": {"add_cents": 200}}, "age_bands": [{"min_age": 30, "max_age": 49,
    "modifier": {"percent": 10}}], "consent": {"jornaya": {"add_cents": 50}}}}"#;

/// 20 campaigns: 10 config-buyer and 10 scorecard-buyer configs, all different.
fn campaigns() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for i in 0..10u32 {
        out.push((
            "config-buyer",
            format!(
                r#"{{"states": ["FL", "TX", "GA"], "min_age": {}, "max_age": 70, "base_price_cents": {},
                "modifiers": {{"state": {{"FL": {{"add_cents": {}}}}}, "consent": {{"jornaya": {{"percent": {}}}}}}}}}"#,
                18 + i,
                1000 + 100 * i,
                50 * i,
                i
            ),
        ));
        out.push((
            "scorecard-buyer",
            format!(
                r#"{{"cents_per_point": {}, "min_score": {}, "max_price_cents": {}}}"#,
                15 + i,
                40 + i,
                4000 + 50 * i
            ),
        ));
    }
    out
}

fn runtime(instance_mode: InstanceMode, allocator: Allocator, fuel: Option<u64>) -> Runtime {
    let limits = Limits { fuel, ..Limits::default() };
    Runtime::new(RuntimeConfig { limits, instance_mode, allocator, cache_dir: Some(cache_dir()), ..Default::default() })
        .expect("runtime")
}

fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("pingpost-bench-artifacts")
}

fn warm() -> InstanceMode {
    InstanceMode::default()
}

const POOL: Allocator = Allocator::Pooling { total_instances: 1000 };

fn buyer(runtime: &Runtime, name: &str, campaign: &str, config: &str) -> BuyerPlugin {
    let plugin = runtime.load(&plugin_bytes(name)).expect("loads");
    runtime.buyer(plugin, campaign, config).expect("buyer")
}

/// How a set of campaigns gets its plugins' compiled code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loading {
    /// Each campaign loads its plugin itself: one copy of compiled code per campaign, as many different plugins
    /// would have.
    Separate,
    /// Each plugin loaded once and shared by the campaigns that run it, as the exchange builds campaigns naming the
    /// same plugin.
    Shared,
}

/// A buyer per campaign (`prefix-N`), each with its own config and instances, on plugins loaded as `loading` says.
fn campaign_buyers<'a>(
    runtime: &Runtime,
    campaigns: impl IntoIterator<Item = &'a (&'static str, String)>,
    prefix: &str,
    loading: Loading,
) -> Vec<BuyerPlugin> {
    let mut loaded: HashMap<&str, Arc<Plugin>> = HashMap::new();
    campaigns
        .into_iter()
        .enumerate()
        .map(|(i, (name, config))| {
            let plugin = match loading {
                Loading::Separate => runtime.load(&plugin_bytes(name)).expect("loads"),
                Loading::Shared => {
                    loaded.entry(name).or_insert_with(|| runtime.load(&plugin_bytes(name)).expect("loads")).clone()
                }
            };
            runtime.buyer(plugin, format!("{prefix}-{i}"), config).expect("buyer")
        })
        .collect()
}

/// A raw engine (no pingpost runtime) to measure what epoch interruption itself costs, and what the ping's strings
/// cost to lower.
fn raw_call(epoch: bool, fuel: bool, ping: Ping) -> impl FnMut() {
    let mut config = Config::new();
    config.epoch_interruption(epoch).consume_fuel(fuel);
    let engine = Engine::new(&config).expect("engine");
    let mut linker: Linker<StoreState> = Linker::new(&engine);
    types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).expect("types");
    host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).expect("host");
    let bytes = to_component(&plugin_bytes("config-buyer")).expect("component").into_owned();
    let component = Component::new(&engine, &bytes).expect("compiles");
    let pre = BuyerPre::new(linker.instantiate_pre(&component).expect("links")).expect("buyer world");
    let limits = Limits::default();
    let mut store = Store::new(&engine, StoreState::new(&limits));
    store.set_epoch_deadline(u64::MAX / 2);
    if fuel {
        store.set_fuel(u64::MAX / 2).expect("fuel");
    }
    let bindings: WitBuyer = pre.instantiate(&mut store).expect("instantiates");
    let configured = bindings.pingpost_plugin_bidder().call_configure(&mut store, "c", CONFIG).expect("configures");
    assert_eq!(configured, Ok(()));
    let wit_ping = types::Ping::try_from(&ping).expect("a valid ping");
    let context = types::BidContext::from(&BidContext::at(NOW));
    move || {
        black_box(bindings.pingpost_plugin_bidder().call_bid(&mut store, &wit_ping, context).expect("answers"));
    }
}

fn single_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("call");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    let native = config_buyer::ConfigBuyer::new(CONFIG).expect("config");
    let (p, ctx) = (sdk_ping(&ping()).expect("the bench ping fits the contract"), pingpost_sdk::BidContext::default());
    g.bench_function("native", |b| b.iter(|| black_box(native.bid(black_box(&p), &ctx))));

    for (name, mode, allocator, fuel) in [
        ("warm", warm(), Allocator::OnDemand, None),
        ("warm_fuel", warm(), Allocator::OnDemand, Some(u64::MAX / 2)),
        ("warm_pooling", warm(), POOL, None),
        ("fresh", InstanceMode::Fresh, Allocator::OnDemand, None),
        ("fresh_fuel", InstanceMode::Fresh, Allocator::OnDemand, Some(u64::MAX / 2)),
        ("fresh_pooling", InstanceMode::Fresh, POOL, None),
    ] {
        let rt = runtime(mode, allocator, fuel);
        let buyer = buyer(&rt, "config-buyer", "c", CONFIG);
        let ping = ping();
        assert!(buyer.bid(&ping, &BidContext::at(NOW)).expect("answers").value.price_cents().is_some());
        g.bench_function(name, |b| b.iter(|| black_box(buyer.bid(&ping, &BidContext::at(NOW)).expect("ok"))));
        if name == "warm" {
            // The fan-out's path: the ping converted once per auction, lent to every buyer.
            let prepared = PreparedPing::new(&ping).expect("a valid ping");
            g.bench_function("warm_prepared", |b| {
                b.iter(|| black_box(buyer.bid_prepared(&prepared, &BidContext::at(NOW)).expect("ok")))
            });
        }
    }
    // The same ping without its 2 extras (one guest allocation fewer: their encoded string), and then with its 2 id
    // strings empty too (still lowered, but the guest allocates nothing for them).
    let no_extra = Ping { extra: Default::default(), ..ping() };
    let empty = Ping { publisher_id: String::new(), source_id: String::new(), ..no_extra.clone() };
    for (name, epoch, fuel, p) in [
        ("raw_no_epoch_no_fuel", false, false, ping()),
        ("raw_epoch", true, false, ping()),
        ("raw_epoch_fuel", true, true, ping()),
        ("raw_no_extra", false, false, no_extra),
        ("raw_no_extra_2_empty", false, false, empty),
    ] {
        let mut call = raw_call(epoch, fuel, p);
        g.bench_function(name, |b| b.iter(&mut call));
    }
    g.finish();
}

/// A native buyer (the plugin crate called directly), boxed so both buyer types fit one list.
type NativeBuyer = Box<dyn Fn(&pingpost_sdk::Ping, &pingpost_sdk::BidContext) -> pingpost_sdk::Decision>;

fn twenty_buyers(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_20_buyers");
    g.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));

    let natives: Vec<NativeBuyer> = campaigns()
        .into_iter()
        .map(|(name, config)| -> NativeBuyer {
            if name == "config-buyer" {
                let b = config_buyer::ConfigBuyer::new(&config).expect("config");
                Box::new(move |p, c| b.bid(p, c))
            } else {
                let b = scorecard_buyer::ScorecardBuyer::new(&config).expect("config");
                Box::new(move |p, c| b.bid(p, c))
            }
        })
        .collect();
    let (p, ctx) = (sdk_ping(&ping()).expect("the bench ping fits the contract"), pingpost_sdk::BidContext::default());
    g.bench_function("native", |b| {
        b.iter(|| {
            for native in &natives {
                black_box(native(black_box(&p), &ctx));
            }
        })
    });

    for (name, mode, allocator) in [
        ("warm", warm(), Allocator::OnDemand),
        ("fresh", InstanceMode::Fresh, Allocator::OnDemand),
        ("fresh_pooling", InstanceMode::Fresh, POOL),
    ] {
        let rt = runtime(mode, allocator, None);
        // 20 copies of compiled code, as 20 different buyer plugins would be.
        let buyers = campaign_buyers(&rt, &campaigns(), "campaign", Loading::Separate);
        let ping = ping();
        let bids =
            buyers.iter().filter(|b| b.bid(&ping, &BidContext::at(NOW)).expect("ok").value.price_cents().is_some());
        assert!(bids.count() >= 10, "most campaigns bid on the bench ping");
        g.bench_function(name, |b| {
            b.iter(|| {
                for buyer in &buyers {
                    black_box(buyer.bid(&ping, &BidContext::at(NOW)).expect("ok"));
                }
            })
        });
        if name == "warm" {
            // The fan-out's path: the ping converted once for the 20 buyers.
            g.bench_function("warm_prepared", |b| b.iter(|| fan_out(&buyers, &ping)));
            // The same 20 campaigns as an exchange builds them from two plugins (the Florida demo's shape): one copy
            // of each plugin's code, shared by its campaigns.
            let shared = campaign_buyers(&rt, &campaigns(), "shared", Loading::Shared);
            g.bench_function("warm_prepared_shared_plugins", |b| b.iter(|| fan_out(&shared, &ping)));
            // How much of that is the mix: 20 campaigns of the lighter plugin only (the 10 config-buyer campaigns,
            // each twice as a distinct campaign with its own instance).
            let all = campaigns();
            let light_campaigns = all.iter().filter(|(plugin, _)| *plugin == "config-buyer").cycle().take(20);
            let light = campaign_buyers(&rt, light_campaigns, "light", Loading::Separate);
            g.bench_function("warm_prepared_config_buyers_only", |b| b.iter(|| fan_out(&light, &ping)));
        }
    }
    g.finish();
}

/// What the fan-out does with its trusted buyers: the ping converted once, the buyers called one after another, each
/// starting where the last one's report ended (one clock read a call).
fn fan_out(buyers: &[BuyerPlugin], ping: &Ping) {
    let prepared = PreparedPing::new(ping).expect("a valid ping");
    let context = BidContext::at(NOW);
    let mut clock = Instant::now();
    for buyer in buyers {
        let report = buyer.bid_prepared_since(&prepared, &context, clock).expect("ok");
        clock += report.wall;
        black_box(report);
    }
}

/// `bytes` with a custom section appended: a distinct module (another hash) with the same code.
fn variant(bytes: &[u8], nonce: u32) -> Vec<u8> {
    let name = b"pingpost-bench-nonce";
    let payload = nonce.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8); // section size (fits one LEB128 byte)
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn loads(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    let bytes = plugin_bytes("config-buyer");

    let no_cache = Runtime::new(RuntimeConfig::default()).expect("runtime");
    g.bench_function("compile", |b| b.iter(|| black_box(no_cache.load(&bytes).expect("loads"))));

    let cached = runtime(warm(), Allocator::OnDemand, None);
    cached.load(&bytes).expect("fills the cache");
    g.bench_function("from_cache", |b| {
        b.iter(|| {
            let plugin = cached.load(&bytes).expect("loads");
            assert!(plugin.load_report().from_cache);
            black_box(plugin)
        })
    });

    // 1,000 distinct plugins (config-buyer with a distinct custom section each): fill the cache once (kept across
    // runs in the temp dir), then measure a restart: a fresh runtime loading all 1,000 from the cache.
    let variants: Vec<Vec<u8>> = (0..1000).map(|i| variant(&bytes, i)).collect();
    let filler = runtime(warm(), Allocator::OnDemand, None);
    let started = Instant::now();
    let all: Vec<&[u8]> = variants.iter().map(Vec::as_slice).collect();
    let compiled =
        filler.load_all(&all).into_iter().filter(|p| !p.as_ref().expect("loads").load_report().from_cache).count();
    eprintln!("filled the artifact cache: {compiled} of 1000 compiled in {:?}", started.elapsed());
    g.bench_function("1000_plugins_from_cache", |b| {
        b.iter(|| {
            let rt = runtime(warm(), Allocator::OnDemand, None);
            let plugins: Vec<Arc<Plugin>> = variants.iter().map(|v| rt.load(v).expect("loads")).collect();
            assert!(plugins.iter().all(|p| p.load_report().from_cache));
            black_box(plugins)
        })
    });
    let uploads: Vec<&[u8]> = variants.iter().map(Vec::as_slice).collect();
    g.bench_function("1000_plugins_from_cache_load_all", |b| {
        b.iter(|| {
            let rt = runtime(warm(), Allocator::OnDemand, None);
            let plugins: Vec<Arc<Plugin>> = rt.load_all(&uploads).into_iter().map(|p| p.expect("loads")).collect();
            assert!(plugins.iter().all(|p| p.load_report().from_cache));
            black_box(plugins)
        })
    });
    g.finish();
}

criterion_group!(benches, single_call, twenty_buyers, loads);
criterion_main!(benches);

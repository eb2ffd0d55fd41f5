//! Load test of `pingpost serve`: the real server binary, started as its own process on its SQLite data dir, fed
//! distinct Florida leads over HTTP at fixed rates and at "max", with the 18 Florida buyers as Wasm plugins and, in
//! the same run, as HTTP buyers on loopback; then a run that swaps a plugin version under load and counts failed
//! leads. Prints tables; writes only to target/ (the plugin build) and a temp dir. Results are in BENCHMARKS.md.
//!
//! ```sh
//! cargo bench -p pingpost --bench serve_load -- [--rates 500,1000,2500,5000,max] [--secs 10] [--scenarios wasm,http]
//!     [--workers 32] [--swaps 100] [--swap-rate 1000] [--warmup-secs 2] [--max-in-flight 4096]
//! ```
//!
//! `SERVE_LOAD_PINGPOST=/path/to/pingpost` runs another build of the server under the same load generator (for an
//! interleaved A/B of two commits on a noisy machine).

#[path = "serve_load/buyers.rs"]
mod buyers;
#[path = "serve_load/load.rs"]
mod load;
#[path = "serve_load/scenario.rs"]
mod scenario;
#[path = "common/sdk_types.rs"]
mod sdk_types;
#[path = "serve_load/server.rs"]
mod server;
#[path = "serve_load/swap.rs"]
mod swap;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use load::{Leads, Rate, RunStats, Target};
use scenario::{Kind, Scenario};
use server::Server;

/// The command line (after cargo's own `--bench`).
#[derive(Debug, Clone)]
struct Options {
    rates: Vec<Rate>,
    secs: u64,
    scenarios: Vec<Kind>,
    workers: u32,
    swaps: u32,
    swap_rate: u32,
    warmup_secs: u64,
    max_in_flight: usize,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut options = Options {
            rates: Vec::new(),
            secs: 10,
            scenarios: vec![Kind::Wasm, Kind::Http],
            workers: 32,
            swaps: 100,
            swap_rate: 1000,
            warmup_secs: 2,
            max_in_flight: 4096,
        };
        let mut rates = "500,1000,2500,5000,max".to_owned();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => {}
                "--rates" => rates = value("--rates")?,
                "--secs" => options.secs = value("--secs")?.parse().context("--secs")?,
                "--workers" => options.workers = value("--workers")?.parse().context("--workers")?,
                "--swaps" => options.swaps = value("--swaps")?.parse().context("--swaps")?,
                "--swap-rate" => options.swap_rate = value("--swap-rate")?.parse().context("--swap-rate")?,
                "--warmup-secs" => options.warmup_secs = value("--warmup-secs")?.parse().context("--warmup-secs")?,
                "--max-in-flight" => {
                    options.max_in_flight = value("--max-in-flight")?.parse().context("--max-in-flight")?
                }
                "--scenarios" => {
                    options.scenarios = value("--scenarios")?
                        .split(',')
                        .map(|s| match s.trim() {
                            "wasm" => Ok(Kind::Wasm),
                            "http" => Ok(Kind::Http),
                            other => bail!("unknown scenario {other:?} (wasm, http)"),
                        })
                        .collect::<Result<_>>()?
                }
                other => bail!("unknown option {other:?}; see the top of host/benches/serve_load.rs"),
            }
        }
        options.rates = rates
            .split(',')
            .map(|r| match r.trim() {
                "max" => Ok(Rate::Max { workers: options.workers }),
                n => n.parse().map(Rate::Fixed).with_context(|| format!("rate {n:?}")),
            })
            .collect::<Result<_>>()?;
        if options.secs == 0 || options.workers == 0 || options.max_in_flight == 0 {
            bail!("--secs, --workers and --max-in-flight must be positive");
        }
        Ok(options)
    }
}

fn main() -> Result<()> {
    let options = Options::parse(std::env::args().skip(1))?;
    pingpost_plugins::build_all().context("building the plugins")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let scenario = Scenario::florida()?;
    let leads = Arc::new(Leads::florida()?);
    let mut results: Vec<(Kind, RunStats)> = Vec::new();
    let mut swap_report = None;
    println!(
        "serve_load: {} s per rate, rates {:?}, {} CPUs shared by the server, the load generator and the HTTP buyers",
        options.secs,
        options.rates.iter().map(ToString::to_string).collect::<Vec<_>>(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    for &kind in &options.scenarios {
        let dir = tempfile::tempdir().context("making a temp dir")?;
        let http_buyers = match kind {
            Kind::Http => Some(buyers::HttpBuyers::start(&scenario.campaigns)?),
            Kind::Wasm => None,
        };
        let bases = http_buyers.as_ref().map(|b| b.bases.clone()).unwrap_or_default();
        let config = scenario.config_toml(kind, &dir.path().join("data"), &|id| bases.get(id).cloned())?;
        let mut server = Server::start(dir.path(), &config).await?;
        println!(
            "[{}] pingpost serve pid {} on {} (data dir {})",
            kind.name(),
            server.pid,
            server.base,
            dir.path().display()
        );
        let target = Target::new(&server.base, leads.clone(), server.pid)?;
        if options.warmup_secs > 0 {
            let warm = target
                .run(Rate::Fixed(500), Duration::from_secs(options.warmup_secs), no_stop(), options.max_in_flight)
                .await;
            println!("[{}] warm-up: {}", kind.name(), summary(&warm));
            if warm.failures() > 0 {
                eprintln!("[{}] warm-up failures; first error: {:?}", kind.name(), warm.first_error);
            }
        }
        for &rate in &options.rates {
            let writes_before = store_writes(&server.base).await;
            let stats = target.run(rate, Duration::from_secs(options.secs), no_stop(), options.max_in_flight).await;
            let writes = store_writes(&server.base).await.map(|after| after.since(writes_before.unwrap_or_default()));
            let writes = writes.map_or_else(String::new, |w| format!("; {w}"));
            println!("[{}] {}: {}{writes}", kind.name(), rate, summary(&stats));
            if let Some(error) = &stats.first_error {
                eprintln!("[{}] first error: {error}", kind.name());
            }
            results.push((kind, stats));
            if !server.alive() {
                bail!("the server died:\n{}", server.log_tail());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if kind == Kind::Wasm && options.swaps > 0 {
            swap_report = Some(swap_run(&target, &server, &options).await?);
        }
        drop(server);
        drop(http_buyers);
    }
    print_results(&results);
    if let Some(report) = swap_report {
        println!("{report}");
    }
    Ok(())
}

/// The server's store writer counters, from `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct StoreWrites {
    writes: u64,
    batches: u64,
    largest: u64,
}

impl StoreWrites {
    /// What happened between `before` and `self` (the largest batch is since the server started).
    fn since(self, before: StoreWrites) -> StoreWrites {
        StoreWrites {
            writes: self.writes.saturating_sub(before.writes),
            batches: self.batches.saturating_sub(before.batches),
            largest: self.largest,
        }
    }
}

impl std::fmt::Display for StoreWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mean = self.writes as f64 / self.batches.max(1) as f64;
        write!(
            f,
            "store: {} writes in {} transactions ({mean:.1} per commit, largest so far {})",
            self.writes, self.batches, self.largest
        )
    }
}

/// Scrapes the store writer's counters (`None` if the scrape fails: the figures are a side note).
async fn store_writes(base: &str) -> Option<StoreWrites> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(scenario::OPERATOR_KEY)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
    };
    Some(StoreWrites {
        writes: value("pingpost_store_writes")?,
        batches: value("pingpost_store_write_batches")?,
        largest: value("pingpost_store_largest_write_batch")?,
    })
}

fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Steady load while the operator swaps config-buyer versions; every lead must still be answered.
async fn swap_run(target: &Target, server: &Server, options: &Options) -> Result<String> {
    let real = pingpost_plugins::wasm_bytes(swap::PLUGIN)?;
    let other = swap::with_custom_section(&real, "pingpost-bench", b"serve_load swap build");
    let stop = no_stop();
    let load = {
        let (target, stop) = (target.clone(), stop.clone());
        let (rate, in_flight) = (Rate::Fixed(options.swap_rate), options.max_in_flight);
        tokio::spawn(async move { target.run(rate, Duration::from_secs(3600), stop, in_flight).await })
    };
    // Let the load settle before the first swap.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let swaps = swap::swap(&server.base, [&other, &real], options.swaps).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let stats = load.await.context("the load task")?;
    let swaps = swaps?;
    let mut distinct = swaps.versions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Ok(format!(
        "Swap run: {} activations ({} refused) of {} (versions {:?}, alternating) via POST /v1/plugins/{{name}}/versions + \
         /activate, each {:.1} ms p50 / {:.1} ms max, under {} leads/s: {} leads sent, {} answered in {:.1} s, \
         p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; outcomes {:?}; failed leads: {} (non-2xx {:?}, transport {}, \
         shed {}, outcome error {})",
        swaps.swaps,
        swaps.refused,
        swap::PLUGIN,
        distinct,
        swaps.swap_us.value_at_quantile(0.5) as f64 / 1000.0,
        swaps.swap_us.max() as f64 / 1000.0,
        options.swap_rate,
        stats.sent,
        stats.answered(),
        stats.elapsed.as_secs_f64(),
        stats.percentile_ms(0.5),
        stats.percentile_ms(0.99),
        stats.max_ms(),
        stats.outcomes,
        stats.failures(),
        stats.statuses,
        stats.transport_errors,
        stats.shed,
        stats.outcome("error"),
    ))
}

fn summary(stats: &RunStats) -> String {
    format!(
        "{:.0} leads/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} failed",
        stats.per_second(),
        stats.percentile_ms(0.5),
        stats.percentile_ms(0.99),
        stats.max_ms(),
        stats.failures()
    )
}

fn cpu_percent(cpu: Duration, stats: &RunStats) -> String {
    format!("{:.0}%", cpu.as_secs_f64() / stats.elapsed.as_secs_f64().max(1e-9) * 100.0)
}

fn print_results(results: &[(Kind, RunStats)]) {
    let mut table = Table::new();
    table.load_preset(presets::ASCII_MARKDOWN).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(vec![
        "buyers",
        "offered",
        "achieved leads/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "sold",
        "unsold",
        "other outcomes",
        "errors",
        "server CPU",
        "bench CPU",
        "writer µs/lead",
        "disk KB/lead",
    ]);
    for (kind, stats) in results {
        let other: Vec<String> = stats
            .outcomes
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "sold" | "unsold"))
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let mut errors = Vec::new();
        for (status, n) in &stats.statuses {
            errors.push(format!("{n}×{status}"));
        }
        if stats.transport_errors > 0 {
            errors.push(format!("{} transport", stats.transport_errors));
        }
        if stats.shed > 0 {
            errors.push(format!("{} shed", stats.shed));
        }
        table.add_row(vec![
            kind.name().to_owned(),
            stats.rate.to_string(),
            format!("{:.0}", stats.per_second()),
            format!("{:.2}", stats.percentile_ms(0.5)),
            format!("{:.2}", stats.percentile_ms(0.9)),
            format!("{:.2}", stats.percentile_ms(0.99)),
            format!("{:.1}", stats.max_ms()),
            stats.outcome("sold").to_string(),
            stats.outcome("unsold").to_string(),
            if other.is_empty() { "-".to_owned() } else { other.join(", ") },
            if errors.is_empty() { "0".to_owned() } else { errors.join(", ") },
            cpu_percent(stats.server_cpu, stats),
            cpu_percent(stats.bench_cpu, stats),
            format!("{:.0}", stats.writer_cpu.as_secs_f64() * 1e6 / stats.answered().max(1) as f64),
            format!("{:.1}", stats.server_disk_bytes as f64 / 1024.0 / stats.answered().max(1) as f64),
        ]);
    }
    for column in 2..15 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    println!("\n{table}");

    let mut ratios = Table::new();
    ratios.load_preset(presets::ASCII_MARKDOWN);
    ratios.set_header(vec![
        "offered",
        "wasm leads/s",
        "http leads/s",
        "wasm/http throughput",
        "p50 http/wasm",
        "p99 http/wasm",
    ]);
    let mut rows = 0;
    for (_, wasm) in results.iter().filter(|(k, _)| *k == Kind::Wasm) {
        let Some((_, http)) = results.iter().find(|(k, s)| *k == Kind::Http && s.rate == wasm.rate) else { continue };
        ratios.add_row(vec![
            wasm.rate.to_string(),
            format!("{:.0}", wasm.per_second()),
            format!("{:.0}", http.per_second()),
            format!("{:.2}×", wasm.per_second() / http.per_second().max(1e-9)),
            format!("{:.2}×", http.percentile_ms(0.5) / wasm.percentile_ms(0.5).max(1e-9)),
            format!("{:.2}×", http.percentile_ms(0.99) / wasm.percentile_ms(0.99).max(1e-9)),
        ]);
        rows += 1;
    }
    if rows > 0 {
        println!("\n{ratios}");
    }
}

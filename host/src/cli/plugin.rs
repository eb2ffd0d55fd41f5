//! `pingpost plugin check` and `pingpost plugin run`: the plugin author's local tools. They use the same runtime as
//! the exchange, so a plugin that passes here loads and runs the same way there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::model::{BidContext, Lead, Ping, SaleKind};
use crate::plugin::{InstanceMode, Limits, Plugin, Runtime, RuntimeConfig, World};

/// Fuel budget of `plugin run` when `--fuel` is not given: generous, but it still stops a runaway loop.
const DEFAULT_FUEL: u64 = 1_000_000_000;

/// `pingpost plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a plugin: print its world, contract version, imports, size and hash; exit non-zero if it would be
    /// refused.
    Check {
        /// The plugin: a component, or a core module built with pingpost-sdk.
        file: PathBuf,
    },
    /// Run a plugin once on one input and print the answer, wall time, fuel, peak memory and logs as JSON.
    Run(RunArgs),
}

/// Arguments of `pingpost plugin run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin: a component, or a core module built with pingpost-sdk.
    pub file: PathBuf,
    /// The ping to offer a buyer (JSON, the exchange's `Ping`).
    #[arg(long)]
    pub ping: Option<PathBuf>,
    /// The campaign's (or publisher's) config file, passed to the plugin verbatim.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The lead to give a redactor (JSON, the exchange's `Lead`).
    #[arg(long)]
    pub lead: Option<PathBuf>,
    /// Tell a buyer the sale is shared (several buyers) instead of exclusive.
    #[arg(long)]
    pub shared: bool,
    /// The publisher's floor to tell a buyer, in cents.
    #[arg(long, default_value_t = 0)]
    pub floor_cents: u32,
    /// Fuel budget for the call (deterministic instruction metering).
    #[arg(long, default_value_t = DEFAULT_FUEL)]
    pub fuel: u64,
    /// Wall-clock deadline for the call, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub deadline_ms: u64,
}

impl PluginCommand {
    /// Runs the subcommand.
    pub fn run(self) -> Result<ExitCode> {
        match self {
            PluginCommand::Check { file } => check(&file),
            PluginCommand::Run(args) => run(&args),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn load(runtime: &Runtime, file: &Path) -> Result<Arc<Plugin>> {
    let bytes = read(file)?;
    runtime.load(&bytes).with_context(|| format!("{} is not a loadable plugin", file.display()))
}

fn check(file: &Path) -> Result<ExitCode> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = load(&runtime, file)?;
    plugin
        .check_instantiates()
        .with_context(|| format!("{} cannot start within the default limits", file.display()))?;
    println!("world: {}", plugin.world());
    println!("contract: {}", plugin.contract_version());
    println!("imports: {}", plugin.imports().join(", "));
    println!("size: {} bytes{}", plugin.size_bytes(), if plugin.was_core_module() { " (core module)" } else { "" });
    println!("sha256: {}", plugin.id());
    Ok(ExitCode::SUCCESS)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).with_context(|| format!("parsing {}", path.display()))
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let config = RuntimeConfig {
        limits: Limits {
            fuel: Some(args.fuel),
            deadline: Duration::from_millis(args.deadline_ms),
            ..Limits::default()
        },
        instance_mode: InstanceMode::Fresh,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config)?;
    let plugin = load(&runtime, &args.file)?;
    let plugin_config = match &args.config {
        Some(path) => String::from_utf8(read(path)?).with_context(|| format!("{} is not UTF-8", path.display()))?,
        None => String::new(),
    };
    let now = SystemClock.now_unix_ms();
    let output = match plugin.world() {
        World::Buyer => {
            let ping_path = args.ping.as_deref().context("a buyer needs a ping: pass --ping PING.json")?;
            let ping: Ping = read_json(ping_path)?;
            let buyer = runtime.buyer(plugin, "cli", plugin_config)?;
            let sale = if args.shared { SaleKind::Shared } else { SaleKind::Exclusive };
            let context = BidContext { sale, floor_cents: args.floor_cents, ..BidContext::at(now) };
            let report = buyer.bid(&ping, &context).context("the plugin call failed")?;
            json!({
                "world": "buyer",
                "decision": report.value,
                "wall_us": report.wall.as_micros() as u64,
                "fuel_consumed": report.fuel_consumed,
                "peak_memory_bytes": report.peak_memory_bytes,
                "logs": report.logs,
                "logs_dropped": report.logs_dropped,
            })
        }
        World::Redactor => {
            let lead_path = args.lead.as_deref().context("a redactor needs a lead: pass --lead LEAD.json")?;
            let lead: Lead = read_json(lead_path)?;
            let redactor = runtime.redactor(plugin, "cli", plugin_config)?;
            let report = redactor.redact(&lead, now).context("the plugin call failed")?;
            let (ping, refused) = match report.value {
                Ok(ping) => (Some(ping), None),
                Err(reason) => (None, Some(reason)),
            };
            json!({
                "world": "redactor",
                "ping": ping,
                "refused": refused,
                "wall_us": report.wall.as_micros() as u64,
                "fuel_consumed": report.fuel_consumed,
                "peak_memory_bytes": report.peak_memory_bytes,
                "logs": report.logs,
                "logs_dropped": report.logs_dropped,
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(ExitCode::SUCCESS)
}

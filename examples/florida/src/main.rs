//! The Florida seed scenario, end to end: builds the plugins, starts the four HTTP buyers on 127.0.0.1, loads
//! `exchange.toml`, runs `lead.json` through the engine on the embedded SQLite store (`data/florida.db`) and prints the
//! trace, then what each HTTP buyer's server actually received. `cargo run --release -p florida`; see README.md.

mod http_buyers;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Parser;
use pingpost::auction::exchange_file::ExchangeFile;
use pingpost::auction::{CampaignTarget, EngineSettings, ExchangeParts, HttpBuyerClient, SeededIds};
use pingpost::cli::auction::{read_lead, render};
use pingpost::clock::{ManualClock, SharedClock};
use pingpost::model::Lead;
use pingpost::plugin::{Runtime, RuntimeConfig};
use pingpost::storage::SqliteStore;

use crate::http_buyers::{HTTP_BUYERS, HttpBuyer};

/// Runs the Florida seed scenario.
#[derive(Debug, Parser)]
struct Args {
    /// The auction's instant (RFC 3339). The default, a Wednesday morning in New York, keeps the weekend-only
    /// campaign closed and makes the consumer 58.
    #[arg(long, default_value = "2026-11-25T15:00:00Z")]
    now: DateTime<Utc>,
    /// Print the outcome and trace as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the HTTP buyers running after the auction (for `pingpost auction` and curl), until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Start the HTTP buyers on free ports instead of the exchange file's 18401–18404 (for tests).
    #[arg(long, conflicts_with = "serve")]
    any_port: bool,
    /// The SQLite database the exchange records into.
    #[arg(long, default_value = "data/florida.db")]
    db: PathBuf,
    /// Keep what earlier runs recorded: a second run then sees the consumer as a duplicate, as a real exchange would.
    #[arg(long)]
    keep_db: bool,
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();

    eprintln!("building the plugins (target/plugins) ...");
    pingpost_plugins::build_all().context("building the plugins")?;

    let mut buyers = Vec::new();
    for rules in HTTP_BUYERS {
        let port = if args.any_port { 0 } else { rules.port };
        buyers.push(HttpBuyer::start(rules, port).await.context("is another florida demo still serving?")?);
    }

    let clock: SharedClock = Arc::new(ManualClock::new(args.now.timestamp_millis()));
    let mut file = ExchangeFile::read(here().join("exchange.toml"))?;
    // Point each HTTP campaign at the port its server really got (the same as the file's unless --any-port).
    for campaign in &mut file.config.campaigns {
        if let (CampaignTarget::Http(endpoints), Some(buyer)) =
            (&mut campaign.target, buyers.iter().find(|b| b.campaign_id() == campaign.id))
        {
            endpoints.ping_url = format!("http://{}/ping", buyer.addr);
            endpoints.post_url = format!("http://{}/post", buyer.addr);
        }
    }
    let lead = read_lead(&here().join("lead.json"))?;
    let runtime = Runtime::with_clock(RuntimeConfig::default(), clock.clone())?;
    if !args.keep_db {
        remove_database(&args.db)?;
    }
    let store = SqliteStore::open(&args.db).with_context(|| format!("opening {}", args.db.display()))?;
    let parts = ExchangeParts {
        clock: clock.clone(),
        ids: Arc::new(SeededIds::new(58)),
        store: Arc::new(store),
        http: HttpBuyerClient::with_default_client()?,
        settings: EngineSettings::default(),
    };
    let exchange = file.build(&runtime, parts)?;
    let outcome = exchange.run_lead(lead.clone()).await;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", render(&outcome, Some(&exchange), args.now.timestamp_millis()));
        println!();
        println!("what the HTTP buyers' servers received:");
        for buyer in &buyers {
            let (pings, posts) = buyer.received();
            println!(
                "  {:<24} {} ping(s), PII in pings: {:<5} {} post(s){}",
                buyer.campaign_id(),
                pings.len(),
                pings.iter().any(|body| holds_pii(body, &lead)),
                posts.len(),
                if posts.iter().any(|body| body.contains(&lead.consumer.phone)) { " with the full lead" } else { "" },
            );
        }
    }

    if args.serve {
        eprintln!(
            "HTTP buyers listening on {}; Ctrl-C to stop",
            buyers.iter().map(|b| b.addr.to_string()).collect::<Vec<_>>().join(", ")
        );
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// Deletes the demo database and its WAL files, so each run starts from an empty exchange.
fn remove_database(db: &std::path::Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", PathBuf::from(path).display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a request body holds any of the lead's personal values.
fn holds_pii(body: &str, lead: &Lead) -> bool {
    let c = &lead.consumer;
    let values = [&c.first_name, &c.last_name, &c.phone, &c.email, &c.street, &c.zip5, &c.date_of_birth];
    values.iter().any(|v| !v.is_empty() && body.contains(v.as_str()))
        || lead.consent.ip.as_deref().is_some_and(|ip| body.contains(ip))
}

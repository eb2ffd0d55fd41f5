//! The Florida seed scenario as a running exchange: builds the plugins, starts the four HTTP buyers on 127.0.0.1,
//! starts `pingpost serve` in this process with `serve.toml` (the embedded SQLite store in `data/florida`, seeded with
//! `exchange.toml`: one publisher, 18 campaigns), sends `lead.json` to `POST /v1/leads` like a publisher would, prints
//! who won and what each HTTP buyer's server received, then keeps serving for your own curl requests until Ctrl-C.
//! `cargo run --release -p florida`; see README.md.

mod http_buyers;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use pingpost::auction::{CampaignTarget, RandomIds};
use pingpost::cli::auction::read_lead;
use pingpost::clock::OffsetClock;
use pingpost::service::settings::ServeConfig;
use pingpost::service::{RunningService, ServiceParts};
use pingpost::storage::registry::Role;

use crate::http_buyers::{HTTP_BUYERS, HttpBuyer};

/// Runs the Florida seed scenario on a live exchange.
#[derive(Debug, Parser)]
struct Args {
    /// The instant the exchange's clock starts at (RFC 3339); it then runs on. The default, a Wednesday morning in
    /// New York, keeps the weekend-only campaign closed and makes the consumer 58.
    #[arg(long, default_value = "2026-11-25T15:00:00Z")]
    now: DateTime<Utc>,
    /// Print the auction's outcome and trace as JSON (what `GET /v1/leads/{id}/trace` shows operators).
    #[arg(long)]
    json: bool,
    /// Exit after the demo lead instead of serving on.
    #[arg(long)]
    once: bool,
    /// Where the API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Start the API and the HTTP buyers on free ports instead of 8080 and 18401–18404 (for tests).
    #[arg(long)]
    any_port: bool,
    /// The exchange's data directory (SQLite database and compiled-plugin cache).
    #[arg(long, default_value = "data/florida")]
    data_dir: PathBuf,
    /// Keep what earlier runs recorded: the consumer is then a duplicate, as on a real exchange.
    #[arg(long)]
    keep_data: bool,
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
        buyers.push(HttpBuyer::start(rules, port).await.context("is another florida demo still running?")?);
    }

    let mut config = ServeConfig::read(&here().join("serve.toml"), std::env::vars())?;
    config.settings.data_dir = args.data_dir.clone();
    config.settings.listen = if args.any_port { SocketAddr::from(([127, 0, 0, 1], 0)) } else { args.listen };
    let seed = config.seed.as_mut().context("serve.toml names the exchange file")?;
    // Point each HTTP campaign at the port its server really got (the same as the file's unless --any-port).
    for campaign in &mut seed.config.campaigns {
        if let (CampaignTarget::Http(endpoints), Some(buyer)) =
            (&mut campaign.target, buyers.iter().find(|b| b.campaign_id() == campaign.id))
        {
            endpoints.ping_url = format!("http://{}/ping", buyer.addr);
            endpoints.post_url = format!("http://{}/post", buyer.addr);
        }
    }
    let publisher_key = demo_key(&config, Role::Publisher)?;
    let operator_key = demo_key(&config, Role::Operator)?;
    if !args.keep_data {
        remove_database(&config.settings.database_path())?;
    }

    let parts = ServiceParts {
        clock: Arc::new(OffsetClock::starting_at(args.now.timestamp_millis())),
        ids: Arc::new(RandomIds),
        ..ServiceParts::default()
    };
    let service = RunningService::start(config, parts).await.context("starting the exchange")?;
    let base = format!("http://{}", service.addr);

    // The publisher's side: one lead, over HTTP, with the publisher's key.
    let lead = read_lead(&here().join("lead.json"))?;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/leads"))
        .bearer_auth(&publisher_key)
        .json(&lead)
        .send()
        .await
        .context("sending the demo lead")?
        .json()
        .await
        .context("reading the exchange's answer")?;
    let lead_id = answer["lead_id"].as_str().context("the answer names the lead")?.to_owned();
    service.state.recorder.flush().await;
    let recorded = service.state.store.auction(&lead_id)?.context("the exchange recorded the auction")?;
    let outcome: serde_json::Value = serde_json::from_str(&recorded.outcome_json)?;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!("publisher's answer (POST /v1/leads): {answer}");
        println!();
        print!("{}", report::render(&outcome, &service.state.exchange()));
        println!();
        print!("{}", report::books(&service.state, &outcome)?);
        println!();
        println!("what the HTTP buyers' servers received:");
        for buyer in &buyers {
            println!("  {}", report::received(buyer, &lead));
        }
    }

    if args.once {
        return service.shutdown().await;
    }
    eprintln!();
    eprintln!("The exchange is serving on {base} (Ctrl-C stops). Try:");
    eprintln!(
        "  curl -s -X POST {base}/v1/leads -H 'Authorization: Bearer {publisher_key}' \
         -H 'Content-Type: application/json' -d @examples/florida/lead.json"
    );
    eprintln!("  curl -s {base}/v1/leads/{lead_id}/trace -H 'Authorization: Bearer {operator_key}'");
    eprintln!("  curl -s {base}/metrics -H 'Authorization: Bearer {operator_key}'");
    eprintln!("  curl -s '{base}/v1/ledger?limit=10' -H 'Authorization: Bearer {operator_key}'");
    eprintln!("(the same lead again is a duplicate: change its phone and email to sell another)");
    service.run_until_signal().await
}

/// The demo key of `role` that serve.toml gives.
fn demo_key(config: &ServeConfig, role: Role) -> Result<String> {
    match config.api_keys.iter().find(|k| k.role == role).and_then(|k| k.key.clone()) {
        Some(key) => Ok(key),
        None => bail!("serve.toml has no demo {} key", role.as_str()),
    }
}

/// Deletes the demo database and its WAL files, so each run starts from an empty exchange (the compiled-plugin
/// cache stays).
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

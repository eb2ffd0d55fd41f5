//! `pingpost auction`: runs one lead through the engine locally — the exchange file's plugins and HTTP buyers, the
//! in-memory store — and prints the trace: every buyer's answer, the winner, the price and the timings, as a table or
//! as JSON. The same rendering is used by the examples.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use crate::auction::exchange_file::ExchangeFile;
use crate::auction::trace::{Answer, CampaignTrace, Outcome, PostResult};
use crate::auction::{EngineSettings, Exchange, ExchangeParts, HttpBuyerClient, MemoryStore, RandomIds};
use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::model::Lead;
use crate::plugin::{Runtime, RuntimeConfig};

/// Arguments of `pingpost auction`.
#[derive(Debug, Args)]
pub struct AuctionArgs {
    /// The exchange file (TOML): publishers, buyers, campaigns and the plugins they use.
    #[arg(long)]
    pub exchange: PathBuf,
    /// The lead to sell (JSON, the exchange's `Lead`, PII included).
    #[arg(long)]
    pub lead: PathBuf,
    /// Print the outcome and its trace as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the auction at this instant (RFC 3339, e.g. 2026-11-25T15:00:00Z) instead of now: schedules and ages
    /// are then reproducible.
    #[arg(long, value_parser = parse_instant)]
    pub now: Option<DateTime<Utc>>,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-25T15:00:00Z)"))
}

impl AuctionArgs {
    /// Runs the auction and prints it. Exits 0 whenever the auction ran, whatever its outcome.
    pub fn run(self) -> Result<ExitCode> {
        let clock: SharedClock = match self.now {
            Some(instant) => Arc::new(ManualClock::new(instant.timestamp_millis())),
            None => Arc::new(SystemClock),
        };
        let file = ExchangeFile::read(&self.exchange)?;
        let lead = read_lead(&self.lead)?;
        let tokio =
            tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
        let outcome = tokio.block_on(async {
            let runtime =
                Runtime::with_clock(RuntimeConfig::default(), clock.clone()).context("starting the plugin runtime")?;
            let parts = ExchangeParts {
                clock: clock.clone(),
                ids: Arc::new(RandomIds),
                store: Arc::new(MemoryStore::new()),
                http: HttpBuyerClient::with_default_client().context("building the HTTP client")?,
                settings: EngineSettings::default(),
            };
            let exchange = file.build(&runtime, parts)?;
            anyhow::Ok((exchange.run_lead(lead).await, exchange))
        })?;
        let (outcome, exchange) = outcome;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&outcome).context("writing the outcome as JSON")?);
        } else {
            print!("{}", render(&outcome, Some(&exchange), clock.now_unix_ms()));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Reads a lead file; the error names the file and, for bad JSON, the line and column.
pub fn read_lead(path: &Path) -> Result<Lead> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a valid lead", path.display()))
}

/// `2600` → `$26.00`.
pub fn dollars(cents: u32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn millis(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// The outcome as text: a headline, the steps with their timings, one row per campaign (bids first, best first)
/// and the post attempts. `exchange` adds buyer names; `now_unix_ms` is only shown.
pub fn render(outcome: &Outcome, exchange: Option<&Exchange>, now_unix_ms: i64) -> String {
    let trace = &outcome.trace;
    let mut out = String::new();
    let when = DateTime::from_timestamp_millis(now_unix_ms).map(|t| t.to_rfc3339()).unwrap_or_default();
    out.push_str(&format!(
        "auction {} · publisher {} · {} · at {when}\n",
        outcome.ping_id,
        trace.publisher_id,
        trace.mode.map(|m| format!("{m:?}").to_lowercase()).unwrap_or_else(|| "-".into()),
    ));
    let headline = match outcome.sales.as_slice() {
        [] => format!(
            "{}: {}",
            format!("{:?}", outcome.status).to_uppercase(),
            outcome.reason.as_deref().unwrap_or("no reason given")
        ),
        sales => sales
            .iter()
            .map(|s| {
                format!(
                    "SOLD to {} ({}) at {} — margin {}, publisher paid {}",
                    s.campaign_id,
                    buyer_name(exchange, &s.buyer_id),
                    dollars(s.price_cents),
                    dollars(s.margin_cents),
                    dollars(s.payout_cents)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    out.push_str(&headline);
    out.push('\n');
    for error in &outcome.field_errors {
        out.push_str(&format!("  invalid: {error:?}\n"));
    }
    for leak in &outcome.pii_leaks {
        out.push_str(&format!("  PII guard: {leak}\n"));
    }
    let steps: Vec<String> = trace.steps.iter().map(|s| format!("{} @{}", s.step, millis(s.elapsed_us))).collect();
    out.push_str(&format!("steps: {} · total {}\n", steps.join(" → "), millis(trace.total_us)));

    let winners: Vec<&str> = outcome.sales.iter().map(|s| s.campaign_id.as_str()).collect();
    let mut rows: Vec<&CampaignTrace> = trace.campaigns.iter().collect();
    // Bids first, best price first; then everything else in configuration order (the sort is stable).
    rows.sort_by_key(|c| match &c.answer {
        Some(Answer::Bid { price_cents, .. }) => (0, u32::MAX - price_cents),
        _ => (1, 0),
    });
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec!["", "campaign", "buyer", "kind", "answer", "price", "answered", "detail"]);
    for campaign in rows {
        let (answer, price, detail) = describe(campaign);
        let mark = if winners.contains(&campaign.campaign_id.as_str()) { "★" } else { "" };
        table.add_row(vec![
            mark.to_owned(),
            campaign.campaign_id.clone(),
            buyer_name(exchange, &campaign.buyer_id),
            format!("{:?}", campaign.kind).to_lowercase(),
            answer,
            price,
            campaign.answer_us.map(millis).unwrap_or_default(),
            detail,
        ]);
    }
    for column in [5, 6] {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    for post in &trace.posts {
        out.push_str(&format!(
            "post → {} at {}: {} ({})\n",
            post.campaign_id,
            dollars(post.bid_cents),
            describe_post(&post.result),
            millis(post.elapsed_us)
        ));
    }
    out
}

fn buyer_name(exchange: Option<&Exchange>, buyer_id: &str) -> String {
    exchange
        .and_then(|e| e.buyer(buyer_id))
        .filter(|b| !b.name.is_empty())
        .map_or_else(|| buyer_id.to_owned(), |b| b.name.clone())
}

/// (answer, price, detail) of one campaign's row.
fn describe(campaign: &CampaignTrace) -> (String, String, String) {
    if let Some(reason) = &campaign.ineligible {
        return ("not pinged".into(), String::new(), reason.to_string());
    }
    match &campaign.answer {
        None => ("—".into(), String::new(), String::new()),
        Some(Answer::Bid { price_cents, buyer_ref, .. }) => {
            ("bid".into(), dollars(*price_cents), buyer_ref.clone().map(|r| format!("ref {r}")).unwrap_or_default())
        }
        Some(Answer::BelowFloor { price_cents, floor_cents }) => {
            ("below floor".into(), dollars(*price_cents), format!("floor {}", dollars(*floor_cents)))
        }
        Some(Answer::CapWouldExceed { price_cents, cap, left_cents }) => (
            "over its cap".into(),
            dollars(*price_cents),
            match left_cents {
                Some(left) => format!("{} left of {}", dollars(u32::try_from(*left).unwrap_or(u32::MAX)), cap.as_str()),
                None => format!("{} reached", cap.as_str()),
            },
        ),
        Some(Answer::FundsWouldExceed { price_cents, available_cents }) => {
            ("over its funds".into(), dollars(*price_cents), format!("{} cents available", available_cents))
        }
        Some(Answer::Reject { code, message }) => (
            format!(
                "reject: {}",
                serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            ),
            String::new(),
            message.clone(),
        ),
        Some(Answer::NoBid) => ("no bid".into(), String::new(), String::new()),
        Some(Answer::Timeout) => ("timeout".into(), String::new(), String::new()),
        Some(Answer::Suspended { reason, .. }) => ("suspended".into(), String::new(), reason.clone()),
        Some(Answer::Error { kind, message }) => (format!("error: {}", kind.as_str()), String::new(), message.clone()),
    }
}

fn describe_post(result: &PostResult) -> String {
    match result {
        PostResult::Accepted { price_cents, buyer_lead_id } => format!(
            "accepted at {}{}",
            dollars(*price_cents),
            buyer_lead_id.as_deref().map(|id| format!(", buyer's lead id {id}")).unwrap_or_default()
        ),
        PostResult::PickedUp { price_cents } => format!("kept for pick-up at {}", dollars(*price_cents)),
        PostResult::Queued { price_cents } => format!("queued for webhook delivery at {}", dollars(*price_cents)),
        PostResult::Rejected { reason } => format!("rejected: {reason}"),
        PostResult::Duplicate => "duplicate".into(),
        PostResult::CapReached { cap } => format!("cap {} reached", cap.as_str()),
        PostResult::NoLongerEligible { reason } => format!("no longer eligible: {reason}"),
        PostResult::Timeout => "timeout".into(),
        PostResult::Failed { error } => format!("failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_print_as_dollars() {
        assert_eq!(dollars(2600), "$26.00");
        assert_eq!(dollars(805), "$8.05");
        assert_eq!(dollars(0), "$0.00");
    }

    #[test]
    fn an_instant_without_a_zone_is_refused() {
        assert!(parse_instant("2026-11-25 15:00").is_err());
        assert_eq!(parse_instant("2026-11-25T10:00:00-05:00").unwrap().timestamp(), 1_795_618_800);
    }
}

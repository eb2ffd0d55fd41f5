//! The exchange file and `pingpost auction`: a folder with an `exchange.toml`, plugin files and configs runs one
//! lead through the engine from the command line; a bad file is a one-line error naming the file, table and field.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::path::{Path, PathBuf};

use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::exchange_file::ExchangeFile;
use pingpost::auction::{CampaignTarget, Delivery};
use serde_json::{Value, json};
use tempfile::TempDir;

const NOW: &str = "2026-11-25T15:00:00Z";

fn florida(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/florida").join(file)
}

/// A folder holding a small exchange: the standard redactor, two config-buyer campaigns and one HTTP buyer.
fn small_exchange(http: &BuyerServer) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    std::fs::write(
        dir.path().join("configs/fl.json"),
        r#"{"verticals": ["health-insurance"], "states": ["FL"], "base_price_cents": 1500}"#,
    )
    .unwrap();
    let redactor = pingpost_plugins::wasm("standard-redactor").unwrap();
    let buyer = pingpost_plugins::wasm("config-buyer").unwrap();
    let toml = format!(
        r#"
[plugins]
standard = {redactor:?}
config-buyer = {buyer:?}

[[publishers]]
id = "sunshine-quotes"
floor_cents = 500

[[buyers]]
id = "acme"
name = "Acme Health"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-fl"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config_file = "configs/fl.json", delivery = {{ kind = "pickup" }} }}

[[campaigns]]
id = "acme-tx"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ states = ["TX"], base_price_cents = 3000 }}, delivery = {{ kind = "pickup" }} }}

[[campaigns]]
id = "acme-http"
buyer_id = "acme"
target = {{ kind = "http", ping_url = "{ping}", post_url = "{post}", timeout_ms = 500 }}
"#,
        ping = http.ping_url(),
        post = http.post_url(),
    );
    std::fs::write(dir.path().join("exchange.toml"), toml).unwrap();
    dir
}

async fn http_buyer_bidding(price_cents: u32) -> BuyerServer {
    BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": price_cents})),
        Reply::json(json!({"result": "accepted", "price_cents": price_cents, "buyer_lead_id": "crm-9"})),
    )
    .await
}

struct Cli {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn pingpost(args: &[&str]) -> Cli {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pingpost")).args(args).output().await.unwrap();
    Cli {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sells_the_lead_to_the_best_bid_and_prints_the_trace_as_json() {
    let http = http_buyer_bidding(2100).await;
    let dir = small_exchange(&http);
    let exchange = dir.path().join("exchange.toml");

    let cli = pingpost(&[
        "auction",
        "--exchange",
        path(&exchange),
        "--lead",
        path(&florida("lead.json")),
        "--json",
        "--now",
        NOW,
    ])
    .await;

    assert!(cli.success, "{}", cli.stderr);
    let outcome: Value = serde_json::from_str(&cli.stdout).expect("JSON on stdout");
    assert_eq!(outcome["status"], "sold");
    assert_eq!(outcome["sales"][0]["campaign_id"], "acme-http");
    assert_eq!(outcome["sales"][0]["price_cents"], 2100);
    let answers: Vec<(&str, &str)> = outcome["trace"]["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["campaign_id"].as_str().unwrap(), c["answer"]["answer"].as_str().unwrap()))
        .collect();
    assert_eq!(answers, [("acme-fl", "bid"), ("acme-tx", "reject"), ("acme-http", "bid")]);
    assert_eq!(http.posts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_table_names_every_campaign_its_answer_and_the_winner() {
    let http = http_buyer_bidding(900).await;
    let dir = small_exchange(&http);
    let exchange = dir.path().join("exchange.toml");

    let cli =
        pingpost(&["auction", "--exchange", path(&exchange), "--lead", path(&florida("lead.json")), "--now", NOW])
            .await;

    assert!(cli.success, "{}", cli.stderr);
    assert!(cli.stdout.contains("SOLD to acme-fl (Acme Health) at $15.00"), "{}", cli.stdout);
    for expected in ["acme-tx", "reject: geography", "acme-http", "$9.00", "post → acme-fl at $15.00: kept for pick-up"]
    {
        assert!(cli.stdout.contains(expected), "missing {expected:?} in\n{}", cli.stdout);
    }
}

#[tokio::test]
async fn a_missing_exchange_file_is_a_one_line_error_naming_it() {
    let cli =
        pingpost(&["auction", "--exchange", "/nonexistent/exchange.toml", "--lead", path(&florida("lead.json"))]).await;

    assert!(!cli.success);
    assert_eq!(cli.stderr.trim().lines().count(), 1, "{}", cli.stderr);
    assert!(cli.stderr.contains("/nonexistent/exchange.toml: cannot read"), "{}", cli.stderr);
}

#[tokio::test]
async fn a_bad_lead_file_is_a_one_line_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let lead = dir.path().join("lead.json");
    std::fs::write(&lead, r#"{"vertical": "health-insurance", "publisher_id": "p", "consumer": {"nickname": "x"}}"#)
        .unwrap();

    let cli = pingpost(&["auction", "--exchange", path(&florida("exchange.toml")), "--lead", path(&lead)]).await;

    assert!(!cli.success);
    assert_eq!(cli.stderr.trim().lines().count(), 1, "{}", cli.stderr);
    assert!(cli.stderr.contains("lead.json: not a valid lead") && cli.stderr.contains("nickname"), "{}", cli.stderr);
}

/// Parses an exchange file written into a fresh folder and returns the error text.
fn parse_error(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exchange.toml");
    std::fs::write(&file, toml).unwrap();
    let error = ExchangeFile::read(&file).expect_err("the file is bad");
    let text = error.to_string();
    assert!(text.starts_with(&format!("{}: ", file.display())), "the error names the file: {text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    text
}

const BUYER: &str = "[[buyers]]\nid = \"acme\"\ntime_zone = \"America/New_York\"\n";

#[test]
fn an_unknown_field_is_named_with_its_table_and_the_campaign_id() {
    let text = parse_error(&format!(
        "{BUYER}[[campaigns]]\nid = \"c1\"\nbuyer_id = \"acme\"\npriority = 3\ntarget = {{ kind = \"wasm\", plugin = \"x.wasm\", delivery = {{ kind = \"pickup\" }} }}\n"
    ));
    assert!(text.contains("campaigns[0] (id \"c1\")") && text.contains("priority"), "{text}");
}

#[test]
fn a_wrong_type_is_named_with_its_path() {
    let text = parse_error(&format!(
        "{BUYER}[[campaigns]]\nid = \"c1\"\nbuyer_id = \"acme\"\ntier = \"first\"\ntarget = {{ kind = \"wasm\", plugin = \"x.wasm\", delivery = {{ kind = \"pickup\" }} }}\n"
    ));
    assert!(text.contains("campaigns[0] (id \"c1\").tier"), "{text}");
}

#[test]
fn a_toml_syntax_error_gives_the_line() {
    let text = parse_error("[[buyers]]\nid = \"acme\"\ntime_zone = America/New_York\n");
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn a_missing_config_file_is_named_with_the_campaign_and_field() {
    let text = parse_error(&format!(
        "{BUYER}[[campaigns]]\nid = \"c1\"\nbuyer_id = \"acme\"\ntarget = {{ kind = \"wasm\", plugin = \"x.wasm\", config_file = \"configs/nope.json\", delivery = {{ kind = \"pickup\" }} }}\n"
    ));
    assert!(text.contains("campaigns[0] (id \"c1\").target.config_file") && text.contains("nope.json"), "{text}");
}

#[test]
fn the_standard_redactor_must_be_named_in_the_plugins_table() {
    let text = parse_error("[[publishers]]\nid = \"pub\"\n");
    assert!(text.contains("plugins: ") && text.contains("standard"), "{text}");
}

#[test]
fn plugin_names_and_paths_resolve_from_the_files_folder_and_config_files_are_inlined() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    std::fs::write(dir.path().join("configs/a.json"), r#"{"base_price_cents": 100}"#).unwrap();
    let file = dir.path().join("exchange.toml");
    std::fs::write(
        &file,
        format!(
            "[plugins]\nstandard = \"wasm/redactor.wasm\"\n\n[[publishers]]\nid = \"pub\"\n\n{BUYER}\
             [[campaigns]]\nid = \"a\"\nbuyer_id = \"acme\"\ntarget = {{ kind = \"wasm\", plugin = \"buyers/b.wasm\", config_file = \"configs/a.json\", delivery = {{ kind = \"webhook\", url = \"http://127.0.0.1:9/post\" }} }}\n"
        ),
    )
    .unwrap();

    let parsed = ExchangeFile::read(&file).unwrap();

    assert_eq!(parsed.plugin_files["standard"], dir.path().join("wasm/redactor.wasm"));
    assert_eq!(parsed.plugin_files["buyers/b.wasm"], dir.path().join("buyers/b.wasm"));
    match &parsed.config.campaigns[0].target {
        CampaignTarget::Wasm { config, delivery, .. } => {
            assert_eq!(config, &Value::String(r#"{"base_price_cents": 100}"#.into()));
            assert_eq!(delivery, &Delivery::Webhook { url: "http://127.0.0.1:9/post".into() });
        }
        other => panic!("expected a Wasm target, got {other:?}"),
    }
}

#[test]
fn the_florida_example_file_parses_into_18_campaigns() {
    let parsed = ExchangeFile::read(florida("exchange.toml")).unwrap();

    assert_eq!(parsed.config.campaigns.len(), 18);
    let http = parsed.config.campaigns.iter().filter(|c| matches!(c.target, CampaignTarget::Http(_))).count();
    assert_eq!(http, 4);
    assert_eq!(parsed.plugin_files.len(), 3);
}
